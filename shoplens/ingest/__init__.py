"""Ingest: read catalogue files into typed products, with a report of every skipped row."""

from __future__ import annotations

from .catalog import load_catalog, parse_mapping
from .images import decode_image, load_image_bytes

__all__ = ["load_catalog", "parse_mapping", "load_image_bytes", "decode_image"]
