"""``shoplens index`` (build or refresh), ``shoplens add`` (upsert) and ``shoplens delete``."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..engine import Engine
from ..errors import ConfigError
from ..index.atomic import CURRENT
from ..ingest.catalog import parse_mapping
from ..types import IngestReport
from .common import add_config_flags, build_config

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index a catalogue (CSV, JSONL or Parquet) into a folder")
    p.add_argument("catalog", type=Path)
    p.add_argument("--out", type=Path, required=True, help="index folder (created or refreshed)")
    p.add_argument(
        "--map", action="append", default=[], metavar="CANONICAL=SOURCE", help="column mapping, e.g. title=productDisplayName"
    )
    p.add_argument("--append", action="store_true", help="keep products that are not in this catalogue")
    p.add_argument("--report", type=Path, help="write the ingest report (skipped rows) as JSON here")
    p.add_argument("--align", type=Path, metavar="MODEL_DIR", help="use a model trained by `shoplens align`")
    p.add_argument(
        "--ray", metavar="ADDRESS", help="encode on a Ray cluster first (auto, HOST:PORT, ray://HOST:10001, local)"
    )
    add_config_flags(p)
    p.set_defaults(func=run_index)

    a = sub.add_parser("add", help="add or update products from a catalogue file in an existing index")
    a.add_argument("index", type=Path)
    a.add_argument("catalog", type=Path)
    a.add_argument("--map", action="append", default=[], metavar="CANONICAL=SOURCE")
    a.add_argument("--report", type=Path)
    a.set_defaults(func=run_add)

    d = sub.add_parser("delete", help="delete products by id")
    d.add_argument("index", type=Path)
    d.add_argument("ids", nargs="+")
    d.set_defaults(func=run_delete)


def _print_report(report: IngestReport, path: Path | None) -> None:
    print(report.summary())
    for s in report.skipped[:20]:
        print(f"  skipped {s}")
    if len(report.skipped) > 20:
        print(f"  … and {len(report.skipped) - 20} more skipped rows")
    for w in report.warnings[:10]:
        print(f"  warning {w}")
    if path:
        path.write_text(
            json.dumps(
                {
                    "rows": report.rows,
                    "added": report.added,
                    "updated": report.updated,
                    "skipped": [s.__dict__ for s in report.skipped],
                    "warnings": [w.__dict__ for w in report.warnings],
                },
                indent=2,
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )


def run_index(args: argparse.Namespace) -> int:
    cfg = build_config(args)
    out: Path = args.out
    if args.ray:  # the cluster fills the embedding cache; the build below then encodes nothing
        from ..scale.ray_encode import encode_catalog

        print(f"ray: {encode_catalog(args.catalog, cfg, args.ray, parse_mapping(args.map))}")
    engine = Engine.open(out, cfg) if (out / CURRENT).is_file() else Engine(out, cfg)
    if args.align is not None:
        if not (args.align / "align.json").is_file():
            raise ConfigError(f"{args.align} is not an alignment model folder (made by `shoplens align`)")
        engine.align_source = args.align
    report = engine.add_catalog(args.catalog, parse_mapping(args.map), replace=not args.append)
    _print_report(report, args.report)
    print(f"index: {out} ({len(engine)} products)")
    align = engine.state.align
    if align is not None:
        for name, rep in align.reports.items():
            metric = {k: v for k, v in rep.items() if "recall" in k or "accuracy" in k}
            print(f"alignment {name}: {metric}")
    return 0


def run_add(args: argparse.Namespace) -> int:
    engine = Engine.open(args.index)
    report = engine.add_catalog(args.catalog, parse_mapping(args.map))
    _print_report(report, args.report)
    print(f"index: {args.index} ({len(engine)} products)")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    engine = Engine.open(args.index)
    n = engine.delete(args.ids)
    print(f"deleted {n} products; {len(engine)} remain")
    return 0
