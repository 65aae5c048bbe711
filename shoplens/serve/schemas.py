"""Typed request and response bodies of the REST API (these generate the OpenAPI spec at /docs)."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from ..types import Hit, IngestReport, Product, SkippedRow

Attr = str | int | float | bool


class SearchRequest(BaseModel):
    """A text search (``POST /search``); ``GET /search`` takes the same fields as query parameters."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(default="", max_length=10_000, description="query text, Chinese or English")
    filters: list[str] = Field(
        default_factory=list, max_length=32, description="e.g. category=Apple, 'price<2', 'brand in [Arla, Oatly]'"
    )
    page: int = Field(default=1, ge=1, le=10_000)
    size: int = Field(default=12, ge=1, le=100)
    user: str | None = Field(default=None, max_length=256, description="a shopper id (for personalisation)")
    history: list[str] = Field(default_factory=list, max_length=100, description="product ids seen recently")
    explain: bool = Field(default=False, description="add each result's signals (why it ranks there)")


class ProductOut(BaseModel):
    id: str
    title: str
    description: str = ""
    category: str = ""
    brand: str = ""
    price: float | None = None
    attributes: dict[str, Attr] = Field(default_factory=dict)
    image_url: str | None = Field(default=None, description="the main photo, served by GET /images/{id}")
    image_urls: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, p: Product) -> ProductOut:
        return cls(**product_fields(p))


def image_url(product_id: str, n: int = 0) -> str:
    url = f"/images/{quote(product_id, safe='')}"
    return url if n == 0 else f"{url}?n={n}"


def product_fields(p: Product) -> dict[str, Any]:
    urls = [image_url(p.id, n) for n in range(len(p.images))]
    return {
        "id": p.id,
        "title": p.title,
        "description": p.description,
        "category": p.category,
        "brand": p.brand,
        "price": p.price,
        "attributes": dict(p.attributes),
        "image_url": urls[0] if urls else None,
        "image_urls": urls,
    }


class ResultItem(ProductOut):
    score: float
    rank: int
    signals: dict[str, float] | None = Field(
        default=None, description="with explain=true: each retriever's score and rank behind this result"
    )

    @classmethod
    def of_hit(cls, hit: Hit, explain: bool) -> ResultItem:
        return cls(
            **product_fields(hit.product),
            score=hit.score,
            rank=hit.rank,
            signals={k: float(v) for k, v in hit.signals.items()} if explain else None,
        )


class SearchResponse(BaseModel):
    query: str = ""
    results: list[ResultItem]
    total: int = Field(
        description="how many candidates the query retrieved (all pages): lexical matches and dense "
        "neighbours, after filters, at most a few times retrieve.depth; not a count of the whole catalogue"
    )
    page: int
    size: int
    pages: int
    facets: dict[str, dict[str, int]] = Field(default_factory=dict)
    took_ms: float
    timings_ms: dict[str, float] | None = None


class SkippedOut(BaseModel):
    row: int
    field: str
    reason: str
    id: str | None = None

    @classmethod
    def of(cls, s: SkippedRow) -> SkippedOut:
        return cls(row=s.row, field=s.field, reason=s.reason, id=s.id)


class UpsertRequest(BaseModel):
    """Products in the catalogue's canonical columns; photos are http(s) URLs or paths under the image root."""

    model_config = ConfigDict(extra="forbid")

    products: list[dict[str, Any]] = Field(min_length=1, max_length=100_000)


class UpsertResponse(BaseModel):
    rows: int
    added: int
    updated: int
    skipped: list[SkippedOut]
    warnings: list[SkippedOut]
    total: int
    generation: str | None

    @classmethod
    def of(cls, r: IngestReport, total: int, generation: str | None) -> UpsertResponse:
        return cls(
            rows=r.rows,
            added=r.added,
            updated=r.updated,
            skipped=[SkippedOut.of(s) for s in r.skipped],
            warnings=[SkippedOut.of(s) for s in r.warnings],
            total=total,
            generation=generation,
        )


class DeleteResponse(BaseModel):
    deleted: int
    total: int
    generation: str | None


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["impression", "click", "cart", "purchase"]
    product_id: str = Field(min_length=1, max_length=256)
    query: str | None = Field(default=None, max_length=1000)
    position: int | None = Field(default=None, ge=1, le=100_000)
    user: str | None = Field(default=None, max_length=256, description="stored only as an HMAC-SHA256 pseudonym")
    session: str | None = Field(default=None, max_length=256, description="stored only as a pseudonym")


class EventsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(min_length=1, max_length=1000)


class EventsResponse(BaseModel):
    accepted: int


class Health(BaseModel):
    status: Literal["ok", "empty"]
    products: int
    generation: str | None
    version: str
    search_workers: int


class ErrorBody(BaseModel):
    type: str
    status: int
    message: str
    details: list[str] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
