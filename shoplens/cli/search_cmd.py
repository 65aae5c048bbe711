"""``shoplens search`` (text, photo or both), ``similar`` (more like this), ``recommend`` and ``together``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..engine import Engine
from .common import print_result


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search an index by text, photo, or both")
    p.add_argument("index", type=Path)
    p.add_argument("query", nargs="?", default="", help="query text (Chinese or English)")
    p.add_argument("--image", help="a photo to search with (path)")
    p.add_argument("--filter", action="append", default=[], help="e.g. gender=Women, price<50, 'colour in [Red, Blue]'")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--history", nargs="*", default=[], help="product ids the shopper interacted with")
    p.add_argument("--json", action="store_true")
    p.add_argument("--explain", action="store_true", help="show each result's signals")
    p.add_argument("--facets", action="store_true", help="print facet counts")
    p.set_defaults(func=run_search)

    s = sub.add_parser("similar", help="products like a given one (fused text + image)")
    s.add_argument("index", type=Path)
    s.add_argument("product_id")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--filter", action="append", default=[])
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=run_similar)

    r = sub.add_parser("recommend", help='"recommended for you": from a history or a user\'s stored events')
    r.add_argument("index", type=Path)
    r.add_argument("--history", nargs="*", default=[], help="product ids the shopper interacted with")
    r.add_argument("--user", help="a user id whose stored events make the history")
    r.add_argument("-k", type=int, default=10)
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=run_recommend)

    t = sub.add_parser("together", help='"bought together" (from stored carts and purchases; else more like this)')
    t.add_argument("index", type=Path)
    t.add_argument("product_id")
    t.add_argument("-k", type=int, default=10)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=run_together)


def run_search(args: argparse.Namespace) -> int:
    engine = Engine.open(args.index)
    result = engine.search(
        args.query,
        image=args.image,
        filters=args.filter,
        k=args.k,
        offset=args.offset,
        history=args.history,
        explain=args.explain,
    )
    if not args.json:
        print(f"{result.total} matches")
        if args.explain and result.understood:
            print(f"understood: {json.dumps(result.understood, ensure_ascii=False)}")
    print_result(result, args.json, args.explain)
    if args.facets and not args.json:
        for name, counts in result.facets.items():
            print(f"  {name}: " + ", ".join(f"{v} ({n})" for v, n in counts.items()))
    return 0


def run_similar(args: argparse.Namespace) -> int:
    engine = Engine.open(args.index)
    base = engine.get(args.product_id)
    result = engine.similar(args.product_id, k=args.k, filters=args.filter)
    if not args.json:
        print(f"more like [{base.id}] {base.title or '(photo only)'}")
    print_result(result, args.json)
    return 0


def run_recommend(args: argparse.Namespace) -> int:
    engine = Engine.open(args.index)
    result = engine.recommend(args.history, args.user, k=args.k)
    if not result.hits and not args.json:
        print("no history to recommend from (give --history, or --user with stored events)")
    print_result(result, args.json)
    return 0


def run_together(args: argparse.Namespace) -> int:
    engine = Engine.open(args.index)
    base = engine.get(args.product_id)
    result = engine.bought_together(args.product_id, k=args.k)
    if not args.json:
        how = "bought together with" if result.hits and "together" in result.hits[0].signals else "more like"
        print(f"{how} [{base.id}] {base.title or '(photo only)'}")
    print_result(result, args.json)
    return 0
