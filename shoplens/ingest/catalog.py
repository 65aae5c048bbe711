"""Turn catalogue records into validated products: column mapping, type checks, a skipped-row report."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RowError
from ..types import AttrValue, Product, SkippedRow
from .images import resolve_image_ref
from .readers import read_records

log = logging.getLogger(__name__)

CANONICAL = ("id", "title", "description", "reviews", "image", "images", "price", "category", "brand")
TEXT_FIELDS = ("title", "description", "reviews", "category", "brand")
MAX_TEXT_CHARS = 100_000


def parse_mapping(items: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["title=productDisplayName"]`` → ``{"title": "productDisplayName"}`` (canonical = source)."""
    if items is None:
        return {}
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            if "=" not in item:
                raise ConfigError(f"column mapping {item!r} must look like canonical=source, e.g. title=name")
            k, v = item.split("=", 1)
            pairs.append((k.strip(), v.strip()))
    out: dict[str, str] = {}
    for k, v in pairs:
        if not k or not v:
            raise ConfigError(f"column mapping {k}={v} has an empty side")
        out[k] = v
    return out


def load_catalog(
    path: str | Path, mapping: Mapping[str, str] | None = None, check_paths: bool = True
) -> tuple[list[tuple[int, Product]], list[SkippedRow], int]:
    """Read a catalogue file into ``(row, product)`` pairs, the skipped rows, and the rows read.

    Image references are resolved (relative to the catalogue's folder) but not decoded here: the
    image encoder decodes each photo once and reports the ones that fail.
    """
    p = Path(path)
    base = p.resolve().parent
    rename = {src: canon for canon, src in (mapping or {}).items()}
    products: list[tuple[int, Product]] = []
    skipped: list[SkippedRow] = []
    seen: dict[str, int] = {}
    rows = 0
    for row, rec, err in read_records(p):
        rows += 1
        if rec is None:
            skipped.append(SkippedRow(row, "*", err))
            continue
        rec = {rename.get(k, k): v for k, v in rec.items()}
        try:
            product = record_to_product(rec, row, base, check_paths)
        except RowError as e:
            skipped.append(SkippedRow(row, e.field, e.reason, _raw_id(rec)))
            continue
        if product.id in seen:
            skipped.append(
                SkippedRow(row, "id", f"duplicate id {product.id!r} (first seen in row {seen[product.id]})", product.id)
            )
            continue
        seen[product.id] = row
        products.append((row, product))
    if skipped:
        log.warning("%s: %d of %d rows skipped", p, len(skipped), rows)
    return products, skipped, rows


def _raw_id(rec: Mapping[str, Any]) -> str | None:
    v = rec.get("id")
    return None if v is None else str(v)[:100]


def record_to_product(rec: Mapping[str, Any], row: int, base: Path | None, check_paths: bool = True) -> Product:
    """Validate one record (canonical column names) into a :class:`Product`, or raise RowError."""
    pid = _id(rec.get("id"), row)
    text = {f: _text(rec.get(f), row, f) for f in TEXT_FIELDS}
    price = _price(rec.get("price"), row)
    images: list[str] = []
    main = rec.get("image")
    if main is not None and not _is_blank(main):
        if not isinstance(main, str):
            raise RowError(row, "image", f"expected a path or URL, got {type(main).__name__}")
        images.append(resolve_image_ref(main.strip(), base, row, "image", check_paths))
    extra = rec.get("images")
    if extra is not None and not _is_blank(extra):
        refs = extra if isinstance(extra, list | tuple) else str(extra).split("|")
        for ref in refs:
            if not isinstance(ref, str):
                raise RowError(row, "images", f"expected paths or URLs, got {type(ref).__name__}")
            if ref.strip():
                resolved = resolve_image_ref(ref.strip(), base, row, "images", check_paths)
                if resolved not in images:
                    images.append(resolved)
    attributes: dict[str, AttrValue] = {}
    for key, value in rec.items():
        if key in CANONICAL or key is None or _is_blank(value):
            continue
        attributes[str(key)] = _attr(value, row, str(key))
    if not any(text[f] for f in ("title", "description", "reviews")) and not images:
        raise RowError(row, "title", "the product has neither text (title/description/reviews) nor a photo")
    return Product(
        id=pid,
        title=text["title"],
        description=text["description"],
        reviews=text["reviews"],
        images=tuple(images),
        price=price,
        category=text["category"],
        brand=text["brand"],
        attributes=attributes,
    )


def _is_blank(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()


def _id(v: Any, row: int) -> str:
    if _is_blank(v):
        raise RowError(row, "id", "missing id")
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise RowError(row, "id", f"expected a string or number, got {type(v).__name__}")
    if isinstance(v, float):
        if not v.is_integer():
            raise RowError(row, "id", f"a non-integer number {v!r} is not a usable id")
        v = int(v)
    s = str(v).strip()
    if len(s) > 256:
        raise RowError(row, "id", "id longer than 256 characters")
    if any(ord(c) < 32 for c in s):
        raise RowError(row, "id", "id contains control characters")
    return s


def _text(v: Any, row: int, field: str) -> str:
    if _is_blank(v):
        return ""
    if isinstance(v, list | tuple) and field == "reviews":
        v = "\n".join(str(x) for x in v if not _is_blank(x))
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise RowError(row, field, f"expected text, got {type(v).__name__}")
    s = str(v).strip()
    if len(s) > MAX_TEXT_CHARS:
        raise RowError(row, field, f"text longer than {MAX_TEXT_CHARS} characters")
    return s


def _price(v: Any, row: int) -> float | None:
    if _is_blank(v):
        return None
    if isinstance(v, bool):
        raise RowError(row, "price", "expected a number, got a boolean")
    if isinstance(v, str):
        cleaned = v.strip().lstrip("$€£¥").replace(",", "")
        try:
            num = float(cleaned)
        except ValueError:
            raise RowError(row, "price", f"expected a number, got {v!r}") from None
    elif isinstance(v, int | float):
        num = float(v)
    else:
        raise RowError(row, "price", f"expected a number, got {type(v).__name__}")
    if math.isnan(num) or math.isinf(num) or num < 0:
        raise RowError(row, "price", f"price must be a finite number ≥ 0, got {v!r}")
    return num


def _attr(v: Any, row: int, field: str) -> AttrValue:
    if isinstance(v, str):
        s = v.strip()
        if len(s) > 10_000:
            raise RowError(row, field, "attribute value longer than 10,000 characters")
        return s
    if isinstance(v, bool | int):
        return v
    if isinstance(v, float):
        if math.isinf(v):
            raise RowError(row, field, "infinite number")
        return int(v) if v.is_integer() else v
    if isinstance(v, Sequence):
        return "|".join(str(x) for x in v)
    raise RowError(row, field, f"unsupported value type {type(v).__name__}")
