"""The encoder contracts: text and image encoders return L2-normalised float32 matrices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image


@runtime_checkable
class TextEncoder(Protocol):
    """Maps texts to unit vectors; ``name`` identifies model + version (it keys the cache)."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``len(texts) × dim`` float32, each row L2-normalised."""
        ...


@runtime_checkable
class ImageEncoder(Protocol):
    """Maps RGB images to unit vectors; ``name`` identifies model + preprocessing (it keys the cache)."""

    name: str
    dim: int

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        """``len(images) × dim`` float32, each row L2-normalised."""
        ...


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero (no division by zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32, copy=False)
