"""Retrieve: candidates per signal (BM25, dense text, image), rank fusion, filters and facets."""

from __future__ import annotations

from .filters import Filter, parse_filter
from .fusion import reciprocal_rank_fusion

__all__ = ["Filter", "parse_filter", "reciprocal_rank_fusion"]
