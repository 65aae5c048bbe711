"""``shoplens run``: batch search from a JSONL file of queries into a TREC run file, with latencies."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..engine import Engine
from ..errors import ShoplensError
from ..eval.trec import format_run
from ..ingest.images import is_url
from ..types import Query

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a JSONL file of queries; write a TREC run file")
    p.add_argument("index", type=Path)
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--tag", default="shoplens")
    p.add_argument("--latency-out", type=Path, help="also write the per-query latencies (ms) as a JSON list")
    p.set_defaults(func=run_queries)


def read_queries(path: Path) -> tuple[list[tuple[str, Query]], list[str]]:
    """Parse the queries file; bad lines are returned as messages, not raised."""
    queries: list[tuple[str, Query]] = []
    errors: list[str] = []
    base = path.resolve().parent
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj: Any = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"line {n}: malformed JSON: {e.msg}")
            continue
        if not isinstance(obj, dict) or "qid" not in obj:
            errors.append(f"line {n}: expected an object with a 'qid'")
            continue
        text = obj.get("text") or ""
        image = obj.get("image")
        filters = obj.get("filters") or []
        history = obj.get("history") or []
        if not isinstance(text, str) or (image is not None and not isinstance(image, str)):
            errors.append(f"line {n}: 'text' and 'image' must be strings")
            continue
        if isinstance(filters, dict):
            filters = [f"{k}={v}" for k, v in filters.items()]
        if not isinstance(filters, list) or not isinstance(history, list):
            errors.append(f"line {n}: 'filters' and 'history' must be lists")
            continue
        if image and not is_url(image) and not Path(image).is_absolute():
            image = str(base / image)
        queries.append(
            (str(obj["qid"]), Query(text, image, tuple(map(str, filters)), tuple(map(str, history)), 10))
        )
    return queries, errors


def run_queries(args: argparse.Namespace) -> int:
    engine = Engine.open(args.index)
    queries, errors = read_queries(args.queries)
    for e in errors:
        log.warning("%s: %s", args.queries, e)
    # Load the models before timing: latency is measured as a running service sees it.
    if any(q.text for _, q in queries):
        engine.encode_query_text("warm up")
    if any(q.image is not None for _, q in queries) and len(engine.state.image_refs):
        engine.encode_query_image(engine.state.image_refs[0])
    results: dict[str, list[tuple[str, float]]] = {}
    latencies: list[float] = []
    failed = 0
    for qid, q in tqdm(queries, desc="queries", unit="q", disable=None if len(queries) >= 50 else True):
        t0 = time.perf_counter()
        try:
            res = engine.search(Query(q.text, q.image, q.filters, q.history, args.k, 0, q.user))
        except ShoplensError as e:
            log.warning("query %s failed: %s", qid, e)
            failed += 1
            results[qid] = []
            continue
        latencies.append((time.perf_counter() - t0) * 1e3)
        results[qid] = [(h.id, h.score) for h in res.hits]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(format_run(results, args.tag), encoding="utf-8")
    if args.latency_out:
        args.latency_out.parent.mkdir(parents=True, exist_ok=True)
        args.latency_out.write_text(json.dumps([round(ms, 3) for ms in latencies]), encoding="utf-8")
    lat = np.asarray(latencies) if latencies else np.zeros(1)
    summary = {
        "queries": len(queries),
        "failed": failed,
        "skipped_lines": len(errors),
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p95_ms": round(float(np.percentile(lat, 95)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
    }
    print(json.dumps(summary))
    return 0
