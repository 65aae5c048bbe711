"""Engine benchmark on the real fashion dev catalogue: build throughput, query latency, index size.

    python benchmarks/bench_engine.py --sizes 1000 10000 --out benchmarks/results/engine.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

# ~40 distinct text queries: catalogue words, paraphrases (words the titles do not use), Chinese.
TEXT_QUERIES = [
    "men blue shirts", "women red dress", "black leather belt", "women handbags", "men sports shoes",
    "girls pink top", "boys green t-shirt", "white sneakers", "men watches", "women sunglasses",
    "navy blue jeans", "brown formal shoes", "women black heels", "men grey track pants", "purple kurta",
    "warm jacket for winter", "something to wear to the gym", "present for my wife", "office shoes for men",
    "summer beach outfit", "comfy clothes for running", "bag to carry my laptop", "party dress for girls",
    "a watch with a leather strap", "casual weekend footwear",
    "女士红色连衣裙", "男士蓝色衬衫", "黑色皮带", "女士手提包", "男士运动鞋", "女童粉色上衣", "白色运动鞋",
    "男士手表", "女士太阳镜", "牛仔裤", "女士黑色高跟鞋", "男士灰色运动裤", "紫色库尔塔", "冬季保暖夹克", "男士钱包",
]
FILTERS = [["gender=Women"], ["gender=Men"], ["gender=Women", "season=Summer"], ["colour=Black"],
           ["usage=Casual"], ["category=Footwear"], ["gender in [Boys, Girls]"]]
COLUMNS = ["id", "title", "image", "gender", "category", "subcategory", "article_type", "colour", "season",
           "year", "usage"]


def build(csv: Path, index: Path, cache: Path, replace: bool = False) -> dict[str, Any]:
    """Index ``csv`` into ``index`` with the embedding cache at ``cache``; models loaded before timing."""
    from shoplens import Config, Engine

    os.environ["SHOPLENS_CACHE"] = str(cache)
    engine = Engine(index, Config().replace(encode={"progress": False}))
    t0 = time.perf_counter()
    _ = engine.text_encoder, engine.image_encoder
    load_s = time.perf_counter() - t0
    stats = c.instrument(engine)
    rss0 = c.rss_bytes()
    c.reset_peak_rss()
    t0 = time.perf_counter()
    report = engine.add_catalog(csv, replace=replace)
    wall = time.perf_counter() - t0
    peak = c.peak_rss_bytes()
    engine.close()
    c.uninstrument(engine)
    del engine
    gc.collect()
    return {"wall_s": round(wall, 3), "model_load_s": round(load_s, 3), "rows": report.rows,
            "added": report.added, "updated": report.updated, "skipped": len(report.skipped),
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in stats.items()},
            "rss_before_mb": round(rss0 / 2**20, 1), "peak_rss_growth_mb": round((peak - rss0) / 2**20, 1)}


def bench_size(n: int, rows: list[dict[str, str]], work: Path, models: Path, args: argparse.Namespace) -> dict:
    products, synthetic = c.scale_catalog(rows, n)
    d = work / f"n{n}"
    n_photos = min(n, len(rows), args.max_photos or len(rows))
    text_rows = [{k: v for k, v in r.items() if k != "image"} for r in products]
    if args.anchor:  # work around the text-only crash: one photo-only row (1 photo encoded, counted)
        text_rows.append({"id": "bench-anchor", "image": rows[0]["image"]})
    text_csv = c.write_csv(d / "text.csv", text_rows, COLUMNS)
    image_csv = c.write_csv(d / "image.csv", rows[:n_photos], ["id", "image"])
    full_csv = c.write_csv(d / "full.csv", products, COLUMNS)
    out: dict[str, Any] = {"n": n, "synthetic_copies": synthetic, "real_products": n - synthetic,
                           "load_before": c.load_average()}
    print(f"[N={n}] text-only build ({n} rows, cold cache)", flush=True)
    out["text_build"] = build(text_csv, d / "idx-text", c.fresh_cache(work, f"text-{n}", models))
    print(f"[N={n}] image-only build ({n_photos} unique photos, cold cache)", flush=True)
    out["image_build"] = build(image_csv, d / "idx-image", c.fresh_cache(work, f"image-{n}", models))
    out["image_build"]["photos"] = n_photos
    print(f"[N={n}] full build (text + photos, cold cache)", flush=True)
    full_cache = c.fresh_cache(work, f"full-{n}", models)
    out["full_build"] = build(full_csv, d / "idx-full", full_cache)
    print(f"[N={n}] re-index with a warm cache (new folder), then refresh in place", flush=True)
    out["reindex_warm"] = build(full_csv, d / "idx-warm", full_cache)
    out["refresh_in_place"] = build(full_csv, d / "idx-full", full_cache, replace=True)
    gen = c.current_generation(d / "idx-full")
    out["disk"] = {**c.disk_usage(gen), "files": {p.name: c.disk_usage(p)["du_bytes"] if p.is_dir()
                                                   else p.stat().st_blocks * 512 for p in sorted(gen.iterdir())}}
    out["disk"]["bytes_per_product"] = c.per_item(out["disk"]["du_bytes"], n)
    print(f"[N={n}] queries (fresh process)", flush=True)
    spec = {"index": str(d / "idx-full"), "photos": [r["image"] for r in rows[:: max(1, len(rows) // 60)]],
            "text_q": args.text_queries, "photo_q": args.photo_queries, "filtered_q": args.filtered_queries}
    env = {**os.environ, "SHOPLENS_CACHE": str(full_cache)}
    out["serve"] = run_serve(spec, env)
    if not args.no_single_thread:  # the same queries with ONNX Runtime and OpenBLAS on one thread
        print(f"[N={n}] queries, single-threaded (encode.threads=1, OPENBLAS_NUM_THREADS=1)", flush=True)
        out["serve_1thread"] = run_serve({**spec, "threads": 1}, {**env, "OPENBLAS_NUM_THREADS": "1"})
    out["serve"]["rss"]["index_bytes_per_product"] = c.per_item(out["serve"]["rss"]["index_mb"] * 2**20, n)
    out["load_after"] = c.load_average()
    if not args.keep:
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(work / "caches", ignore_errors=True)
    return out


def run_serve(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--serve", json.dumps(spec)], capture_output=True,
                          text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"query worker failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def serve(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh process: memory of Engine.open + first search, then per-query latency."""
    from shoplens import Engine

    mb = 2**20
    rss0 = c.rss_bytes()
    c.reset_peak_rss()
    engine = Engine.open(spec["index"])
    if spec.get("threads"):
        engine = Engine.open(spec["index"], engine.config.replace(encode={"threads": spec["threads"]}))
    rss_open = c.rss_bytes()
    engine.encode_query_text("warm up")
    engine.encode_query_image(spec["photos"][0])
    rss_models = c.rss_bytes()
    engine.search("men blue shirts")
    engine.search(image=spec["photos"][0])
    engine.search("women dress", filters=["gender=Women"])
    rss_search = c.rss_bytes()
    rss = {"after_imports_mb": rss0 / mb, "open_mb": (rss_open - rss0) / mb,
           "models_mb": (rss_models - rss_open) / mb, "first_search_mb": (rss_search - rss_models) / mb}
    rss["index_mb"] = rss["open_mb"] + rss["first_search_mb"]  # models excluded
    rss = {k: round(v, 1) for k, v in rss.items()}
    photos = spec["photos"]
    kinds = {
        "text": [((TEXT_QUERIES[i % len(TEXT_QUERIES)],), {}) for i in range(spec["text_q"])],
        "photo": [((), {"image": photos[i % len(photos)]}) for i in range(spec["photo_q"])],
        "filtered": [((TEXT_QUERIES[i % len(TEXT_QUERIES)],), {"filters": FILTERS[i % len(FILTERS)]})
                     for i in range(spec["filtered_q"])],
    }
    result: dict[str, Any] = {"rss": rss, "n_products": len(engine)}
    for kind, queries in kinds.items():
        for a, kw in queries[:10]:  # warm-up (lazy per-generation structures, ONNX allocations)
            engine.search(*a, **kw)
        lat: list[float] = []
        stages: dict[str, float] = defaultdict(float)
        empty = 0
        for a, kw in queries:
            t0 = time.perf_counter()
            res = engine.search(*a, **kw)
            lat.append((time.perf_counter() - t0) * 1e3)
            for k, v in res.timings_ms.items():
                stages[k] += v
            empty += not res.hits
        mean_stages = {k: round(v / len(queries), 2) for k, v in stages.items()}
        total = sum(lat) / len(lat)
        mean_stages["other_ms"] = round(total - sum(mean_stages.values()), 2)  # filters, facets, paging
        result[kind] = {**c.latency_summary(lat), "stages_ms": mean_stages, "empty_results": empty}
    rss["serve_peak_mb"] = round(c.peak_rss_bytes() / mb, 1)
    return result


def table(results: list[dict[str, Any]]) -> str:
    def col(f: Any) -> list[Any]:
        return [f(r) for r in results]

    def rate(n: float, s: float) -> float:
        return n / s if s > 0 else 0.0

    rows: list[tuple[str, list[Any]]] = [
        ("products (synthetic copies)", col(lambda r: f"{r['n']:,} ({r['synthetic_copies']:,})")),
        ("text build: products/s (wall, cold)", col(lambda r: rate(r["n"], r["text_build"]["wall_s"]))),
        ("text model only: texts/s", col(lambda r: rate(r["text_build"]["text_encoded"],
                                                        r["text_build"]["text_model_s"]))),
        ("image build: photos (unique)", col(lambda r: r["image_build"]["photos"])),
        ("image build: photos/s (wall, cold)", col(lambda r: rate(r["image_build"]["photos"],
                                                                  r["image_build"]["wall_s"]))),
        ("image model only: photos/s", col(lambda r: rate(r["image_build"]["image_encoded"],
                                                          r["image_build"]["image_model_s"]))),
        ("full build, cold cache: s", col(lambda r: r["full_build"]["wall_s"])),
        ("full build: texts / photos encoded", col(lambda r: f"{r['full_build']['text_encoded']:,.0f} / "
                                                             f"{r['full_build']['image_encoded']:,.0f}")),
        ("full build: s outside the models (index, write, training)", col(lambda r: r["full_build"]["wall_s"]
                                       - r["full_build"].get("text_model_s", 0) - r["full_build"].get("image_model_s", 0))),
        ("re-index, warm cache, new folder: s", col(lambda r: r["reindex_warm"]["wall_s"])),
        ("refresh in place, warm cache: s", col(lambda r: r["refresh_in_place"]["wall_s"])),
        ("re-index: items re-encoded", col(lambda r: int(r["reindex_warm"].get("text_encoded", 0)
                                                         + r["reindex_warm"].get("image_encoded", 0)))),
        ("index on disk: MB (du)", col(lambda r: r["disk"]["du_bytes"] / 2**20)),
        ("index on disk: bytes/product", col(lambda r: r["disk"]["bytes_per_product"])),
        ("RSS: index after open + 1st search, MB", col(lambda r: r["serve"]["rss"]["index_mb"])),
        ("RSS: index bytes/product", col(lambda r: r["serve"]["rss"]["index_bytes_per_product"])),
        ("marginal bytes/product vs previous N: disk / RSS", col(lambda r: "{disk:,} / {rss:,}".format(
            **r["marginal_bytes_per_product"]) if "marginal_bytes_per_product" in r else None)),
        ("RSS: models loaded, MB", col(lambda r: r["serve"]["rss"]["models_mb"])),
        ("build peak RSS growth (full build), MB", col(lambda r: r["full_build"]["peak_rss_growth_mb"])),
        ("RSS: query process peak, MB", col(lambda r: r["serve"]["rss"]["serve_peak_mb"])),
    ]
    for kind in ("text", "photo", "filtered"):
        rows += [
            (f"{kind} query p50 / p95 / p99 ms", col(lambda r, k=kind: "{p50_ms} / {p95_ms} / {p99_ms}"
                                                       .format(**r["serve"][k]))),
            (f"{kind} query QPS (1 client, n={results[0]['serve'][kind]['n']})",
             col(lambda r, k=kind: r["serve"][k]["qps"])),
        ]
    for kind in ("text", "photo", "filtered"):
        rows.append((f"{kind} query mean stages ms", col(lambda r, k=kind: ", ".join(
            f"{s.removesuffix('_ms')} {v}" for s, v in r["serve"][k]["stages_ms"].items()))))
    if "serve_1thread" in results[0]:
        rows += [(f"{kind} query p50 / p95 ms, QPS: 1 thread", col(lambda r, k=kind: "{p50_ms} / {p95_ms}, {qps}"
                                                                  .format(**r["serve_1thread"][k])))
                 for kind in ("text", "photo", "filtered")]
        rows.append(("text query mean stages ms, 1 thread", col(lambda r: ", ".join(
            f"{s.removesuffix('_ms')} {v}" for s, v in r["serve_1thread"]["text"]["stages_ms"].items()))))
    rows.append(("load average before → after", col(lambda r: f"{r['load_before']['loadavg'][0]} → "
                                                              f"{r['load_after']['loadavg'][0]}")))
    return c.markdown_table(rows, [f"N={r['n']:,}" for r in results])


def report(meta: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """The markdown report: run metadata, the table, and the notes that qualify the numbers."""
    git, m = meta["git"], meta["machine"]
    synth = ", ".join(f"N={r['n']:,}: {r['synthetic_copies']:,} synthetic copies" for r in results)
    notes = "\n".join(f"- **{k}**: {v}" for k, v in meta["notes"].items())
    end = meta.get("git_end", git)
    if end["commit"] != git["commit"] or end["changed_files"] != git["changed_files"]:
        notes += (f"\n- **moving tree**: the working tree changed during the run (HEAD {end['commit'][:10]} at the "
                  f"end, {len(end['changed_files'])} files uncommitted): phases ran on different code")
    return (f"# Engine benchmark\n\n`{meta['command']}`\n\ncommit {git['commit'][:10]}"
            f"{' (+ uncommitted changes)' if git['dirty'] else ''}, {m['date']}, {m['cpu_count']} CPUs "
            f"({m['processor']}), python {m['python']}, numpy {m['versions']['numpy']}, onnxruntime "
            f"{m['versions']['onnxruntime']}, faiss {m['versions']['faiss-cpu']}; {meta['elapsed_s']} s in all.\n"
            f"Load average at start {meta['load_start']['loadavg']}, at end {meta['load_end']['loadavg']} "
            f"(other processes share the CPUs). Synthetic: {synth}.\n\n{table(results)}\n\n{notes}\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--out", type=Path, default=c.ROOT / "benchmarks" / "results" / "engine.json")
    ap.add_argument("--md", type=Path, default=c.ROOT / "benchmarks" / "RESULTS-engine.md")
    ap.add_argument("--max-photos", type=int, default=0, help="cap the image-only build (0 = all unique)")
    ap.add_argument("--text-queries", type=int, default=200)
    ap.add_argument("--photo-queries", type=int, default=60)
    ap.add_argument("--filtered-queries", type=int, default=140)
    ap.add_argument("--no-single-thread", action="store_true", help="skip the 1-thread query rerun")
    ap.add_argument("--workdir", type=Path, help="scratch folder (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch indexes and caches")
    ap.add_argument("--render", type=Path, help="re-print a saved JSON's table (and rewrite --md)")
    ap.add_argument("--serve", help=argparse.SUPPRESS)  # internal: the query worker
    args = ap.parse_args(argv)
    if args.serve:
        print(json.dumps(serve(json.loads(args.serve))))
        return 0
    if args.render:
        saved = json.loads(args.render.read_text(encoding="utf-8"))
        args.md.write_text(text := report(saved, saved["results"]))
        print(text)
        return 0
    rows = c.read_catalog(c.require_fashion_dev())
    work = args.workdir or Path(tempfile.mkdtemp(prefix="shoplens-bench-"))
    started = time.perf_counter()
    meta: dict[str, Any] = {"command": " ".join(["python", "benchmarks/bench_engine.py", *(argv or sys.argv[1:])]),
                            "git": c.git_commit(), "machine": c.machine_info(), "load_start": c.load_average()}
    models, export_s = c.prepare_models(work)
    args.anchor = c.text_only_index_crashes(work)
    from shoplens import Config

    meta["config"] = Config().replace(encode={"progress": False}).to_dict()
    meta["notes"] = {
        "data": f"../shared/data/fashion-dev/catalog.csv: {len(rows):,} real products with photos",
        "synthetic": "products beyond the real ones are copies with new ids and a lightly varied title "
                     "(a word dropped or swapped, a variant word appended), reusing the same photo",
        "cold_cache": f"each cold build gets a fresh SHOPLENS_CACHE holding only a copy of the EfficientNet "
                      f"ONNX model, exported once beforehand ({export_s:.1f} s, not counted); model loading "
                      "is timed apart (model_load_s); within one build, photos/texts repeated by synthetic "
                      "copies are served by the cache that build just filled",
        "text_only_workaround": "shoplens crashes indexing a text-only catalogue into an empty index "
                                "(index/build.py, reshape(-1, 0)); the text-only catalogue gets one extra "
                                "photo-only row" if args.anchor else "not needed",
        "latency": "Engine.search in a fresh process, encoding included, k=10, one client, after warm-up; "
                   "'1 thread' rows rerun the same queries with encode.threads=1 and OPENBLAS_NUM_THREADS=1",
    }
    results = [bench_size(n, rows, work, models, args) for n in sorted(args.sizes)]
    for prev, cur in zip(results, results[1:], strict=False):  # fixed overheads cancel out
        cur["marginal_bytes_per_product"] = {
            "disk": c.per_item(cur["disk"]["du_bytes"] - prev["disk"]["du_bytes"], cur["n"] - prev["n"]),
            "rss": c.per_item((cur["serve"]["rss"]["index_mb"] - prev["serve"]["rss"]["index_mb"]) * 2**20,
                              cur["n"] - prev["n"])}
    meta["load_end"], meta["git_end"] = c.load_average(), c.git_commit()  # others may edit meanwhile
    meta["elapsed_s"] = round(time.perf_counter() - started, 1)
    text = report(meta, results)
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**meta, "results": results}, indent=2, ensure_ascii=False))
    args.md.write_text(text)
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.out} and {args.md} ({meta['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
