"""End-to-end query latency of a real shoplens index at 100k and 1M products (issue #6).

    python benchmarks/bench_large.py --sizes 100000 1000000 --out benchmarks/results/large.json

What it measures: ``Engine.search`` as ``shoplens search`` and the REST API call it — the real
multilingual text encoder (and EfficientNet-Lite0 for photo queries), BM25 via tantivy, dense
retrieval, fusion, filters and facets — in a fresh process per index, at 1 and 2 client threads.

How the index is made (the cheapest honest way to a real index folder of that size):

1. The dev catalogue (2,199 real products with photos) is indexed normally with
   ``shoplens index`` (warm embedding cache: nothing is re-encoded if ``SHOPLENS_CACHE`` holds it),
   including the learned alignment.
2. Products above 2,199 are synthetic copies of real ones (new id, title with a word dropped or
   swapped and a variant word appended, as bench_engine.py does), so BM25 has realistic postings.
3. Text vectors of real products are the real ones. Copies' text vectors are **jittered** from their
   source product's real vector (running the text model 1M times would take ~2 hours here); the
   noise is calibrated so that the mean cosine to the source equals what the real model gives for
   a sample of the varied titles (``--calibrate`` titles really encoded; both numbers printed).
   Image vectors of copies are jittered from the source photo's real vector (target cosine
   ``--image-cos``); colour histograms and ImageNet tags are the source photo's.
4. The folder is written by the library's own writer: ``LexicalIndex.upsert`` for BM25 (all N
   products), ``IndexState.save`` (arrays, products, ANN indexes per the config) and
   ``atomic.publish`` — the same steps ``build_generation`` runs after encoding. The alignment model
   trained on the real products is reused (not retrained on copies).

Queries: the dev q-attr / q-natural / q-zh texts, the same texts with filters (gender, colour,
season, usage, category), and the 100 held-out q-image photos (reported with photo decoding +
encoding included, and without: wall time minus ``encode_image_ms``). Stage times are means of
``SearchResult.timings_ms``; ``other`` = wall − the stages (filters, facets, paging, Python).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

CONFIGS: dict[str, dict[str, Any]] = {
    "int8-ivf": {"vector_dtype": "int8", "ann_kind": "ivf"},
    "float32-hnsw": {"auto_compact": False},  # the defaults before auto_compact (HNSW above 50k vectors)
}
HNSW_MAX = 200_000  # the float32 HNSW graphs take ~10 min per modality at 1M on 2 cores
FILTERS = [["gender=Women"], ["gender=Men"], ["colour=Black"], ["usage=Casual"], ["season=Summer"],
           ["gender=Women", "season=Summer"], ["category=Footwear"], ["gender in [Boys, Girls]"]]


# -- building -----------------------------------------------------------------------------------
def dev_index(work: Path, given: Path | None) -> Path:
    if given:
        return given
    from shoplens import Config, Engine

    path = work / "dev-index"
    if not (path / "CURRENT").is_file():
        print(f"indexing the dev catalogue into {path}", flush=True)
        Engine(path, Config().replace(encode={"progress": False})).add_catalog(c.require_fashion_dev())
    return path


def calibrated_noise(base: np.ndarray, target_cos: float, sigma: np.ndarray, seed: int) -> float:
    """Scale ``s`` so that mean cos(x, normalise(x + s·σ⊙ε)) over ``base`` equals ``target_cos``."""
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal(base.shape).astype(np.float32) * sigma

    def mean_cos(s: float) -> float:
        y = base + s * eps
        y /= np.linalg.norm(y, axis=1, keepdims=True)
        return float(np.mean(np.sum(base * y, axis=1)))

    lo, hi = 0.0, 50.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mean_cos(mid) > target_cos else (lo, mid)
    return (lo + hi) / 2


def jitter_into(out: np.ndarray, real: np.ndarray, src: np.ndarray, start: int, scale: float, sigma: np.ndarray,
                seed: int, chunk: int = 50_000) -> None:
    """``out[start+i] = normalise(real[src[i]] + scale·σ⊙ε)``, written chunk by chunk (``out`` may be a memmap)."""
    rng = np.random.default_rng(seed)
    for a in range(0, len(src), chunk):
        idx = src[a : a + chunk]
        y = real[idx] + scale * rng.standard_normal((len(idx), real.shape[1])).astype(np.float32) * sigma
        y /= np.linalg.norm(y, axis=1, keepdims=True)
        out[start + a : start + a + len(idx)] = y


def make_products(dev: Any, n: int, seed: int = 0) -> tuple[list[Any], np.ndarray]:
    """``n`` products: the real ones, then copies with varied titles; and each product's source row."""
    rng = random.Random(seed)
    real = dev.products
    products = list(real[:n])
    src = list(range(len(products)))
    k = 0
    while len(products) < n:
        s = k % len(real)
        p = real[s]
        products.append(dataclasses.replace(p, id=f"{p.id}-v{k // len(real) + 1}", title=c.vary_title(p.title, rng)))
        src.append(s)
        k += 1
    return products, np.asarray(src, np.int64)


def calibrate_text(dev: Any, products: list[Any], src: np.ndarray, sample: int, seed: int) -> dict[str, Any]:
    """Really encode ``sample`` copies' dense texts: mean cosine to their source's real vector."""
    from shoplens.encode.registry import build_text_encoder
    from shoplens.engine import dense_text

    n_real = dev.n
    copies = np.arange(n_real, len(products))
    if not len(copies):
        return {"sample": 0, "real_mean_cos": None}
    pick = np.random.default_rng(seed).choice(copies, min(sample, len(copies)), replace=False)
    enc = build_text_encoder(dev.config.encode)
    texts = [dense_text(products[i], dev.config.encode.dense_text) for i in pick]
    t0 = time.perf_counter()
    vecs = np.vstack([enc.encode(texts[a : a + 128]) for a in range(0, len(texts), 128)])
    rate = len(texts) / (time.perf_counter() - t0)
    real = np.asarray(dev.text_vectors)[src[pick]]
    cos = np.sum(vecs * real, axis=1)
    return {"sample": len(pick), "real_mean_cos": round(float(cos.mean()), 4), "real_p10_cos": round(float(np.percentile(cos, 10)), 4),
            "encode_texts_per_s": round(rate, 1), "model": enc.name}


def build(dev_path: Path, n: int, config_names: list[str], work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Write one index folder per config at size ``n``; returns timings and the vector recipe."""
    from shoplens.config import Config
    from shoplens.index import atomic
    from shoplens.index.lexical import LexicalIndex
    from shoplens.index.state import IndexState

    dev = IndexState.load(c.current_generation(dev_path))
    info: dict[str, Any] = {"n": n, "real_products": min(n, dev.n), "synthetic_copies": max(0, n - dev.n)}
    t0 = time.perf_counter()
    products, src = make_products(dev, n)
    info["products_s"] = round(time.perf_counter() - t0, 1)

    real_t = np.ascontiguousarray(dev.text_vectors, np.float32)
    sig_t = real_t.std(axis=0)
    calib = calibrate_text(dev, products, src, args.calibrate, 1)
    target = calib["real_mean_cos"] or 0.95
    scale_t = calibrated_noise(real_t, target, sig_t, 2)
    owner = np.asarray(dev.image_owner)
    first_photo = np.full(dev.n, -1, np.int64)
    first_photo[owner[::-1]] = np.arange(len(owner))[::-1]
    real_i = np.ascontiguousarray(dev.image_vectors, np.float32)
    sig_i = real_i.std(axis=0)
    scale_i = calibrated_noise(real_i, args.image_cos, sig_i, 3)

    vec_dir = work / f"vectors-{n}"
    vec_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    text = np.lib.format.open_memmap(vec_dir / "text.npy", "w+", np.float32, (n, real_t.shape[1]))
    n_real = min(n, dev.n)
    text[:n_real] = real_t[:n_real]
    jitter_into(text, real_t, src[n_real:], n_real, scale_t, sig_t, 4)
    image = np.lib.format.open_memmap(vec_dir / "image.npy", "w+", np.float32, (n, real_i.shape[1]))
    photo = first_photo[src]  # products are given their source's main photo
    image[:n_real] = real_i[photo[:n_real]]
    jitter_into(image, real_i, photo[n_real:], n_real, scale_i, sig_i, 5)
    text.flush()
    image.flush()
    got_t = float(np.mean(np.sum(text[n_real : n_real + 20_000] * real_t[src[n_real : n_real + 20_000]], axis=1))) if n > n_real else None
    got_i = float(np.mean(np.sum(image[n_real : n_real + 20_000] * real_i[photo[n_real : n_real + 20_000]], axis=1))) if n > n_real else None
    aux = {name: np.ascontiguousarray(np.asarray(arr)[photo]) for name, arr in dev.image_aux.items()}
    info["vectors_s"] = round(time.perf_counter() - t0, 1)
    info["text_vectors"] = {"real": n_real, "jittered": n - n_real, "calibration": calib,
                            "jitter_mean_cos": round(got_t, 4) if got_t is not None else None}
    info["image_vectors"] = {"real": n_real, "jittered": n - n_real, "target_mean_cos": args.image_cos,
                             "jitter_mean_cos": round(got_i, 4) if got_i is not None else None,
                             "side_outputs": sorted(aux), "side_outputs_from": "source photo (copied)"}
    text = np.load(vec_dir / "text.npy", mmap_mode="r")
    image = np.load(vec_dir / "image.npy", mmap_mode="r")

    info["indexes"] = {}
    bm25_src: Path | None = None
    for name in config_names:
        if name == "float32-hnsw" and n > HNSW_MAX:
            info["indexes"][name] = {"skipped": f"float32 HNSW not built above {HNSW_MAX:,} products (build time)"}
            continue
        cfg = Config().replace(index=CONFIGS[name], encode={"progress": False})
        root = work / f"idx-{n}-{name}"
        shutil.rmtree(root, ignore_errors=True)
        scratch, final = atomic.new_generation_dir(root)
        t0 = time.perf_counter()
        if bm25_src is None:
            print(f"[N={n}] BM25 over {n:,} products", flush=True)
            lexical = LexicalIndex(scratch / "bm25")
            lexical.upsert(products)
            bm25_s = round(time.perf_counter() - t0, 1)
        else:
            atomic.link_tree(bm25_src, scratch / "bm25")
            lexical = LexicalIndex(scratch / "bm25")
            bm25_s = 0.0
        print(f"[N={n}] {name}: arrays, products and ANN indexes", flush=True)
        t1 = time.perf_counter()
        state = IndexState(
            config=cfg, products=products, text_vectors=text, has_text=np.ones(n, bool), image_vectors=image,
            image_owner=np.arange(n, dtype=np.int64), image_refs=[p.images[0] for p in products], image_aux=aux,
            lexical=lexical, text_model=dev.text_model, image_model=dev.image_model, align=dev.align,
        )
        state.save(scratch)
        save_s = round(time.perf_counter() - t1, 1)
        del state, lexical
        final = atomic.publish(root, scratch, final, 1)
        bm25_src = final / "bm25"
        disk = c.disk_usage(final)
        info["indexes"][name] = {"path": str(root), "config_index": cfg.index.__dict__, "bm25_s": bm25_s,
                                 "save_s": save_s, "disk_bytes": disk["du_bytes"],
                                 "disk_bytes_per_product": c.per_item(disk["du_bytes"], n)}
    shutil.rmtree(vec_dir, ignore_errors=True)
    return info


# -- querying (in a fresh process per index) ----------------------------------------------------
def queries() -> dict[str, list[dict[str, Any]]]:
    d = c.FASHION_DEV
    texts = [json.loads(line)["text"] for f in ("q-attr", "q-natural", "q-zh")
             for line in (d / f"{f}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    photos = [str(d / json.loads(line)["image"]) for line in (d / "q-image.jsonl").read_text().splitlines() if line.strip()]
    return {
        "text": [{"text": t} for t in texts],
        "filtered": [{"text": t, "filters": FILTERS[i % len(FILTERS)]} for i, t in enumerate(texts)],
        "photo": [{"image": p} for p in photos],
    }


def run_queries(engine: Any, qs: list[dict[str, Any]], threads: int) -> tuple[list[float], list[dict[str, float]], float]:
    def one(q: dict[str, Any]) -> tuple[float, dict[str, float]]:
        c0, t0 = time.process_time(), time.perf_counter()
        res = engine.search(q.get("text", ""), image=q.get("image"), filters=q.get("filters", ()), k=10)
        wall = (time.perf_counter() - t0) * 1e3
        # With one client, the process's CPU time per query (all its threads): what the query
        # costs, little affected by other processes on a shared machine (wall time is).
        return wall, {**res.timings_ms, "_cpu_ms": (time.process_time() - c0) * 1e3}

    t0 = time.perf_counter()
    if threads == 1:
        out = [one(q) for q in qs]
    else:
        with ThreadPoolExecutor(threads) as pool:
            out = list(pool.map(one, qs))
    wall = time.perf_counter() - t0
    return [o[0] for o in out], [o[1] for o in out], len(qs) / wall


def stages(walls: list[float], timings: list[dict[str, float]]) -> dict[str, float]:
    timings = [{k: v for k, v in t.items() if not k.startswith("_")} for t in timings]
    keys = sorted({k for t in timings for k in t})
    out = {k.removesuffix("_ms"): round(float(np.mean([t.get(k, 0.0) for t in timings])), 2) for k in keys}
    # BM25 runs beside the dense side (encode + vector search) since #6: count the slower of the two.
    dense = ("encode_text_ms", "dense_text_ms", "xmodal_ms")

    def staged(t: dict[str, float]) -> float:
        side = max(t.get("bm25_ms", 0.0), sum(t.get(k, 0.0) for k in dense))
        return side + sum(v for k, v in t.items() if k != "bm25_ms" and k not in dense)

    out["other"] = round(float(np.mean([w - staged(t) for w, t in zip(walls, timings, strict=True)])), 2)
    return out


def query_child(spec: dict[str, Any]) -> dict[str, Any]:
    from shoplens import Engine

    out: dict[str, Any] = {"load_before": c.load_average()}
    rss0 = c.rss_bytes()
    t0 = time.perf_counter()
    engine = Engine.open(spec["index"])
    out["open_s"] = round(time.perf_counter() - t0, 2)
    rss_open = c.rss_bytes()
    out["rss_after_open_mb"] = round((rss_open - rss0) / 2**20, 1)
    t0 = time.perf_counter()
    _ = engine.text_encoder, engine.image_encoder
    out["model_load_s"] = round(time.perf_counter() - t0, 2)
    rss_models = c.rss_bytes()
    qs = queries()
    st = engine.state
    if hasattr(st, "columns"):  # what the first query builds (per-field value columns), timed alone
        t0 = time.perf_counter()
        for name in st.columns.facet_fields():
            st.columns.facet_column(name)
        out["columns_s"] = round(time.perf_counter() - t0, 2)
    first: dict[str, float] = {}
    for kind in ("text", "filtered", "photo"):  # the first query of each kind builds what it needs lazily
        t0 = time.perf_counter()
        q = qs[kind][0]
        engine.search(q.get("text", ""), image=q.get("image"), filters=q.get("filters", ()), k=10)
        first[kind] = round((time.perf_counter() - t0) * 1e3, 1)
    out["first_query_ms"] = first
    # Each distinct filter's mask is built once per index generation (then cached): its first use.
    first_filter = []
    for f in FILTERS:
        t0 = time.perf_counter()
        engine.search("shirt", filters=f, k=10)
        first_filter.append((time.perf_counter() - t0) * 1e3)
    out["first_use_per_filter_ms"] = round(float(np.mean(first_filter)), 1)
    for kind in ("text", "filtered", "photo"):
        run_queries(engine, qs[kind][:10], 1)  # warm-up
        res: dict[str, Any] = {}
        for threads in (1, 2):
            walls, timings, qps = run_queries(engine, qs[kind] * spec["repeat"], threads)
            summary = c.latency_summary(walls)
            summary["qps"] = round(qps, 1)
            summary["stages_ms"] = stages(walls, timings)
            if threads == 1:
                summary["cpu"] = c.latency_summary([t["_cpu_ms"] for t in timings])
            if kind == "photo":
                summary["without_encode"] = c.latency_summary(
                    [w - t.get("encode_image_ms", 0.0) for w, t in zip(walls, timings, strict=True)])
            res[f"threads_{threads}"] = summary
        out[kind] = res
    rss_end = c.rss_bytes()
    # Index = what opening it took + what the queries built lazily (ANN, masks); models separately.
    out["rss_index_mb"] = round((rss_open - rss0 + rss_end - rss_models) / 2**20, 1)
    out["rss_models_mb"] = round((rss_models - rss_open) / 2**20, 1)
    out["rss_total_mb"] = round(c.rss_bytes() / 2**20, 1)
    # Anonymous memory is the real cost; file-backed pages (memory-mapped vectors and ANN lists the
    # queries touched) are page cache the kernel can drop and share between processes.
    out["rss_anon_mb"] = round((c._proc_status_kib("RssAnon") or 0) / 1024, 1)
    out["rss_file_mb"] = round((c._proc_status_kib("RssFile") or 0) / 1024, 1)
    out["peak_rss_mb"] = round(c.peak_rss_bytes() / 2**20, 1)
    out["load_after"] = c.load_average()
    return out


def run_child(index: Path, repeat: int) -> dict[str, Any]:
    spec = json.dumps({"index": str(index), "repeat": repeat})
    proc = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"query process failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- report -------------------------------------------------------------------------------------
def table(results: list[dict[str, Any]]) -> str:
    cols, rows = [], []
    runs = [(r, name, ix) for r in results for name, ix in r["indexes"].items() if "query" in ix]
    for r, name, _ in runs:
        cols.append(f"N={r['n']:,} {name}")

    def line(label: str, f: Any) -> None:
        rows.append((label, [f(r, ix) for r, _, ix in runs]))

    def lat(kind: str, t: int, sub: str | None = None) -> Any:
        def f(r: dict, ix: dict) -> str:
            s = ix["query"][kind][f"threads_{t}"]
            s = s[sub] if sub else s
            return f"{s['p50_ms']} / {s['p95_ms']} / {s['p99_ms']}"
        return f

    line("products (synthetic copies)", lambda r, ix: f"{r['n']:,} ({r['synthetic_copies']:,})")
    line("text vectors: real / jittered", lambda r, ix: f"{r['text_vectors']['real']:,} / {r['text_vectors']['jittered']:,}")
    line("index build: BM25 s / save (arrays + ANN) s", lambda r, ix: f"{ix['bm25_s']} / {ix['save_s']}")
    line("disk bytes/product", lambda r, ix: ix["disk_bytes_per_product"])
    line("open s (Engine.open)", lambda r, ix: ix["query"]["open_s"])
    line("first use of facet/filter columns s (all facet fields)", lambda r, ix: ix["query"].get("columns_s"))
    line("first text / filtered / photo query ms", lambda r, ix: " / ".join(str(v) for v in ix["query"]["first_query_ms"].values()))
    line("first use of a new filter ms (mean)", lambda r, ix: ix["query"]["first_use_per_filter_ms"])
    line("RSS index MB (bytes/product)", lambda r, ix: f"{ix['query']['rss_index_mb']:,} ({c.per_item(ix['query']['rss_index_mb'] * 2**20, r['n']):,})")
    line("RSS process anonymous / file-backed MB", lambda r, ix: (
        f"{ix['query']['rss_anon_mb']:,} / {ix['query']['rss_file_mb']:,}" if "rss_anon_mb" in ix["query"] else None))
    line("RSS models MB / process total MB", lambda r, ix: f"{ix['query']['rss_models_mb']} / {ix['query']['rss_total_mb']:,}")
    for kind in ("text", "filtered", "photo"):
        line(f"{kind} p50 / p95 / p99 ms, 1 client", lat(kind, 1))
        line(f"{kind} CPU ms per query p50 / p95 / p99, 1 client", lambda r, ix, k=kind: (
            lat(k, 1, "cpu")(r, ix) if "cpu" in ix["query"][k]["threads_1"] else None))
        if kind == "photo":
            line("photo without encode p50 / p95 / p99 ms", lat(kind, 1, "without_encode"))
        line(f"{kind} QPS 1 / 2 clients", lambda r, ix, k=kind: f"{ix['query'][k]['threads_1']['qps']} / {ix['query'][k]['threads_2']['qps']}")
        line(f"{kind} p95 ms, 2 clients", lambda r, ix, k=kind: ix["query"][k]["threads_2"]["p95_ms"])
        line(f"{kind} mean stages ms (1 client)", lambda r, ix, k=kind: ", ".join(
            f"{s} {v}" for s, v in ix["query"][k]["threads_1"]["stages_ms"].items()))
    line("load average at query start / end", lambda r, ix: f"{ix['query']['load_before']['loadavg'][0]} / {ix['query']['load_after']['loadavg'][0]}")
    return c.markdown_table(rows, cols)


def report(meta: dict[str, Any], results: list[dict[str, Any]]) -> str:
    m = meta["machine"]
    notes = []
    for r in results:
        tv, iv = r["text_vectors"], r["image_vectors"]
        cal = tv["calibration"]
        notes.append(
            f"N={r['n']:,}: text vectors {tv['real']:,} real (use-multilingual) + {tv['jittered']:,} jittered "
            f"(mean cosine to source {tv['jitter_mean_cos']}; the real model gives {cal.get('real_mean_cos')} on "
            f"{cal.get('sample')} varied titles); image vectors {iv['real']:,} real + {iv['jittered']:,} jittered "
            f"(mean cosine {iv['jitter_mean_cos']}, target {iv['target_mean_cos']}). "
            + "; ".join(f"{k}: {v['skipped']}" for k, v in r["indexes"].items() if "skipped" in v))
    configs = {k: v for r in results for k, ix in r["indexes"].items() if "config_index" in ix
               for v in [{f: ix["config_index"][f] for f in ("vector_dtype", "ann_kind", "ann_threshold", "ivf_nprobe", "rerank", "hnsw_ef_search")}]}
    return "\n".join([
        "# End-to-end query latency at 100k and 1M products (benchmarks/bench_large.py)", "",
        f"`{meta['command']}`", "",
        f"Commit {meta['git']['commit'][:10]}{' (+ uncommitted changes)' if meta['git']['dirty'] else ''}, "
        f"{m['date']}, {m['cpus_usable']} CPUs, python {m['python']}, numpy {m['versions']['numpy']}, "
        f"faiss {m['versions']['faiss-cpu']}, tantivy {m['versions']['tantivy']}; {meta['wall_s']:.0f} s in all. "
        f"Load average at start {meta['load_start']['loadavg']}, at end {meta['load_end']['loadavg']}.", "",
        "Engine.search end to end (text encoder, BM25, dense, fusion, filters, facets), k=10, in a fresh "
        f"process per index; {meta['repeat']}× each query set; latency = wall time per call.", "",
        table(results), "",
        "Configs (`index.*`): " + "; ".join(f"`{k}`: {json.dumps(v)}" for k, v in configs.items()), "",
        *[f"- {n}" for n in notes], "",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--configs", nargs="+", default=["int8-ivf", "float32-hnsw"], choices=sorted(CONFIGS))
    ap.add_argument("--out", type=Path, default=c.ROOT / "benchmarks" / "results" / "large.json")
    ap.add_argument("--md", type=Path, default=c.ROOT / "benchmarks" / "RESULTS-large.md")
    ap.add_argument("--dev-index", type=Path, help="an index of the dev catalogue (default: built in the workdir)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/shoplens-bench-large"))
    ap.add_argument("--reuse", action="store_true", help="reuse index folders already in the workdir (query only)")
    ap.add_argument("--keep", action="store_true", help="keep the index folders")
    ap.add_argument("--repeat", type=int, default=2, help="passes over each query set")
    ap.add_argument("--calibrate", type=int, default=512, help="copies' titles really encoded to calibrate the jitter")
    ap.add_argument("--image-cos", type=float, default=0.9, help="mean cosine of a copy's image vector to its source")
    ap.add_argument("--render", type=Path, nargs="+",
                    help="re-print saved JSON tables (several: their sizes side by side) and rewrite --md")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(query_child(json.loads(args.child))))
        return 0
    if args.render:
        runs = [json.loads(f.read_text()) for f in args.render]
        meta = dict(runs[0]["meta"])
        if len(runs) > 1:
            meta["command"] = " + ".join(r["meta"]["command"] for r in runs)
            meta["wall_s"] = sum(r["meta"]["wall_s"] for r in runs)
            meta["load_end"] = runs[-1]["meta"]["load_end"]
        md = report(meta, [res for r in runs for res in r["results"]])
        print(md)
        args.md.write_text(md)
        return 0
    c.require_fashion_dev()
    meta: dict[str, Any] = {"command": "python benchmarks/bench_large.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                            "machine": c.machine_info(), "git": c.git_commit(), "load_start": c.load_average(),
                            "repeat": args.repeat, "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "SHOPLENS_CACHE")}}
    if meta["git"]["commit"] == "unknown" and os.environ.get("BENCH_COMMIT"):  # run from `git archive` output
        meta["git"] = {"commit": os.environ["BENCH_COMMIT"], "dirty": False, "changed_files": [], "snapshot": True}
    print(meta["load_start"]["uptime"], flush=True)
    start = time.perf_counter()
    args.workdir.mkdir(parents=True, exist_ok=True)
    dev = dev_index(args.workdir, args.dev_index)
    results = []
    for n in args.sizes:
        saved = args.workdir / f"build-{n}.json"
        if args.reuse and saved.is_file():
            info = json.loads(saved.read_text())
        else:
            info = build(dev, n, args.configs, args.workdir, args)
            saved.write_text(json.dumps(info, indent=1))
        for name, ix in info["indexes"].items():
            if name not in args.configs or "skipped" in ix:
                continue
            print(f"[N={n}] {name}: queries ({c.load_average()['uptime']})", flush=True)
            ix["query"] = run_child(Path(ix["path"]), args.repeat)
            if not args.keep:
                shutil.rmtree(ix["path"], ignore_errors=True)
        info["indexes"] = {k: v for k, v in info["indexes"].items() if k in args.configs}
        results.append(info)
    meta["load_end"] = c.load_average()
    meta["git_end"] = c.git_commit()
    meta["wall_s"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=1, ensure_ascii=False))
    md = report(meta, results)
    print(md)
    args.md.write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
