"""``shoplens eval RUN [RUN ...] QRELS``: nDCG@10, MRR@10, recall@100 and P@1 as a table and JSON; an HTML report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..eval.metrics import evaluate
from ..eval.report import RunScores, write_report
from ..eval.trec import read_qrels, read_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score TREC run files against graded qrels; optionally write an HTML report",
        description="The last path is the qrels file; every path before it is a run. With several runs the "
        "first is the baseline the others are compared with (e.g. before / after re-ranking).",
    )
    p.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="RUN [RUN ...] QRELS: run files, then the qrels")
    p.add_argument("--run", action="append", default=[], metavar="NAME=RUN", help="a named run (repeatable)")
    p.add_argument("--json-out", type=Path, help="also write the means and per-query values here")
    p.add_argument("--per-query", action="store_true", help="print every query's metrics")
    g = p.add_argument_group("HTML report")
    g.add_argument("--report", type=Path, metavar="DIR", help="write a self-contained report to DIR/index.html")
    g.add_argument("--types", type=Path, metavar="FILE", help="JSON {qid: type} (default: the qid's prefix)")
    g.add_argument("--importance", type=Path, metavar="FILE", help="JSON {feature: importance} to plot")
    g.add_argument(
        "--latency", action="append", default=[], metavar="[NAME=]FILE",
        help="JSON list of per-query ms (from `shoplens run --latency-out`); repeatable",
    )
    p.set_defaults(func=run_eval)


def _named(value: str) -> tuple[str | None, Path]:
    name, sep, path = value.partition("=")
    return (name, Path(path)) if sep and name else (None, Path(value))


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read {what} file {path}: {e}") from None


def _number_map(path: Path, what: str) -> dict[str, float]:
    data = _read_json(path, what)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the {what} file must hold a JSON object")
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: {what} of {key!r} must be a number, got {value!r}")
    return {str(k): float(v) for k, v in data.items()}


def _latencies(path: Path) -> list[float]:
    data = _read_json(path, "latency")
    if not isinstance(data, list) or any(isinstance(v, bool) or not isinstance(v, int | float) for v in data):
        raise ConfigError(f"{path}: the latency file must hold a JSON list of milliseconds")
    return [float(v) for v in data]


def _types(path: Path) -> dict[str, str]:
    data = _read_json(path, "query type")
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"{path}: the query type file must hold a JSON object {{qid: type}}")
    return {str(k): v for k, v in data.items()}


def _runs(args: argparse.Namespace) -> tuple[list[tuple[str, Path]], Path]:
    *positional, qrels = args.paths
    named = [_named(v) for v in args.run]
    if not positional and not named:
        raise ConfigError("eval needs a run file and a qrels file: shoplens eval RUN.txt QRELS.txt")
    stems = [p.stem for p in positional]
    runs = [(s if stems.count(s) == 1 else str(p), p) for s, p in zip(stems, positional, strict=True)]
    runs += [(n or p.stem, p) for n, p in named]
    names = [n for n, _ in runs]
    if len(set(names)) != len(names):
        raise ConfigError(f"run names must differ, got {names}; name them with --run NAME=RUN")
    return runs, qrels


def run_eval(args: argparse.Namespace) -> int:
    if not args.report and (args.types or args.importance or args.latency):
        raise ConfigError("--types, --importance and --latency shape the HTML report: add --report DIR")
    run_files, qrels_path = _runs(args)
    # Read every input before printing anything: a bad file is an error, not half a result.
    types = _types(args.types) if args.types else None
    importance = _number_map(args.importance, "importance") if args.importance else None
    only = run_files[0][0] if len(run_files) == 1 else None  # an unnamed latency file belongs to the only run
    latency = {label or only or path.stem: _latencies(path) for label, path in map(_named, args.latency)}
    qrels = read_qrels(qrels_path)
    scored = []
    for name, path in run_files:
        means, per_query = evaluate(read_run(path), qrels)
        scored.append(RunScores(name, str(path), means, per_query))
    names = list(scored[0].means)
    single = len(scored) == 1
    heads = ["value"] if single else [r.name for r in scored]
    width = max(8, *(len(h) + 2 for h in heads))
    print(f"{'metric':<12}" + "".join(h.rjust(width) for h in heads))
    for name in names:
        print(f"{name:<12}" + "".join(f"{r.means[name]:>{width}.4f}" for r in scored))
    print(f"{'queries':<12}" + "".join(f"{len(r.per_query):>{width}}" for r in scored))
    payloads = []
    for r in scored:
        if args.per_query:
            if not single:
                print(f"== {r.name}")
            print("qid".ljust(16) + "".join(n.rjust(12) for n in names))
            for qid, vals in sorted(r.per_query.items()):
                print(qid.ljust(16) + "".join(f"{vals[n]:>12.4f}" for n in names))
        head = {"run": r.path} if single else {"name": r.name, "run": r.path}
        payloads.append({**head, "qrels": str(qrels_path), "queries": len(r.per_query), **r.means})
    if args.report:
        page = write_report(
            args.report, scored, qrels=str(qrels_path), types=types, importance=importance, latency=latency or None
        )
        print(f"report: {page}")
    if args.json_out:
        full = [{**p, "per_query": r.per_query} for p, r in zip(payloads, scored, strict=True)]
        doc = full[0] if single else {"qrels": str(qrels_path), "runs": full}
        args.json_out.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    for payload in payloads:  # the JSON lines come last: scripts read them from the end of the output
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in payload.items()}))
    return 0

