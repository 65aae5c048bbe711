"""Shared CLI helpers: building the config from flags, printing results."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..types import SearchResult


def add_config_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration")
    g.add_argument("--config", type=Path, help="a JSON file with config sections (see README)")
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set retrieve.depth=300 (repeatable)",
    )
    g.add_argument("--text-encoder", help="use-onnx (default), use-numpy, e5, st:PATH, hf:NAME, clip:PATH")
    g.add_argument("--image-encoder", help="efficientnet-lite0 (default), efficientnet-lite0-torch, clip:PATH")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_config(args: argparse.Namespace, base: Config | None = None) -> Config:
    cfg = base or Config()
    if getattr(args, "config", None):
        try:
            raw = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read config file {args.config}: {e}") from e
        cfg = Config.from_dict(raw)
    changes: dict[str, dict[str, Any]] = {}
    for item in getattr(args, "set", []) or []:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot:
            raise ConfigError(f"--set {item!r} must look like section.key=value")
        changes.setdefault(section, {})[name] = _parse_value(value)
    if getattr(args, "text_encoder", None):
        changes.setdefault("encode", {})["text_encoder"] = args.text_encoder
    if getattr(args, "image_encoder", None):
        changes.setdefault("encode", {})["image_encoder"] = args.image_encoder
    if getattr(args, "no_progress", False):
        changes.setdefault("encode", {})["progress"] = False
    return cfg.replace(**changes) if changes else cfg


def _parse_value(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def print_result(result: SearchResult, as_json: bool, explain: bool = False) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "total": result.total,
                    "results": [h.to_dict() for h in result.hits],
                    "facets": result.facets,
                    "understood": dict(result.understood),
                    "timings_ms": {k: round(v, 3) for k, v in result.timings_ms.items()},
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    if not result.hits:
        print("  (no results)")
        return
    for h in result.hits:
        p = h.product
        label = p.title or (p.description[:60] + "…" if len(p.description) > 60 else p.description) or "(photo only)"
        extra = " · ".join(str(x) for x in (p.category, p.brand, f"{p.price:g}" if p.price is not None else "") if x)
        print(f"  {h.rank:>3}. {h.score:.4f}  [{p.id}] {label}" + (f"  ({extra})" if extra else ""))
        if explain:
            sig = ", ".join(f"{k}={v:.4g}" for k, v in h.signals.items())
            print(f"         signals: {sig}")
            if h.explanation:
                parts = sorted(h.explanation.items(), key=lambda kv: -abs(kv[1]))[:8]
                print("         why: " + ", ".join(f"{k} {v:+.3f}" for k, v in parts))
