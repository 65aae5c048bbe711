"""Attention fusion for "more like this": a gate learned from the catalogue's own facets."""

from __future__ import annotations

import numpy as np
import pytest

from shoplens.config import Config, FuseConfig
from shoplens.errors import ConfigError
from shoplens.fuse.attention import facet_codes, fit_attention


def _catalogue(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[list[tuple[str, str]]]]:
    """Kinds are told apart by the text only; the photos are noise."""
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, 6, n)
    centres = rng.normal(size=(6, 32))
    text = centres[kinds] + 0.3 * rng.normal(size=(n, 32))
    image = rng.normal(size=(n, 48))
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    items = [[("kind", f"k{k}"), ("shop", "s")] for k in kinds]
    return text.astype(np.float32), image.astype(np.float32), items


def test_gate_learns_to_trust_the_informative_modality() -> None:
    text, image, items = _catalogue()
    ones = np.ones(len(text), bool)
    fusion = fit_attention(text, image, ones, ones, items)
    assert fusion is not None
    alphas = [fusion.alpha(text[i], image[i], True, True) for i in range(20)]
    assert min(alphas) > 0.6  # the text share grows: only the text separates the kinds
    assert fusion.alpha(text[0], image[0], True, False) == 1.0 and fusion.alpha(text[0], image[0], False, True) == 0.0
    again = fit_attention(text, image, ones, ones, items)
    assert again is not None and np.allclose(again.gate.theta, fusion.gate.theta)  # deterministic


def test_nothing_to_learn_from_falls_back() -> None:
    text, image, items = _catalogue(40)
    ones = np.ones(len(text), bool)
    assert fit_attention(text, image, ones, ones, items) is None  # fewer than 50 products with both
    text, image, _ = _catalogue()
    ones = np.ones(len(text), bool)
    assert fit_attention(text, image, ones, ones, [[] for _ in text]) is None  # no facets
    assert facet_codes([[("id", str(i))] for i in range(400)]) is None  # one value per product is no facet


def test_fuse_mode_is_validated() -> None:
    assert Config().fuse.mode == "attention"
    assert Config.from_dict({"fuse": {"mode": "concat"}}).fuse.mode == "concat"
    with pytest.raises(ConfigError, match="fuse.mode"):
        FuseConfig(mode="average")
