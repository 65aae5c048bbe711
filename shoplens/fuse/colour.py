"""Colour from the pixels: a foreground, centre-weighted HSV histogram (ImageNet features know colour least)."""

from __future__ import annotations

import numpy as np
from PIL import Image

NAME = "hsv-hist-114-v1"
DIM = 114  # 12 hues × 3 saturations × 3 values for chromatic pixels, 6 grey levels for the rest


def colour_histogram(img: Image.Image, size: int = 64) -> np.ndarray:
    """Square-rooted (Hellinger) colour histogram of the product, ignoring a white/light background."""
    im = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    rgb = np.asarray(im, np.float32).reshape(-1, 3)
    hsv = np.asarray(im.convert("HSV"), np.float32).reshape(-1, 3) / 256.0
    background = (rgb.min(axis=1) > 220) & (rgb.max(axis=1) - rgb.min(axis=1) < 25)
    fg = ~background
    if fg.sum() < 30:  # a photo that is all background (or all product): use every pixel
        fg[:] = True
    # Products are usually centred: weight pixels by a Gaussian around the centre.
    yy, xx = np.mgrid[0:size, 0:size]
    c = size / 2
    w = np.exp(-(((yy - c) / (size / 2.5)) ** 2 + ((xx - c) / (size / 2.5)) ** 2)).ravel() * fg
    h, s, v = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    hb = np.minimum((h * 12).astype(int), 11)
    sb = np.minimum((s * 3).astype(int), 2)
    vb = np.minimum((v * 3).astype(int), 2)
    grey = 108 + np.minimum((v * 6).astype(int), 5)
    idx = np.where(s > 0.2, hb * 9 + sb * 3 + vb, grey)
    hist = np.bincount(idx, weights=w, minlength=DIM)
    total = hist.sum()
    if total > 0:
        hist = hist / total
    return np.sqrt(hist).astype(np.float32)
