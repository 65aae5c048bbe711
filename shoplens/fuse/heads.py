"""Linear projection heads: trained with torch, applied with numpy, saved as plain .npy + JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..encode.base import l2_normalize


@dataclass(frozen=True)
class ProjectionHead:
    """``normalize(x @ weight + bias)``; ``identity`` heads pass vectors through unchanged."""

    weight: np.ndarray  # d_in × d_out
    bias: np.ndarray  # d_out

    @property
    def d_in(self) -> int:
        return int(self.weight.shape[0])

    @property
    def d_out(self) -> int:
        return int(self.weight.shape[1])

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if x.ndim == 1:
            return self.apply(x[None, :])[0]
        if x.shape[0] == 0:
            return np.zeros((0, self.d_out), np.float32)
        return l2_normalize(x @ self.weight + self.bias)

    def save(self, folder: Path, name: str) -> None:
        np.save(folder / f"{name}.weight.npy", self.weight.astype(np.float32))
        np.save(folder / f"{name}.bias.npy", self.bias.astype(np.float32))

    @classmethod
    def load(cls, folder: Path, name: str) -> ProjectionHead:
        return cls(np.load(folder / f"{name}.weight.npy"), np.load(folder / f"{name}.bias.npy"))


def data_hash(*arrays: np.ndarray) -> str:
    """A short fingerprint of the training data, stored beside the model."""
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, np.float32).tobytes())
    return h.hexdigest()[:16]


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True), encoding="utf-8")
