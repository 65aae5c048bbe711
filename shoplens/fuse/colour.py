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


def colour_histogram(img: Image.Image, size: int = 64) -> np.ndarray:
    """Square-rooted (Hellinger) colour histogram of the product, ignoring a white/light background."""
    im = (img if img.mode == "RGB" else img.convert("RGB")).resize((size, size), Image.Resampling.BILINEAR)
    rgb = np.asarray(im).reshape(-1, 3)
    hsv = np.asarray(im.convert("HSV")).reshape(-1, 3)
    lo, hi = rgb.min(axis=1), rgb.max(axis=1)
    fg = ~((lo > 220) & (hi - lo < 25))  # background: light and unsaturated
    if np.count_nonzero(fg) < 30:  # a photo that is all background (or all product): use every pixel
        fg[:] = True
    w = _centre_weights(size) * fg
    # Bins from the 8-bit HSV channels: x/256 binned into n equal parts is (x * n) >> 8.
    h, s, v = hsv[:, 0].astype(np.intp), hsv[:, 1].astype(np.intp), hsv[:, 2].astype(np.intp)
    chroma = (h * 12 >> 8) * 9 + (s * 3 >> 8) * 3 + (v * 3 >> 8)
    grey = 108 + (v * 6 >> 8)
    idx = np.where(s > 51, chroma, grey)  # s/256 > 0.2  ⇔  s ≥ 52 (s > 51.2)
    hist = np.bincount(idx, weights=w, minlength=DIM)
    total = hist.sum()
    if total > 0:
        hist = hist / total
    return np.sqrt(hist).astype(np.float32)
