"""Graded judgments from logged shopper behaviour, corrected for position bias, for `shoplens train --events`.

Per (query, product): a purchase grades 3, an add-to-cart 2, and clicks grade 1 when the product's
position-debiased click-through rate reaches ``min_ctr``. Debiasing is inverse propensity weighting
(Joachims, Swaminathan & Schnabel, 2017): a click at position p counts p^η (the chance of being
examined falls as (1/p)^η), so a click far down the page is stronger evidence than one at the top.
Products shown but not chosen get grade 0 — explicit negatives for LambdaMART.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

from ..types import Query
from .behaviour import ETA

log = logging.getLogger(__name__)

GRADES = {"purchase": 3, "cart": 2}
MAX_CLICK_WEIGHT = 20.0


def judgments_from_events(
    path: Path, min_ctr: float = 0.3, eta: float = ETA
) -> tuple[list[tuple[str, Query]], dict[str, dict[str, int]]]:
    """Queries (one per distinct normalised query text) and their graded judgments from an event log
    (the index's ``events/events.jsonl`` or a JSONL file in the same format)."""
    shown: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    clicks: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    grade: dict[str, dict[str, int]] = defaultdict(dict)
    texts: dict[str, str] = {}
    bad = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
            kind, product, text = ev.get("type"), ev.get("product"), ev.get("query")
        except (json.JSONDecodeError, AttributeError):
            bad += 1
            continue
        if not isinstance(text, str) or not text.strip() or product is None:
            continue  # behaviour without a query (browsing) only feeds popularity features
        key = " ".join(text.casefold().split())
        texts.setdefault(key, text.strip())
        pid = str(product)
        pos = ev.get("position")
        if kind == "impression":
            shown[key][pid] += 1
        elif kind == "click":
            weight = (
                float(pos) ** eta if isinstance(pos, int) and not isinstance(pos, bool) and pos >= 1 else 1.0
            )
            clicks[key][pid] += min(weight, MAX_CLICK_WEIGHT)
        elif kind in GRADES:
            grade[key][pid] = max(grade[key].get(pid, 0), GRADES[kind])
    if bad:
        log.warning("%s: %d malformed event lines skipped", path, bad)
    queries: list[tuple[str, Query]] = []
    qrels: dict[str, dict[str, int]] = {}
    for n, key in enumerate(sorted(texts)):
        judged: dict[str, int] = {pid: 0 for pid in shown[key]}
        for pid, weighted in clicks[key].items():
            ctr = weighted / max(shown[key].get(pid, 0), 1)
            if ctr >= min_ctr:
                judged[pid] = max(judged.get(pid, 0), 1)
        for pid, g in grade[key].items():
            judged[pid] = max(judged.get(pid, 0), g)
        if any(g > 0 for g in judged.values()):
            qid = f"ev{n:05d}"
            queries.append((qid, Query(texts[key])))
            qrels[qid] = judged
    log.info("%s: %d queries with positive behaviour", path, len(queries))
    return queries, qrels
