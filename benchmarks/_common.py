"""Shared helpers for the benchmark scripts: run metadata, memory, disk size, tables, the dev catalogue."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.metadata as md
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FASHION_DEV = SHARED / "data" / "fashion-dev"

# Words appended to synthetic copies so their titles (and dense texts) differ from the original.
VARIANT_WORDS = ("Classic", "Slim", "Plus", "Premium", "Lite", "Pro", "Basic", "Essential", "Pack", "New")


def require_fashion_dev() -> Path:
    """The fashion development catalogue, or exit with a message saying where it was looked for."""
    catalog = FASHION_DEV / "catalog.csv"
    if not catalog.is_file():
        sys.exit(f"benchmark data not found: {catalog} (expected ../shared/data/fashion-dev beside the repo)")
    return catalog


def read_catalog(path: Path) -> list[dict[str, str]]:
    """Rows of the dev catalogue with the image path made absolute (the bench CSVs live elsewhere)."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["image"] = str((path.parent / r["image"]).resolve())
    return rows


def vary_title(title: str, rng: random.Random) -> str:
    """A light variation: drop a word, swap two words, or append a variant word."""
    words = title.split()
    move = rng.randrange(3)
    if move == 0 and len(words) > 2:
        words.pop(rng.randrange(1, len(words)))
    elif move == 1 and len(words) > 2:
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    words.append(rng.choice(VARIANT_WORDS))
    return " ".join(words)


def scale_catalog(rows: list[dict[str, str]], n: int, seed: int = 0) -> tuple[list[dict[str, str]], int]:
    """``n`` products: the real ones first, then copies with new ids and varied titles (same photos).

    Returns the rows and how many of them are synthetic copies.
    """
    rng = random.Random(seed)
    out = [dict(r) for r in rows[:n]]
    k = 0
    while len(out) < n:
        src = rows[k % len(rows)]
        copy = dict(src, id=f"{src['id']}-v{k // len(rows) + 1}", title=vary_title(src["title"], rng))
        out.append(copy)
        k += 1
    return out, max(0, n - len(rows))


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.rstrip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if not line[3:].startswith("benchmarks/")]
    return {"commit": git("rev-parse", "HEAD") or "unknown", "dirty": bool(changed), "changed_files": changed}


def _version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in ("numpy", "onnxruntime", "faiss-cpu", "tantivy", "rjieba", "shoplens")},
    }


def load_average() -> dict[str, Any]:
    """``uptime`` as printed, plus the 1/5/15-minute load averages (other processes share the CPUs)."""
    try:
        text = subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.rstrip()
    except (OSError, subprocess.CalledProcessError):
        text = ""
    return {"uptime": text, "loadavg": [round(x, 2) for x in os.getloadavg()]}


def rss_bytes() -> int:
    """Current resident set size (psutil if installed, else /proc/self/status VmRSS)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        pass
    kib = _proc_status_kib("VmRSS")
    return kib * 1024 if kib is not None else peak_rss_bytes()  # last resort: the peak  # last resort: the peak, not the current value


def _proc_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    """This process's peak RSS: VmHWM (reset by :func:`reset_peak_rss`), else ru_maxrss.

    ru_maxrss is a last resort: after fork+exec Linux carries the parent's peak into the child.
    """
    kib = _proc_status_kib("VmHWM")
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(kib) * 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0), so each phase reports its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def disk_usage(folder: Path) -> dict[str, int]:
    """Bytes on disk (allocated blocks, as ``du``) and apparent size of every file under ``folder``."""
    blocks = apparent = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _, files in os.walk(folder):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) in seen:  # du counts a hard-linked file once
                continue
            seen.add((st.st_dev, st.st_ino))
            blocks += st.st_blocks * 512
            apparent += st.st_size
    return {"du_bytes": blocks, "apparent_bytes": apparent}


def latency_summary(ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/mean in ms and QPS (sequential: 1000 / mean latency)."""
    a = np.asarray(ms, float) if ms else np.zeros(1)
    mean = float(a.mean())
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p95_ms": round(float(np.percentile(a, 95)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "mean_ms": round(mean, 2),
        "qps": round(1000.0 / mean, 1) if mean > 0 else 0.0,
    }


def per_item(total: float, n: int) -> int:
    """Bytes (or anything) per item, rounded; 0 when there are no items."""
    return round(total / n) if n else 0


def markdown_table(rows: list[tuple[str, list[Any]]], columns: list[str]) -> str:
    head = "| metric | " + " | ".join(columns) + " |"
    sep = "|---|" + "---:|" * len(columns)
    body = ["| " + name + " | " + " | ".join(_fmt(v) for v in vals) + " |" for name, vals in rows]
    return "\n".join([head, sep, *body])


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


# -- shoplens helpers -----------------------------------------------------------------------------
def prepare_models(work: Path) -> tuple[Path, float]:
    """Export EfficientNet-Lite0 to ONNX once into a shared folder; fresh caches get a copy of it."""
    from shoplens.config import Config
    from shoplens.encode.registry import build_image_encoder

    shared = work / "models-cache"
    os.environ["SHOPLENS_CACHE"] = str(shared)
    t0 = time.perf_counter()
    build_image_encoder(Config().encode)
    return shared / "models", time.perf_counter() - t0


def text_only_index_crashes(work: Path) -> bool:
    """Known bug probe: a text-only catalogue into an empty index raised ValueError in build.py."""
    from shoplens import Config, Engine
    from shoplens.types import Product

    fake = {"text_encoder": "fake", "image_encoder": "fake", "cache": False, "progress": False}
    try:
        Engine(work / "probe", Config().replace(encode=fake)).upsert([Product("a", "red dress")])
    except ValueError:
        return True
    return False


def fresh_cache(work: Path, name: str, models: Path) -> Path:
    """A cold embedding cache: an empty folder holding only the exported model (export not timed)."""
    d = work / "caches" / name
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(models, d / "models")
    return d


def instrument(engine: Any) -> dict[str, float]:
    """Count what really goes through each model and the time in it (wraps the encoder instances).

    The outermost of ``encode`` / ``run_with_probs`` / ``run`` is counted; nested calls are not.
    """
    stats: dict[str, float] = defaultdict(float)
    for key, enc in (("text", engine.text_encoder), ("image", engine.image_encoder)):
        depth = [0]
        for method in ("encode", "run_with_probs", "run"):
            inner = getattr(enc, method, None)
            if not callable(inner):
                continue

            def wrapped(items: Any, *a: Any, inner: Any = inner, key: str = key, depth: list = depth) -> Any:
                depth[0] += 1
                t0 = time.perf_counter()
                try:
                    return inner(items, *a)
                finally:
                    depth[0] -= 1
                    if depth[0] == 0:
                        stats[f"{key}_model_s"] += time.perf_counter() - t0
                        stats[f"{key}_encoded"] += len(items)

            setattr(enc, method, wrapped)
    return stats


def uninstrument(engine: Any) -> None:
    """Drop the wrappers (they form reference cycles) so the models are freed at once."""
    for enc in (engine.text_encoder, engine.image_encoder):
        for method in ("encode", "run_with_probs", "run"):
            enc.__dict__.pop(method, None)


def current_generation(index: Path) -> Path:
    return index / (index / "CURRENT").read_text().strip()
