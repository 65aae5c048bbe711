"""``shoplens align CATALOG --out MODEL_DIR``: train the text–image and photo heads on a catalogue."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from ..engine import Engine
from ..errors import ConfigError
from ..ingest.catalog import parse_mapping
from .common import add_config_flags, build_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("align", help="learn the shared text–image space (and photo similarity) from a catalogue")
    p.add_argument("catalog", type=Path, help="a catalogue file (products with text and photos are the training pairs)")
    p.add_argument("--out", type=Path, required=True, help="folder for the trained model (reuse with index --align)")
    p.add_argument("--map", action="append", default=[], metavar="CANONICAL=SOURCE")
    add_config_flags(p)
    p.set_defaults(func=run_align)


def run_align(args: argparse.Namespace) -> int:
    cfg = build_config(args)
    cfg = cfg.replace(align={"enabled": True})
    with tempfile.TemporaryDirectory(prefix="shoplens-align-") as tmp:
        engine = Engine(Path(tmp) / "index", cfg)
        report = engine.add_catalog(args.catalog, parse_mapping(args.map))
        print(report.summary())
        align = engine.state.align
        if align is None:
            raise ConfigError(
                f"nothing to learn from: fewer than {cfg.align.min_pairs} products with both text and a photo, "
                f"and fewer than {cfg.align.photo_min_products} products with two or more photos"
            )
        if args.out.exists():
            shutil.rmtree(args.out)
        align.save(args.out)
        engine.close()
    print(json.dumps(align.reports, indent=2))
    print(f"alignment model: {args.out}")
    return 0
