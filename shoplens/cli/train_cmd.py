"""``shoplens train`` (learning-to-rank from judged queries) and ``shoplens events`` (behaviour log)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ..engine import Engine
from ..eval.trec import read_qrels
from ..rank.events import read_events_file
from ..rank.ltr import RANKER_DIR
from .run_cmd import read_queries


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the LambdaMART ranker from judged queries (stored in the index)")
    p.add_argument("index", type=Path)
    p.add_argument("--queries", type=Path, required=True, help="JSONL queries (as for `shoplens run`)")
    p.add_argument("--qrels", type=Path, required=True, help="graded TREC qrels for those queries")
    p.add_argument("--out", type=Path, help="also export the ranker here (copy it into another index's ranker/)")
    p.set_defaults(func=run_train)

    e = sub.add_parser("events", help="add shopper events (impression, click, cart, purchase) from a JSONL file")
    e.add_argument("index", type=Path)
    e.add_argument("events", type=Path)
    e.set_defaults(func=run_events)


def run_train(args: argparse.Namespace) -> int:
    engine = Engine.open(args.index)
    queries, errors = read_queries(args.queries)
    for err in errors:
        print(f"  skipped {err}")
    ranker = engine.train(queries, read_qrels(args.qrels))
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
