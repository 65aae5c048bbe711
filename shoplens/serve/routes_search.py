"""Search routes: text (GET/POST /search), photo upload (POST /search/image), and more like this."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import Response

from ..errors import ImageError, QueryError
from ..types import SearchResult
from .runtime import Service, get_service
from .schemas import ErrorResponse, ResultItem, SearchRequest, SearchResponse
from .security import ReadKey

if TYPE_CHECKING:
    from ..engine import Engine

MAX_OFFSET = 10_000

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 415, 503)
}

router = APIRouter(tags=["search"], dependencies=[ReadKey], responses=ERRORS)
Svc = Annotated[Service, Depends(get_service)]


def _offset(page: int, size: int) -> int:
    offset = (page - 1) * size
    if offset + size > MAX_OFFSET:
        raise QueryError(f"page {page} of size {size} is too deep; results stop at {MAX_OFFSET}")
    return offset


def _response(req: SearchRequest, result: SearchResult, started: float) -> SearchResponse:
    return SearchResponse(
        query=req.q,
        results=[ResultItem.of_hit(h, req.explain) for h in result.hits],
        total=result.total,
        page=req.page,
        size=req.size,
        pages=math.ceil(result.total / req.size) if req.size else 0,
        facets={name: dict(counts) for name, counts in result.facets.items()},
        took_ms=round((time.perf_counter() - started) * 1e3, 2),
        timings_ms={k: round(v, 3) for k, v in result.timings_ms.items()} if req.explain else None,
    )


async def _search(svc: Service, req: SearchRequest, image: bytes | None = None) -> Response:
    started = time.perf_counter()
    offset = _offset(req.page, req.size)
    engine = await svc.fresh_engine()

    def work() -> bytes:
        result = engine.search(req.q, image=image, filters=req.filters, k=req.size, offset=offset,
                               history=req.history, user=req.user)
        return _response(req, result, started).model_dump_json().encode()

    # The answer is serialised on the worker too: the event loop only moves bytes, so it stays responsive
    # under load (and FastAPI does not validate the response model a second time).
    return Response(await svc.search_pool.run(work), media_type="application/json")


@router.get("/search", response_model=SearchResponse, summary="Search by text")
async def search_get(
    svc: Svc,
    q: Annotated[str, Query(max_length=10_000, description="query text, Chinese or English")] = "",
    filters: Annotated[
        list[str] | None, Query(alias="filter", max_length=32, description="repeatable: category=Apple")
    ] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 12,
    user: Annotated[str | None, Query(max_length=256)] = None,
    history: Annotated[list[str] | None, Query(max_length=100)] = None,
    explain: bool = False,
) -> Response:
    req = SearchRequest(
        q=q, filters=filters or [], page=page, size=size, user=user, history=history or [], explain=explain
    )
    return await _search(svc, req)


@router.post("/search", response_model=SearchResponse, summary="Search by text (JSON body)")
async def search_post(svc: Svc, req: SearchRequest) -> Response:
    return await _search(svc, req)


@router.post("/search/image", response_model=SearchResponse, summary="Search by photo (and optional text)")
async def search_image(
    svc: Svc,
    image: Annotated[UploadFile, File(description="a photo: JPEG, PNG, WebP, GIF, BMP or TIFF (checked by content)")],
    q: Annotated[str, Form(max_length=10_000)] = "",
    filters: Annotated[list[str] | None, Form(alias="filter", max_length=32)] = None,
    page: Annotated[int, Form(ge=1, le=10_000)] = 1,
    size: Annotated[int, Form(ge=1, le=100)] = 12,
    explain: Annotated[bool, Form()] = False,
) -> Response:
    limit = svc.settings.max_upload_bytes
    data = await image.read(limit + 1)
    if not data:
        raise ImageError("the uploaded photo is empty")
    req = SearchRequest(q=q, filters=filters or [], page=page, size=size, explain=explain)
    # The bytes are decoded by content (never by file name or declared type) inside the engine.
    return await _search(svc, req, image=data)


@router.get(
    "/products/{product_id:path}/similar", response_model=SearchResponse, summary="More like this product"
)
async def similar(
    svc: Svc,
    product_id: str,
    filters: Annotated[list[str] | None, Query(alias="filter", max_length=32)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 12,
    explain: bool = False,
) -> Response:
    started = time.perf_counter()
    req = SearchRequest(q="", filters=filters or [], page=page, size=size, explain=explain)
    offset = _offset(page, size)
    engine = await svc.fresh_engine()

    def work() -> bytes:
        result = engine.similar(product_id, k=offset + size, filters=req.filters)
        paged = SearchResult(result.hits[offset:], result.total, result.facets, result.timings_ms)
        return _response(req, paged, started).model_dump_json().encode()

    return Response(await svc.search_pool.run(work), media_type="application/json")


async def _list_response(svc: Svc, size: int, produce: Callable[[Engine], SearchResult]) -> Response:
    """A product list ("bought together", "recommended for you") as a search response."""
    started = time.perf_counter()
    req = SearchRequest(q="", size=size)
    engine = await svc.fresh_engine()

    def work() -> bytes:
        return _response(req, produce(engine), started).model_dump_json().encode()

    return Response(await svc.search_pool.run(work), media_type="application/json")


@router.get(
    "/products/{product_id:path}/together",
    response_model=SearchResponse,
    summary="Bought together (shared carts and purchases in the event log; else more like this)",
)
async def together(svc: Svc, product_id: str, size: Annotated[int, Query(ge=1, le=100)] = 12) -> Response:
    return await _list_response(svc, size, lambda engine: engine.bought_together(product_id, k=size))


@router.get("/recommend", response_model=SearchResponse, summary="Recommended for you (history or stored events)")
async def recommend(
    svc: Svc,
    history: Annotated[list[str] | None, Query(max_length=100)] = None,
    user: Annotated[str | None, Query(max_length=200)] = None,
    size: Annotated[int, Query(ge=1, le=100)] = 12,
) -> Response:
    return await _list_response(svc, size, lambda engine: engine.recommend(history or [], user, k=size))
