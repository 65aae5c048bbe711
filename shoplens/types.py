"""The typed, frozen values that the stages hand each other."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from .errors import QueryError

AttrValue = str | int | float | bool
# A query photo: a path or URL, the file's bytes, or an already opened image.
QueryImage = str | bytes | os.PathLike[str] | Image.Image


@dataclass(frozen=True)
class Product:
    """One catalogue product; any of text or photos may be missing, never both."""

    id: str
    title: str = ""
    description: str = ""
    reviews: str = ""
    images: tuple[str, ...] = ()
    price: float | None = None
    category: str = ""
    brand: str = ""
    attributes: Mapping[str, AttrValue] = field(default_factory=dict)

    @property
    def image(self) -> str | None:
        """The main photo (the first one), if any."""
        return self.images[0] if self.images else None

    @property
    def has_text(self) -> bool:
        return bool(self.title or self.description or self.reviews)

    def field_value(self, name: str) -> Any:
        """A canonical field or an attribute by name (used by filters and facets)."""
        if name in ("id", "title", "description", "reviews", "price", "category", "brand"):
            return getattr(self, name)
        return self.attributes.get(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "reviews": self.reviews,
            "images": list(self.images),
            "price": self.price,
            "category": self.category,
            "brand": self.brand,
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Product:
        return cls(
            id=str(d["id"]),
            title=d.get("title", "") or "",
            description=d.get("description", "") or "",
            reviews=d.get("reviews", "") or "",
            images=tuple(d.get("images", ()) or ()),
            price=d.get("price"),
            category=d.get("category", "") or "",
            brand=d.get("brand", "") or "",
            attributes=dict(d.get("attributes", {}) or {}),
        )


@dataclass(frozen=True)
class Query:
    """A shopper's query: text, a photo (path, URL, bytes or PIL image), filters and interaction history."""

    text: str = ""
    image: QueryImage | None = None
    filters: tuple[str, ...] = ()
    history: tuple[str, ...] = ()
    k: int = 10
    offset: int = 0
    user: str | None = None
    explain: bool = False

    @classmethod
    def of(
        cls,
        text: str | Query = "",
        image: QueryImage | None = None,
        filters: Sequence[str] = (),
        k: int = 10,
        offset: int = 0,
        history: Sequence[str] = (),
        user: str | None = None,
        explain: bool = False,
    ) -> Query:
        """The query of a ``search(...)`` call: a ready Query passes through; text must be a string."""
        if isinstance(text, Query):
            return text
        if not isinstance(text, str):
            raise QueryError(f"query text must be a string, got {type(text).__name__}")
        if image is not None and not isinstance(image, str | bytes | os.PathLike | Image.Image):
            raise QueryError(f"a query photo must be a path, URL, bytes or PIL image, got {type(image).__name__}")
        return cls(text, image, tuple(filters), tuple(history), k, offset, user, explain)


@dataclass(frozen=True)
class Candidate:
    """One retriever's opinion of one product: its raw score and 1-based rank in that retriever."""

    doc: int
    score: float
    rank: int
    source: str


@dataclass(frozen=True)
class Hit:
    """One ranked result: the product, its final score, and each signal's score/rank behind it."""

    product: Product
    score: float
    rank: int
    signals: Mapping[str, float] = field(default_factory=dict)
    # With --explain: each ranking feature's contribution to the score (or its value, untrained).
    explanation: Mapping[str, float] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.product.id

    def to_dict(self) -> dict[str, Any]:
        d = self.product.to_dict()
        d.update(score=self.score, rank=self.rank, signals=dict(self.signals))
        if self.explanation:
            d["explanation"] = dict(self.explanation)
        return d


@dataclass(frozen=True)
class SearchResult:
    """The answer to a query: the page of hits, the total number of matches and facet counts."""

    hits: tuple[Hit, ...]
    # Candidates the query retrieved (every retriever's, fused, after filters): bounded by the
    # retrieval depth, so it counts what can be paged through, not every product that mentions a word.
    total: int
    facets: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    understood: Mapping[str, object] = field(default_factory=dict)  # attributes/price read from the query


@dataclass(frozen=True)
class SkippedRow:
    """A catalogue row that was not imported, and why."""

    row: int
    field: str
    reason: str
    id: str | None = None

    def __str__(self) -> str:
        who = f" (id {self.id})" if self.id else ""
        return f"row {self.row}{who}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class IngestReport:
    """What an import did: counts of rows read, added, updated, skipped, and each skipped row."""

    rows: int
    added: int
    updated: int
    skipped: tuple[SkippedRow, ...] = ()
    warnings: tuple[SkippedRow, ...] = ()

    def summary(self) -> str:
        return (
            f"{self.rows} rows read: {self.added} added, {self.updated} updated, "
            f"{len(self.skipped)} skipped, {len(self.warnings)} warnings"
        )
