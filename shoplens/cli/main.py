"""Entry point: parse the command line, configure logging, map errors to clear messages."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import ShoplensError
from . import align_cmd, demo_cmd, eval_cmd, index_cmd, regress_cmd, run_cmd, search_cmd, serve_cmd, train_cmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoplens", description="Multimodal product search on one machine.")
    parser.add_argument("--version", action="version", version=f"shoplens {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (align_cmd, train_cmd, index_cmd, search_cmd, run_cmd, eval_cmd, regress_cmd, demo_cmd, serve_cmd):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return int(args.func(args) or 0)
    except ShoplensError as e:
        print(f"shoplens: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("shoplens: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
