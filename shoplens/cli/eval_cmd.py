"""``shoplens eval RUN QRELS``: nDCG@10, MRR@10, recall@100 and P@1 as a table and JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..eval.metrics import evaluate
from ..eval.trec import read_qrels, read_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score a TREC run file against graded qrels")
    p.add_argument("run", type=Path)
    p.add_argument("qrels", type=Path)
    p.add_argument("--json-out", type=Path, help="also write the means and per-query values here")
    p.add_argument("--per-query", action="store_true", help="print every query's metrics")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    run, qrels = read_run(args.run), read_qrels(args.qrels)
    means, per_query = evaluate(run, qrels)
    names = list(means)
    print(f"{'metric':<12}{'value':>8}")
    for name in names:
        print(f"{name:<12}{means[name]:>8.4f}")
    print(f"{'queries':<12}{len(per_query):>8}")
    if args.per_query:
        print("qid".ljust(16) + "".join(n.rjust(12) for n in names))
        for qid, vals in sorted(per_query.items()):
            print(qid.ljust(16) + "".join(f"{vals[n]:>12.4f}" for n in names))
    payload = {"run": str(args.run), "qrels": str(args.qrels), "queries": len(per_query), **means}
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in payload.items()}))
    if args.json_out:
        args.json_out.write_text(json.dumps({**payload, "per_query": per_query}, indent=2), encoding="utf-8")
    return 0
