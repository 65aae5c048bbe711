"""Encode: text and image encoders behind small contracts, plus a content-hash embedding cache."""

from __future__ import annotations

from .base import ImageEncoder, TextEncoder, l2_normalize
from .registry import build_image_encoder, build_text_encoder

__all__ = ["TextEncoder", "ImageEncoder", "l2_normalize", "build_text_encoder", "build_image_encoder"]
