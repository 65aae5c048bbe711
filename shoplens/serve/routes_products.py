"""Product routes: read one, its photos (only those the index names), and writes behind the API key."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, RedirectResponse, Response

from ..errors import NotFoundError, RowError, ShoplensError
from ..ingest.catalog import record_to_product
from ..ingest.images import is_url
from ..types import Product
from .routes_search import ERRORS
from .runtime import Service, get_service
from .schemas import DeleteResponse, ProductOut, UpsertRequest, UpsertResponse
from .security import ReadKey, WriteKey
from .settings import ServeSettings

log = logging.getLogger(__name__)

router = APIRouter(tags=["products"], responses=ERRORS)
Svc = Annotated[Service, Depends(get_service)]

# Image types recognised by their first bytes; a file that is none of these is never served.
MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
)
IMAGE_HEADERS = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}


class BatchError(ShoplensError):
    """Some records of a PUT batch are invalid: nothing of the batch is written."""

    http_status = 400

    def __init__(self, problems: Sequence[str], rows: int) -> None:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        super().__init__(f"{len(problems)} of {rows} products invalid, nothing written: {'; '.join(problems[:3])}{more}")
        self.details = list(problems[:100])


class BatchTooLargeError(ShoplensError):
    """A PUT batch holds more products than the server accepts at once."""

    http_status = 413


def sniff_image_type(head: bytes) -> str | None:
    for magic, at, media in MAGIC:
        if head[at : at + len(magic)] == magic and (media != "image/webp" or head[:4] == b"RIFF"):
            return media
    return None


def _check_photo_refs(rec: Mapping[str, Any], row: int, settings: ServeSettings) -> None:
    """Photos named by API clients: http(s) URLs if allowed, else paths relative to the image root."""
    for field in ("image", "images"):
        value = rec.get(field)
        refs = value if isinstance(value, list | tuple) else str(value).split("|") if value else []
        for ref in refs:
            ref = str(ref).strip()
            if not ref:
                continue
            if "://" in ref:
                if is_url(ref) and not settings.allow_image_urls:
                    raise RowError(row, field, "photo URLs are disabled on this server")
                continue  # the scheme itself is checked by record_to_product
            if settings.image_root is None:
                raise RowError(row, field, "local photo paths need the server started with --image-root")
            if Path(ref).is_absolute() or ref.startswith("~"):
                raise RowError(row, field, f"photo path {ref[:80]!r} must be relative to the image root")


def records_to_products(records: Sequence[Any], settings: ServeSettings) -> list[Product]:
    """Validate a PUT batch completely before writing any of it (all or nothing)."""
    base = Path(settings.image_root).resolve() if settings.image_root else None
    problems: list[str] = []
    products: list[Product] = []
    seen: dict[str, int] = {}
    for row, rec in enumerate(records, start=1):
        try:
            if not isinstance(rec, dict):
                raise RowError(row, "*", f"expected an object, got {type(rec).__name__}")
            _check_photo_refs(rec, row, settings)
            product = record_to_product(rec, row, base)
            if product.id in seen:
                raise RowError(row, "id", f"duplicate id {product.id!r} (first in row {seen[product.id]})")
        except RowError as e:
            problems.append(str(e))
            continue
        seen[product.id] = row
        products.append(product)
    if problems:
        raise BatchError(problems, len(records))
    return products


@router.get("/products/{product_id:path}", response_model=ProductOut, dependencies=[ReadKey], summary="One product")
async def get_product(svc: Svc, product_id: str) -> ProductOut:
    engine = await svc.fresh_engine()
    return ProductOut.of(engine.get(product_id))


@router.get(
    "/images/{product_id:path}",
    dependencies=[ReadKey],
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
    summary="A product's photo, from the index (never an arbitrary path)",
)
async def get_image(
    svc: Svc, product_id: str, n: Annotated[int, Query(ge=0, le=1000, description="which photo")] = 0
) -> Response:
    engine = await svc.fresh_engine()
    product = engine.get(product_id)
    if n >= len(product.images):
        raise NotFoundError(f"product {product_id!r} has no photo number {n}")
    ref = product.images[n]
    if is_url(ref):
        return RedirectResponse(ref, status_code=302)
    path = Path(ref)
    if not path.is_absolute() or not path.is_file():
        raise NotFoundError(f"the photo of product {product_id!r} is not available")
    with path.open("rb") as fh:
        media = sniff_image_type(fh.read(16))
    if media is None:
        log.warning("refusing to serve %s: not an image by content", path)
        raise NotFoundError(f"the photo of product {product_id!r} is not available")
    return FileResponse(path, media_type=media, headers=IMAGE_HEADERS)


@router.put(
    "/products", response_model=UpsertResponse, dependencies=[WriteKey], summary="Add or replace products"
)
async def put_products(svc: Svc, body: UpsertRequest) -> UpsertResponse:
    if len(body.products) > svc.settings.max_batch:
        raise BatchTooLargeError(
            f"{len(body.products)} products in one batch; the limit is {svc.settings.max_batch}: split it"
        )
    products = records_to_products(body.products, svc.settings)
    await svc.fresh_engine()
    report = await svc.write_pool.run(_write, svc, lambda: svc.engine.upsert(products))
    return UpsertResponse.of(report, len(svc.engine), svc.handle.generation())


@router.delete(
    "/products/{product_id:path}", response_model=DeleteResponse, dependencies=[WriteKey], summary="Delete a product"
)
async def delete_product(svc: Svc, product_id: str) -> DeleteResponse:
    await svc.fresh_engine()
    deleted = await svc.write_pool.run(_write, svc, lambda: svc.engine.delete([product_id]))
    return DeleteResponse(deleted=deleted, total=len(svc.engine), generation=svc.handle.generation())


def _write(svc: Service, fn: Any) -> Any:
    """Run a write, then warm the new generation so the next search does not pay for lazy loading."""
    out = fn()
    svc.handle.warm()
    return out
