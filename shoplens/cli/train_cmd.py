"""``shoplens train`` (learning-to-rank from judged queries) and ``shoplens events`` (behaviour log)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ..engine import Engine
from ..errors import ConfigError
from ..eval.trec import read_qrels
from ..rank.events import read_events_file
from ..rank.from_events import judgments_from_events
from ..rank.ltr import RANKER_DIR
from .run_cmd import read_queries


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train the LambdaMART ranker from judged queries or logged events (stored in the index)"
    )
    p.add_argument("index", type=Path)
    p.add_argument("--queries", type=Path, help="JSONL queries (as for `shoplens run`)")
    p.add_argument("--qrels", type=Path, help="graded TREC qrels for those queries")
    p.add_argument(
        "--events",
        nargs="?",
        const="",
        type=str,
        help="learn from shopper events instead (clicks position-debiased, carts, purchases): the index's own "
        "event log, or this JSONL file",
    )
    p.add_argument(
        "--library",
        choices=("lightgbm", "xgboost"),
        default="lightgbm",
        help="xgboost needs shoplens[xgboost]",
    )
    p.add_argument(
        "--out", type=Path, help="also export the ranker here (copy it into another index's ranker/)"
    )
    p.set_defaults(func=run_train)

    e = sub.add_parser(
        "events", help="add shopper events (impression, click, cart, purchase) from a JSONL file"
    )
    e.add_argument("index", type=Path)
    e.add_argument("events", type=Path)
    e.set_defaults(func=run_events)


def run_train(args: argparse.Namespace) -> int:
    engine = Engine.open(args.index)
    if args.events is not None:
        if args.queries or args.qrels:
            raise ConfigError("give either --events or --queries with --qrels, not both")
        log_path = Path(args.events) if args.events else args.index / "events" / "events.jsonl"
        if not log_path.is_file():
            raise ConfigError(f"no event log at {log_path}; add events with `shoplens events` first")
        queries, qrels = judgments_from_events(log_path)
        print(f"{len(queries)} queries with clicks, carts or purchases in {log_path}")
        source = f"events:{log_path.name}"
    else:
        if not (args.queries and args.qrels):
            raise ConfigError("give --queries and --qrels (judged queries), or --events")
        queries, errors = read_queries(args.queries)
        for err in errors:
            print(f"  skipped {err}")
        qrels = read_qrels(args.qrels)
        source = "judgments"
    ranker = engine.train(queries, qrels, library=args.library, source=source)
    meta = ranker.meta
    print(f"trained on {meta['queries']} queries, {meta['candidates']} candidates in {meta['seconds']}s")
    for row in meta["cv"]:
        print(f"  grouped 3-fold CV {row['params']}: nDCG@10 {row['cv_ndcg@10']:.4f}")
    print(f"  chosen: {meta['params']}")
    top = list(ranker.importance().items())[:8]
    print("  top features (gain): " + ", ".join(f"{k} {v:.0f}" for k, v in top))
    if args.out:
        if args.out.exists():
            shutil.rmtree(args.out)
        shutil.copytree(args.index / RANKER_DIR, args.out)
        (args.out / "importance.json").write_text(json.dumps(ranker.importance(), indent=2), encoding="utf-8")
        print(f"  exported to {args.out}")
    print(f"ranker stored in {args.index / RANKER_DIR}; used by run, search and the API from now on")
    return 0


def run_events(args: argparse.Namespace) -> int:
    engine = Engine.open(args.index)
    events, problems = read_events_file(args.events)
    stored, rejected = engine.add_events([e for e in events if e is not None])
    for p in (problems + rejected)[:20]:
        print(f"  skipped {p}")
    print(f"{stored} events stored, {len(problems) + len(rejected)} skipped")
    return 0
