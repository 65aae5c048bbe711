"""Small deterministic stand-ins for the real encoders, behind the same contracts, for unit tests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
from PIL import Image

from .base import l2_normalize

_TOKEN = re.compile(r"\w+", re.UNICODE)


class FakeTextEncoder:
    """Bag of hashed words and character trigrams: texts sharing words get similar vectors."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.name = f"fake-text-{dim}"

    def _bucket(self, token: str) -> int:
        return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "little") % self.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for tok in _TOKEN.findall(text.lower()):
                out[i, self._bucket(tok)] += 1.0
                for j in range(max(1, len(tok) - 2)):
                    out[i, self._bucket("#" + tok[j : j + 3])] += 0.3
        return l2_normalize(out)


class FakeImageEncoder:
    """A 4×4 thumbnail plus a coarse colour histogram: similar-looking photos get similar vectors."""

    dim = 4 * 4 * 3 + 27
    name = "fake-image-75"

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = np.zeros((len(images), self.dim), np.float32)
        for i, img in enumerate(images):
            small = np.asarray(img.convert("RGB").resize((4, 4)), np.float32).ravel() / 255.0
            px = np.asarray(img.convert("RGB").resize((32, 32)), np.int64).reshape(-1, 3) // 86
            hist = np.bincount(px[:, 0] * 9 + px[:, 1] * 3 + px[:, 2], minlength=27).astype(np.float32)
            out[i] = np.concatenate([small - 0.5, hist / max(hist.sum(), 1.0)])
        return l2_normalize(out)
