"""Learning-to-rank on the development data (issue 4): training time, ranking latency added per query,
and nDCG@10 before and after re-ranking, for the LightGBM and XGBoost rankers.

The ranker is trained the way a shop would: on the judged queries in the catalogue's own words
(``q-attr.jsonl``), then run on *other* queries: the dev paraphrases and Chinese queries, and the
generated sets of benchmarks/dev_queries.py (more paraphrases, Chinese and personalised queries,
where the audience is given only by a 4-product history). The "ambiguous personal" sets are
personalised queries whose colour + type is sold to another audience too, so that only the history
can tell (``generate_histories``), with four kinds of history: 4 products of other types, a single
product, 2 of the same type in other colours, and 3 + the newest one bought for someone else. All of
it is development data from the same catalogue: these are not held-out figures.

    python benchmarks/bench_rank.py [--index DIR] [--seeds 0 1 2] --out benchmarks/results/rank.json

``--extra-train 120`` adds 120 generated catalogue-word judged queries (``dev_queries.generate`` with
``--extra-seed``, 5 by default, not the test sets' seed 1; none repeats a training or test query) to
the 80 dev ones: about the acceptance set-up (~200 judged queries in the catalogue's words).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    FASHION_DEV,
    git_commit,
    latency_summary,
    load_average,
    machine_info,
    markdown_table,
    require_fashion_dev,
)
from dev_queries import HISTORY_KINDS, generate, generate_fresh, generate_histories  # noqa: E402

from shoplens import Engine  # noqa: E402
from shoplens.cli.run_cmd import read_queries  # noqa: E402
from shoplens.eval.metrics import evaluate  # noqa: E402
from shoplens.eval.trec import read_qrels  # noqa: E402
from shoplens.rank.ltr import RANKER_DIR, train_ranker  # noqa: E402
from shoplens.rank.train import build_training_set  # noqa: E402
from shoplens.types import Query  # noqa: E402

QuerySet = tuple[list[tuple[str, Query]], dict[str, dict[str, int]]]


def query_sets(catalog: Path, training: set[str], fresh: bool = False) -> dict[str, QuerySet]:
    """Dev paraphrase/Chinese sets and the generated ones; generated catalogue-word queries that
    repeat a training query are left out (they would be in-sample)."""
    import csv

    sets: dict[str, QuerySet] = {}
    for name in ("natural", "zh"):
        queries, _errors = read_queries(FASHION_DEV / f"q-{name}.jsonl")
        sets[f"dev {name}"] = (queries, read_qrels(FASHION_DEV / f"qrels-{name}.txt"))
    rows = list(csv.DictReader(catalog.open(encoding="utf-8")))
    for kind, items in generate(rows).items():
        if kind == "attr":
            items = [(q, r) for q, r in items if str(q["text"]) not in training]
        qs = [(f"g{kind}{n:03d}", Query(str(q["text"]), history=tuple(q.get("history", ())))) for n, (q, _r) in enumerate(items)]  # type: ignore[arg-type]
        qrels = {f"g{kind}{n:03d}": r for n, (_q, r) in enumerate(items)}
        sets[f"gen {kind}"] = (qs, qrels)
        if kind == "personal":
            sets["gen personal, no history"] = ([(qid, Query(q.text)) for qid, q in qs], qrels)
    for kind, items in generate_histories(rows).items():
        qs = [(f"h{n:03d}", Query(str(q["text"]), history=tuple(q.get("history", ())))) for n, (q, _r) in enumerate(items)]  # type: ignore[arg-type]
        sets[f"ambiguous personal, {kind}"] = (qs, {f"h{n:03d}": r for n, (_q, r) in enumerate(items)})
    for kind, items in (generate_fresh(rows) if fresh else {}).items():
        qs = [(f"f{kind}{n:03d}", Query(str(q["text"]))) for n, (q, _r) in enumerate(items)]
        sets[f"fresh {kind}"] = (qs, {f"f{kind}{n:03d}": r for n, (_q, r) in enumerate(items)})
    return sets


def extra_training(catalog: Path, n: int, seed: int, taken: set[str]) -> QuerySet:
    """``n`` generated catalogue-word judged queries (``generate`` with another seed than the test
    sets), none of whose texts is in ``taken`` (the training and test queries)."""
    import csv

    rows = list(csv.DictReader(catalog.open(encoding="utf-8")))
    items = [(q, r) for q, r in generate(rows, seed=seed, per_kind=len(rows))["attr"] if str(q["text"]) not in taken][:n]
    if len(items) < n:
        sys.exit(f"only {len(items)} generated catalogue-word queries are not already used; asked for {n}")
    queries = [(f"x{k:03d}", Query(str(q["text"]))) for k, (q, _r) in enumerate(items)]
    return queries, {f"x{k:03d}": r for k, (_q, r) in enumerate(items)}


def run_set(engine: Engine, qs: QuerySet) -> tuple[float, list[float], dict[str, float]]:
    queries, qrels = qs
    run: dict[str, list[str]] = {}
    rerank_ms: list[float] = []
    for qid, q in queries:
        res = engine.search(Query(q.text, q.image, q.filters, q.history, 10))
        run[qid] = [h.id for h in res.hits]
        if "rerank_ms" in res.timings_ms:
            rerank_ms.append(res.timings_ms["rerank_ms"])
    means, per = evaluate(run, qrels)
    return round(means["ndcg@10"], 4), rerank_ms, {qid: round(m["ndcg@10"], 4) for qid, m in per.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", type=Path, help="an index of the fashion dev catalogue (built if absent)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/rank.json"))
    ap.add_argument("--libraries", nargs="+", default=["lightgbm", "xgboost"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds; nDCG rows are their mean")
    ap.add_argument("--extra-train", type=int, default=0, metavar="N", help="add N generated catalogue-word judged queries to the 80 dev ones")
    ap.add_argument("--extra-seed", type=int, default=5, help="generator seed of --extra-train (the test sets use 1)")
    ap.add_argument("--fresh", action="store_true", help="also the fresh-phrasing sets (dev_queries.generate_fresh), kept for final checks")
    args = ap.parse_args()
    catalog = require_fashion_dev()
    started = time.time()
    info: dict[str, Any] = {"commit": git_commit(), "machine": machine_info(), "load_before": load_average()}
    with tempfile.TemporaryDirectory(prefix="bench-rank-") as tmp:
        index = Path(tmp) / "idx"
        if args.index and args.index.is_dir():
            shutil.copytree(args.index, index)
            shutil.rmtree(index / RANKER_DIR, ignore_errors=True)
        else:
            Engine(index).add_catalog(catalog)
        engine = Engine.open(index)
        train_q, _e = read_queries(FASHION_DEV / "q-attr.jsonl")
        sets = query_sets(catalog, {q.text.lower() for _qid, q in train_q}, args.fresh)
        train_qrels = read_qrels(FASHION_DEV / "qrels-attr.txt")
        if args.extra_train:
            taken = {q.text.lower() for _qid, q in train_q} | {q.text.lower() for qs, _r in sets.values() for _qid, q in qs if q.text}
            extra_q, extra_qrels = extra_training(catalog, args.extra_train, args.extra_seed, taken)
            train_q, train_qrels = train_q + extra_q, {**train_qrels, **extra_qrels}
        info["train_queries"] = len(train_q)
        results: dict[str, dict[str, Any]] = {"fused retrieval (no ranker)": {"ndcg": {n: run_set(engine, s)[0] for n, s in sets.items()}}}
        for lib in args.libraries:
            per_seed: dict[str, list[float]] = {name: [] for name in sets}
            per_query: dict[str, dict[str, list[float]]] = {name: {} for name in sets}
            lat: list[float] = []
            seconds, cv = [], []
            for seed in args.seeds:
                # A training seed draws the training copies (personalised, lexical-blind) and the
                # model's sampling: with 80 judged queries a row moves by ±0.02 between seeds.
                t0 = time.perf_counter()
                data = build_training_set(engine, train_q, train_qrels, seed=seed)
                ranker = train_ranker(data, seed=seed, library=lib)
                ranker.save(index / RANKER_DIR)
                engine.reranker.reload()
                seconds.append(time.perf_counter() - t0)
                cv.append(max(c["cv_ndcg@10"] for c in ranker.meta["cv"]))
                for name, s in sets.items():
                    got, ms, per = run_set(engine, s)
                    per_seed[name].append(got)
                    lat += ms
                    for qid, v in per.items():
                        per_query[name].setdefault(qid, []).append(v)
            results[f"{lib} ranker"] = {
                "ndcg": {name: round(float(np.mean(v)), 4) for name, v in per_seed.items()},
                "ndcg_per_seed": per_seed,
                "ndcg_per_query": per_query,  # per set, query → nDCG@10 per seed
                "seeds": args.seeds,
                "train_s": round(float(np.mean(seconds)), 1),
                "train_queries": ranker.meta["queries"],
                "cv_ndcg@10": round(float(np.mean(cv)), 4),
                "rerank_latency_100_candidates": latency_summary(lat),
                "top_features": list(ranker.importance())[:6],
            }
    names = list(sets)
    rows: list[tuple[str, list[Any]]] = [(f"nDCG@10 {n}", [f"{r['ndcg'][n]:.4f}" for r in results.values()]) for n in names]
    if "gen personal" in names:
        gain = [r["ndcg"]["gen personal"] - r["ndcg"]["gen personal, no history"] for r in results.values()]
        rows.append(("nDCG@10 gain from the history (gen personal)", [f"{g:+.4f}" for g in gain]))
    for kind in HISTORY_KINDS:
        name, base = f"ambiguous personal, {kind}", "ambiguous personal, no history"
        if name in names and base in names:
            gain = [r["ndcg"][name] - r["ndcg"][base] for r in results.values()]
            rows.append((f"nDCG@10 gain from the history ({name})", [f"{g:+.4f}" for g in gain]))
    rows += [
        (f"train s ({len(train_q)} judged queries + variants)", [r.get("train_s") for r in results.values()]),
        ("grouped CV nDCG@10 (training queries)", [f"{r['cv_ndcg@10']:.4f}" if "cv_ndcg@10" in r else None for r in results.values()]),
        (
            "re-ranking ms per query, p50 / p95 (100 candidates)",
            [
                f"{r['rerank_latency_100_candidates']['p50_ms']} / {r['rerank_latency_100_candidates']['p95_ms']}" if "train_s" in r else None
                for r in results.values()
            ],
        ),
    ]
    info.update(results=results, load_after=load_average(), seconds=round(time.time() - started, 1))
    print(markdown_table(rows, list(results)))
    if len(args.seeds) > 1:
        print(f"\nrankers: mean of training seeds {args.seeds}")
    print(f"\nload average before {info['load_before']} after {info['load_after']}; development data, not held-out")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(info, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
