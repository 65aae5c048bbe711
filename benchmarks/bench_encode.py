"""Encoder and build speed (issue 6): photos/s and titles/s model-only and end to end, a warm
re-encode, and cold ``shoplens index`` runs of the dev catalogue (and of a synthetic larger one) by stage.

    python benchmarks/bench_encode.py [--photos 1024] [--synthetic 9300] [--out benchmarks/results/encode.json]

* model-only: the encoder's own calls on photos already decoded (preprocessing + ONNX Runtime) or on
  raw titles, run the way the batch pipeline runs them (one call per core at once when the encoder
  allows it);
* end to end: ``encode_images`` / ``encode_texts`` with a fresh cache (read, hash, cache lookup,
  decode, resize, model, colour histogram, cache write); warm: the same call again (all hits);
* builds: ``shoplens -v index CATALOG --out DIR`` in a fresh process with a cold cache holding only
  the exported ONNX file; the stage times are the build's own log line; then a warm re-index
  (same cache, new folder).

The synthetic catalogue copies the dev rows with new ids, varied titles and *perturbed photos*
(a slight random crop, re-encoded as JPEG, written under the work folder, never into the repo) so
the content-hash cache cannot dedupe them. Load averages are recorded; above 1.5 the machine is
busy and the figures are marked.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

BUSY = 1.5
COLUMNS = ["id", "title", "image", "gender", "category", "subcategory", "article_type", "colour", "season",
           "year", "usage"]


def load_note() -> dict[str, Any]:
    la = c.load_average()
    la["busy"] = la["loadavg"][0] > BUSY
    return la


def workers_for(encoder: Any) -> int:
    from shoplens.encode import batch

    fn = getattr(batch, "model_workers", None)  # absent before issue 6: one call at a time
    return int(fn(encoder)) if fn else 1


def run_parallel(fn: Any, chunks: list[Any], workers: int) -> None:
    if workers <= 1:
        for ch in chunks:
            fn(ch)
        return
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(fn, chunks))


def timed(fn: Any) -> tuple[Any, float, float]:
    """Result, wall seconds and CPU seconds (all threads of this process)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def bench_photos(refs: list[str], models: Path, work: Path, plain_size: int = 0) -> dict[str, Any]:
    """Photo rates with every photo at 224 px, or (``plain_size``) studio shots at that side as a
    catalogue of studio shots is encoded (``encode.plain_image_size``)."""
    from shoplens.encode.batch import encode_images
    from shoplens.encode.cache import EmbeddingCache
    from shoplens.encode.efficientnet import EfficientNetLite0Onnx
    from shoplens.ingest.images import decode_image

    enc = EfficientNetLite0Onnx(models, plain_size=plain_size)
    workers = workers_for(enc)
    imgs = [decode_image(Path(r).read_bytes()) for r in refs]
    chunks = [imgs[i : i + 32] for i in range(0, len(imgs), 32)]
    run_parallel(enc.run_with_probs, chunks[:2], workers)  # warm-up: both sessions built
    before = load_note()
    _, model_s, model_cpu = timed(lambda: run_parallel(enc.run_with_probs, chunks, workers))
    shutil.rmtree(work / "photo-cache", ignore_errors=True)  # cold: an empty cache every run
    cache = EmbeddingCache(work / "photo-cache" / "emb.sqlite")
    cold, cold_s, cold_cpu = timed(lambda: encode_images(enc, refs, cache, 32))
    warm, warm_s, _ = timed(lambda: encode_images(enc, refs, cache, 32))
    cache.close()
    n = len(refs)
    return {
        "photos": n, "model_workers": workers, "load_before": before, "load_after": load_note(),
        "model_only_per_s": round(n / model_s, 1), "model_only_cpu_ms_per_photo": round(1000 * model_cpu / n, 2),
        "e2e_cold_per_s": round(n / cold_s, 1), "e2e_cold_cpu_ms_per_photo": round(1000 * cold_cpu / n, 2),
        "e2e_cold_encoded": cold.encoded, "warm_per_s": round(n / warm_s, 1), "warm_encoded": warm.encoded,
    }


def bench_texts(titles: list[str], work: Path, batch_size: int) -> dict[str, Any]:
    from shoplens.encode.batch import encode_texts
    from shoplens.encode.cache import EmbeddingCache
    from shoplens.encode.use_onnx import USEOnnxTextEncoder

    enc = USEOnnxTextEncoder()
    workers = workers_for(enc)
    ordered = sorted(set(titles), key=len)
    chunks = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    run_parallel(enc.encode, chunks[:2], workers)
    before = load_note()
    _, model_s, model_cpu = timed(lambda: run_parallel(enc.encode, chunks, workers))
    shutil.rmtree(work / f"text-cache-{batch_size}", ignore_errors=True)
    cache = EmbeddingCache(work / f"text-cache-{batch_size}" / "emb.sqlite")
    (_, n_enc), e2e_s, e2e_cpu = timed(lambda: encode_texts(enc, titles, cache, batch_size))
    cache.close()
    n = len(titles)
    return {
        "titles": n, "unique": len(ordered), "batch_size": batch_size, "model_workers": workers,
        "load_before": before, "load_after": load_note(),
        "model_only_per_s": round(len(ordered) / model_s, 1), "model_only_cpu_ms_per_1k": round(1e6 * model_cpu / len(ordered)),
        "e2e_per_s": round(n / e2e_s, 1), "e2e_cpu_ms_per_1k": round(1e6 * e2e_cpu / n), "encoded": n_enc,
    }


STAGES = re.compile(r"build stages \(s\): (.*)")
BRIDGES = re.compile(r"text–image bridges \(s\): (.*)")
PAIR = re.compile(r"([A-Za-z][^=,]*?)=(\d+(?:\.\d+)?)")


def index_run(catalog: Path, out: Path, cache: Path) -> dict[str, Any]:
    """``shoplens -v index`` in a fresh process: wall and CPU seconds, and the build's stage times."""
    env = dict(os.environ, SHOPLENS_CACHE=str(cache))
    cmd = [sys.executable, "-c", "import sys; from shoplens.cli.main import main; sys.exit(main())",
           "-v", "index", str(catalog), "--out", str(out)]
    before = load_note()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # cwd outside the repository: ``python -c`` puts the cwd first on sys.path, and a before/after
    # comparison sets PYTHONPATH to the tree it measures.
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(out.parent))
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"index failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    stages: dict[str, float] = {}
    for pattern, prefix in ((STAGES, ""), (BRIDGES, "align.")):
        m = pattern.search(proc.stderr)
        if m:
            for k, v in PAIR.findall(m.group(1)):
                stages[prefix + k.strip()] = float(v)
    accounted = sum(v for k, v in stages.items() if not k.startswith("align."))
    return {
        "wall_s": round(wall, 1), "cpu_s": round((r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime), 1),
        "stages_s": stages, "startup_and_ingest_s": round(wall - accounted, 1) if stages else None,
        "load_before": before, "load_after": load_note(),
    }


def synthetic_catalog(work: Path, n: int, seed: int = 0) -> Path:
    """``n`` products: the dev rows, then copies with new ids, varied titles and perturbed photos."""
    src = c.require_fashion_dev()
    rows = c.read_catalog(src)
    out_csv = work / f"synthetic-{n}" / "catalog.csv"
    if out_csv.is_file():
        return out_csv
    rng = random.Random(seed)
    photo_dir = out_csv.parent / "images"
    photo_dir.mkdir(parents=True, exist_ok=True)
    jobs, out = [], [dict(r) for r in rows[:n]]
    k = 0
    while len(out) < n:
        r = rows[k % len(rows)]
        copy_no = k // len(rows) + 1
        new_id = f"{r['id']}-v{copy_no}"
        target = photo_dir / f"{new_id}.jpg"
        crop = tuple(rng.randint(0, 4) for _ in range(4))
        jobs.append((r["image"], target, crop, rng.choice((85, 90, 95))))
        out.append(dict(r, id=new_id, title=c.vary_title(r["title"], rng), image=str(target)))
        k += 1

    def perturb(job: tuple[str, Path, tuple[int, ...], int]) -> None:
        path, target, (left, top, right, bottom), quality = job
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            im.crop((left, top, w - right, h - bottom)).save(target, "JPEG", quality=quality)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(perturb, jobs))
    return c.write_csv(out_csv, out, COLUMNS)


def fmt_stages(run: dict[str, Any]) -> str:
    s = run["stages_s"]
    if not s:
        return "– (no stage log in this version)"
    keys = ("photos", "text", "tags", "align", "lexical", "lexical (after align)", "save", "publish")
    return ", ".join(f"{k} {s[k]:.1f}" for k in keys if k in s) + f", start+read {run['startup_and_ingest_s']}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=1024, help="unique dev photos for the photo rates")
    ap.add_argument("--text-batch", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--synthetic", type=int, default=9300, help="size of the synthetic build (0: skip)")
    ap.add_argument("--no-builds", action="store_true", help="only the encoder rates")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--label", default="", help="a note on the code measured (e.g. 'before: PYTHONPATH=old tree')")
    ap.add_argument("--out", type=Path, default=c.ROOT / "benchmarks" / "results" / "encode.json")
    ap.add_argument("--md", type=Path, default=c.ROOT / "benchmarks" / "RESULTS-encode.md")
    args = ap.parse_args()
    catalog = c.require_fashion_dev()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-encode-"))
    work.mkdir(parents=True, exist_ok=True)
    models, export_s = c.prepare_models(work)
    result: dict[str, Any] = {"git": c.git_commit(), "machine": c.machine_info(), "start_load": load_note(),
                              "notes": {"onnx_export_s": round(export_s, 1), "workdir": str(work), "label": args.label,
                                        "shoplens_from": str(Path(sys.modules["shoplens"].__file__).parent)}}
    rows = c.read_catalog(catalog)
    refs = [r["image"] for r in rows][: args.photos]
    print(f"photos: {len(refs)} …", flush=True)
    result["photos"] = bench_photos(refs, models, work)
    result["photos_plain"] = bench_photos(refs, models, work, plain_size=176)
    rng = random.Random(0)
    titles = [r["title"] for r in rows] + [c.vary_title(r["title"], rng) for r in rows for _ in range(3)]
    result["texts"] = []
    for bs in args.text_batch:
        print(f"texts: {len(titles)} titles, batch {bs} …", flush=True)
        result["texts"].append(bench_texts(titles, work, bs))
    builds: dict[str, Any] = {}
    if not args.no_builds:
        for name, cat in [("dev", catalog)] + ([("synthetic", synthetic_catalog(work, args.synthetic))] if args.synthetic else []):
            cache = c.fresh_cache(work, f"build-{name}", models)
            for folder in (work / f"idx-{name}", work / f"idx-{name}-again"):  # new folders: nothing to refresh
                shutil.rmtree(folder, ignore_errors=True)
            print(f"cold build {name} …", flush=True)
            builds[f"{name}_cold"] = index_run(cat, work / f"idx-{name}", cache)
            print(f"warm re-index {name} …", flush=True)
            builds[f"{name}_warm"] = index_run(cat, work / f"idx-{name}-again", cache)
            builds[f"{name}_products"] = sum(1 for _ in cat.open(encoding="utf-8")) - 1
            shutil.rmtree(work / f"idx-{name}", ignore_errors=True)
            shutil.rmtree(work / f"idx-{name}-again", ignore_errors=True)
    result["builds"] = builds
    result["end_load"] = load_note()
    table = render(result)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    args.md.write_text(table + "\n", encoding="utf-8")
    return 0


def render(r: dict[str, Any]) -> str:
    p = r["photos"]
    lines = [
        f"## {r['notes']['label'] or 'Encoding and build speed'}",
        "",
        f"Encoding and build speed (commit {r['git']['commit'][:10]}{' + uncommitted' if r['git']['dirty'] else ''}, "
        f"{r['machine']['cpus_usable']} CPUs, {r['machine']['date']}; shoplens from {r['notes']['shoplens_from']})",
        "",
        f"load average at start {r['start_load']['loadavg']}, at end {r['end_load']['loadavg']}"
        + (" — BUSY machine: other processes shared the CPUs" if r["start_load"]["busy"] or r["end_load"]["busy"] else ""),
        "",
    ]
    rows: list[tuple[str, list[Any]]] = [
        (f"photos/s, model only ({p['model_workers']} at once)", [p["model_only_per_s"], p["model_only_cpu_ms_per_photo"], p["load_before"]["loadavg"][0]]),
        ("photos/s, end to end, cold cache", [p["e2e_cold_per_s"], p["e2e_cold_cpu_ms_per_photo"], p["load_after"]["loadavg"][0]]),
        ("photos/s, warm re-encode (no decode)", [p["warm_per_s"], None, p["load_after"]["loadavg"][0]]),
    ]
    pp = r.get("photos_plain")
    if pp:  # the dev photos are studio shots: at the plain side, as their catalogue is encoded
        rows += [
            ("photos/s, model only, studio shots at 176 px", [pp["model_only_per_s"], pp["model_only_cpu_ms_per_photo"], pp["load_before"]["loadavg"][0]]),
            ("photos/s, end to end, studio shots at 176 px", [pp["e2e_cold_per_s"], pp["e2e_cold_cpu_ms_per_photo"], pp["load_after"]["loadavg"][0]]),
        ]
    for t in r["texts"]:
        rows.append((f"titles/s, model only, batch {t['batch_size']}", [t["model_only_per_s"], t["model_only_cpu_ms_per_1k"] / 1000, t["load_before"]["loadavg"][0]]))
        rows.append((f"titles/s, end to end, batch {t['batch_size']}", [t["e2e_per_s"], t["e2e_cpu_ms_per_1k"] / 1000, t["load_after"]["loadavg"][0]]))
    lines.append(c.markdown_table(rows, ["rate", "CPU ms per item", "load (1 min)"]))
    b = r.get("builds") or {}
    if b:
        lines += ["", "`shoplens index` in a fresh process (cold: empty cache but the exported ONNX file):", ""]
        brow: list[tuple[str, list[Any]]] = []
        for name in ("dev", "synthetic"):
            for kind in ("cold", "warm"):
                run = b.get(f"{name}_{kind}")
                if run:
                    brow.append((f"{name} ({b[name + '_products']:,} products), {kind}",
                                 [run["wall_s"], run["cpu_s"], fmt_stages(run), run["load_before"]["loadavg"][0]]))
        lines.append(c.markdown_table(brow, ["wall s", "CPU s", "stages (s)", "load (1 min)"]))
    return "\n".join(lines)


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
