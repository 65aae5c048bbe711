"""``shoplens shard`` / ``python -m shoplens.scale``: split an index into shards, search the shards."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ..cli.common import print_result
from ..errors import ShoplensError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``split`` and ``search`` (``shoplens shard split|search`` once the main CLI registers it)."""
    s = sub.add_parser("split", help="split an index into N shard folders (nothing is re-encoded)")
    s.add_argument("index", type=Path)
    s.add_argument("--shards", type=int, required=True)
    s.add_argument("--out", type=Path, required=True, help="folder to hold shard-000, shard-001, …")
    s.set_defaults(func=run_split)
    q = sub.add_parser("search", help="search a sharded index through Ray actors (one per shard)")
    q.add_argument("folder", type=Path, help="the --out folder of `split`")
    q.add_argument("text", nargs="?", default="")
    q.add_argument("--image")
    q.add_argument("--filter", action="append", default=[])
    q.add_argument("-k", type=int, default=10)
    q.add_argument("--ray", metavar="ADDRESS", help="Ray cluster address (default: a local Ray)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=run_search)


def run_split(args: argparse.Namespace) -> int:
    from .split import split_index

    for path in split_index(args.index, args.out, args.shards):
        print(path)
    return 0


def run_search(args: argparse.Namespace) -> int:
    from .sharded import ShardedEngine

    with ShardedEngine.open(args.folder, args.ray) as engine:
        print_result(engine.search(args.text, args.image, args.filter, args.k), args.json)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shoplens.scale", description=__doc__)
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except ShoplensError as e:
        print(f"shoplens: error: {e}", file=sys.stderr)
        return 2
