"""shoplens: multimodal (Chinese/English text + photo) product search and ranking on one CPU machine."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Config  # noqa: E402
from .engine import Engine  # noqa: E402
from .errors import ShoplensError  # noqa: E402
from .types import Hit, IngestReport, Product, Query, SearchResult  # noqa: E402

__all__ = ["Engine", "Config", "Product", "Query", "Hit", "SearchResult", "IngestReport", "ShoplensError", "__version__"]
