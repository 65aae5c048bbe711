"""Colour from the pixels: a foreground, centre-weighted HSV histogram (ImageNet features know colour least)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

NAME = "hsv-hist-114-v1"
DIM = 114  # 12 hues × 3 saturations × 3 values for chromatic pixels, 6 grey levels for the rest


@lru_cache(maxsize=4)
def _centre_weights(size: int) -> np.ndarray:
    """Products are usually centred: a Gaussian weight around the centre, one per pixel."""
    yy, xx = np.mgrid[0:size, 0:size]
    c = size / 2
    w = np.exp(-(((yy - c) / (size / 2.5)) ** 2 + ((xx - c) / (size / 2.5)) ** 2)).ravel()
    w.setflags(write=False)
    return w


# Bins from the 8-bit HSV channels: x/256 binned into n equal parts is (x * n) >> 8; as lookup
# tables, so a pixel's bin is three table reads and two additions (uint8: at most 113).
_HUE_BIN = ((np.arange(256) * 12 >> 8) * 9).astype(np.uint8)
_SAT_BIN = ((np.arange(256) * 3 >> 8) * 3).astype(np.uint8)
_VAL_BIN = (np.arange(256) * 3 >> 8).astype(np.uint8)
_GREY_BIN = (108 + (np.arange(256) * 6 >> 8)).astype(np.uint8)


def colour_histogram(img: Image.Image, size: int = 64) -> np.ndarray:
    """Square-rooted (Hellinger) colour histogram of the product, ignoring a white/light background."""
    im = (img if img.mode == "RGB" else img.convert("RGB")).resize((size, size), Image.Resampling.BILINEAR)
    rgb = np.asarray(im).reshape(-1, 3)
    hsv = np.asarray(im.convert("HSV")).reshape(-1, 3)
    # Channel by channel: min/max over a trailing axis of 3 cost more than the rest of the function.
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    lo, hi = np.minimum(np.minimum(r, g), b), np.maximum(np.maximum(r, g), b)
    fg = (lo <= 220) | (hi - lo >= 25)  # background: light (> 220) and unsaturated (spread < 25)
    if np.count_nonzero(fg) < 30:  # a photo that is all background (or all product): use every pixel
        fg[:] = True
    w = _centre_weights(size) * fg
    h, s, v = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    # Chromatic pixels: 12 hues × 3 saturations × 3 values; s/256 > 0.2 ⇔ s ≥ 52; others: grey levels.
    idx = np.where(s > 51, _HUE_BIN[h] + _SAT_BIN[s] + _VAL_BIN[v], _GREY_BIN[v])
    hist = np.bincount(idx, weights=w, minlength=DIM)
    total = hist.sum()
    if total > 0:
        hist = hist / total
    return np.sqrt(hist).astype(np.float32)
