"""``shoplens demo``: index the bundled grocery catalogue and show text, Chinese and photo searches."""

from __future__ import annotations

import argparse
import tempfile
import time
from importlib import resources
from pathlib import Path

from ..engine import Engine
from .common import add_config_flags, build_config, print_result

DEMO_QUERIES = ["green apple", "oat milk", "苹果", "牛奶", "red pepper"]


def demo_dir() -> Path:
    return Path(str(resources.files("shoplens") / "data" / "demo"))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="index the bundled grocery demo and run example searches")
    p.add_argument("--out", type=Path, help="keep the demo index here (default: a temporary folder)")
    p.add_argument("-k", type=int, default=5)
    add_config_flags(p)
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    data = demo_dir()
    cfg = build_config(args)
    with tempfile.TemporaryDirectory(prefix="shoplens-demo-") as tmp:
        out = args.out or Path(tmp) / "index"
        t0 = time.perf_counter()
        engine = Engine(out, cfg)
        report = engine.add_catalog(data / "catalog.csv", replace=True)
        print(f"indexed the bundled grocery demo: {report.summary()} in {time.perf_counter() - t0:.1f}s\n")
        for text in DEMO_QUERIES:
            print(f"search {text!r}")
            print_result(engine.search(text, k=args.k), as_json=False)
            print()
        for photo in sorted((data / "queries").glob("*.jpg"))[:2]:
            print(f"photo search with a shop-shelf photo: queries/{photo.name}")
            print_result(engine.search(image=str(photo), k=args.k), as_json=False)
            print()
        first = next(engine.products())
        print(f"more like [{first.id}] {first.title}")
        print_result(engine.similar(first.id, k=args.k), as_json=False)
        engine.close()
    return 0
