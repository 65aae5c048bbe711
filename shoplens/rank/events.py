"""Validate shopper events and append them to the index's event log, user ids pseudonymised."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from .behaviour import EVENT_TYPES

log = logging.getLogger(__name__)
ALIASES = {"add_to_cart": "cart", "add-to-cart": "cart", "addtocart": "cart", "view": "impression", "buy": "purchase"}


def validate_event(ev: object, known: set[str]) -> tuple[dict[str, object] | None, str]:
    if not isinstance(ev, Mapping):
        return None, "an event must be a JSON object"
    kind = str(ev.get("type", "")).strip().lower()
    kind = ALIASES.get(kind, kind)
    if kind not in EVENT_TYPES:
        return None, f"type must be one of {', '.join(EVENT_TYPES)} (got {ev.get('type')!r})"
    product = ev.get("product", ev.get("product_id"))
    if product is None or str(product) not in known:
        return None, f"unknown product {product!r}"
    pos = ev.get("position")
    if pos is not None and (isinstance(pos, bool) or not isinstance(pos, int) or pos < 1):
        return None, "position must be an integer ≥ 1"
    out: dict[str, object] = {"type": kind, "product": str(product)}
    for key in ("user", "query", "position", "timestamp"):
        if ev.get(key) is not None:
            out[key] = ev[key]
    return out, ""


def append_events(index: Path, events: Iterable[object], known: set[str]) -> tuple[int, list[str]]:
    """Store valid events (a clear reason for each rejected one); user ids pass through HMAC-SHA256."""
    from ..serve.events import EventLog

    good, problems = [], []
    for n, ev in enumerate(events, start=1):
        valid, why = validate_event(ev, known)
        if valid is None:
            problems.append(f"event {n}: {why}")
        else:
            good.append(valid)
    stored = EventLog(index).append(good) if good else 0
    return stored, problems


def read_events_file(path: Path) -> tuple[list[object], list[str]]:
    out: list[object] = []
    problems: list[str] = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            problems.append(f"line {n}: malformed JSON: {e.msg}")
            out.append(None)
    return out, problems
