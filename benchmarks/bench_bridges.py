"""Cross-modal bridges on the development data: what each bridge adds (issue 3).

Fashion: half the products keep title + attributes, the other half only the photo (seeded split);
text queries are scored on the photo-only products alone (qrels restricted to them; the run
filtered to them, and also unfiltered). The mirror split (half the products lose their photo)
scores the photo queries on the text-only listings. Grocery: shop-shelf photos → products that have a studio
photo and up to 8 shop photos, with and without the learned photo head.

    python benchmarks/bench_bridges.py --out benchmarks/results/bridges.json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shoplens import Config, Engine
from shoplens.eval.metrics import evaluate
from shoplens.eval.trec import read_qrels
from shoplens.types import Query

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SETS = ("attr", "natural", "zh")


def split_fashion(out: Path, seed: int = 7, keep: str = "image", name: str = "catalog.csv") -> set[str]:
    """Write the dev catalogue with a seeded half reduced: ``keep="image"`` leaves those products
    only their id and photo (photo-only listings), ``keep="text"`` takes their photo away (text-only
    listings). Returns the reduced half's ids."""
    src = DATA / "fashion-dev"
    rows = list(csv.DictReader((src / "catalog.csv").open(encoding="utf-8")))
    random.Random(seed).shuffle(rows)
    reduced = {r["id"] for r in rows[: len(rows) // 2]}
    with (out / name).open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            r = {**r, "image": str(src / r["image"])}
            if r["id"] in reduced:
                r = {k: (v if k in ("id", "image") else "") for k, v in r.items()} if keep == "image" else {**r, "image": ""}
            w.writerow(r)
    return reduced


def photo_to_text_only_scores(engine: Engine, text_only: set[str]) -> dict[str, float]:
    """Photo queries (q-image) scored on the text-only products alone."""
    src = DATA / "fashion-dev"
    qrels = {q: {d: g for d, g in j.items() if d in text_only} for q, j in read_qrels(src / "qrels-image.txt").items()}
    lines = (src / "q-image.jsonl").read_text(encoding="utf-8").splitlines()
    full = {o["qid"]: [h.id for h in engine.search(Query(image=str(src / o["image"]), k=100)).hits] for o in map(json.loads, lines)}
    filtered = {qid: [d for d in ids if d in text_only] for qid, ids in full.items()}
    return {
        "image_filtered": round(evaluate(filtered, qrels)[0]["ndcg@10"], 4),
        "image_mixed": round(evaluate(full, qrels)[0]["ndcg@10"], 4),
    }


def queries(name: str) -> list[tuple[str, str]]:
    lines = (DATA / "fashion-dev" / f"q-{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [(o["qid"], o["text"]) for o in map(json.loads, lines)]


def fashion_scores(engine: Engine, photo_only: set[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in SETS:
        qrels = {
            q: {d: g for d, g in judged.items() if d in photo_only}
            for q, judged in read_qrels(DATA / "fashion-dev" / f"qrels-{name}.txt").items()
        }
        full = {qid: [h.id for h in engine.search(Query(text, k=100)).hits] for qid, text in queries(name)}
        filtered = {qid: [d for d in ids if d in photo_only] for qid, ids in full.items()}
        out[f"{name}_filtered"] = round(evaluate(filtered, qrels)[0]["ndcg@10"], 4)
        out[f"{name}_mixed"] = round(evaluate(full, qrels)[0]["ndcg@10"], 4)
    return out


def grocery_catalog(out: Path) -> Path:
    src = DATA / "grocery"
    shop: dict[str, list[str]] = {}
    for line in (src / "dataset" / "train.txt").read_text().splitlines():
        path, fine, _ = (x.strip() for x in line.split(","))
        shop.setdefault(fine, []).append(str(src / "dataset" / path))
    path = out / "grocery.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "description", "image", "images", "category"])
        for r in csv.DictReader((src / "catalog.csv").open(encoding="utf-8")):
            w.writerow([r["id"], r["title"], r["description"], str(src / r["image"]), "|".join(shop.get(r["id"], [])[:8]), r["category"]])
    return path


def grocery_scores(engine: Engine) -> dict[str, float]:
    src = DATA / "grocery"
    lines = (src / "q-photo-val.jsonl").read_text().splitlines()
    run = {o["qid"]: [h.id for h in engine.search(Query(image=str(src / o["image"]), k=100)).hits] for o in map(json.loads, lines)}
    means = evaluate(run, read_qrels(src / "qrels-photo-val.txt"))[0]
    return {"mrr@10": round(means["mrr@10"], 4), "p@1": round(means["p@1"], 4), "ndcg@10": round(means["ndcg@10"], 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bridges.json")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"development data not found at {DATA}; nothing to measure", file=sys.stderr)
        return 1
    base = Config().replace(encode={"progress": False})
    variants = {
        "no bridge": {"align": {"enabled": False, "tags": False}},
        "tags only": {"align": {"enabled": False, "tags": True}},
        "alignment only": {"align": {"enabled": True, "tags": False}},
        "alignment + tags": {"align": {"enabled": True, "tags": True, "tags_weight_with_head": 0.5}},
    }
    results: dict[str, dict] = {"fashion_half_photo_only": {}, "fashion_half_text_only": {}, "grocery_shelf_photos": {}}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        photo_only = split_fashion(t)
        for name, change in variants.items():
            t0 = time.perf_counter()
            engine = Engine(t / f"f-{name.replace(' ', '_')}", base.replace(**change))
            engine.add_catalog(t / "catalog.csv")
            row = fashion_scores(engine, photo_only)
            row["build_s"] = round(time.perf_counter() - t0, 1)
            results["fashion_half_photo_only"][name] = row
            print(name, row, flush=True)
        text_only = split_fashion(t, keep="text", name="catalog-text-only.csv")
        for name, change in {"no bridge": variants["no bridge"], "alignment": {}}.items():
            engine = Engine(t / f"t-{name.replace(' ', '_')}", base.replace(**change) if change else base)
            engine.add_catalog(t / "catalog-text-only.csv")
            results["fashion_half_text_only"][name] = photo_to_text_only_scores(engine, text_only)
            print(name, results["fashion_half_text_only"][name], flush=True)
        groc = grocery_catalog(t)
        for name, change in {"raw backbone": {"align": {"enabled": False}}, "photo head": {}}.items():
            engine = Engine(t / f"g-{name.replace(' ', '_')}", base.replace(**change) if change else base)
            engine.add_catalog(groc)
            results["grocery_shelf_photos"][name] = grocery_scores(engine)
            print(name, results["grocery_shelf_photos"][name], flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    results["commit"] = commit
    print("\nfashion, text queries scored on photo-only products (nDCG@10; filtered run / mixed run)")
    print(f"{'bridge':<20}" + "".join(f"{s:>18}" for s in SETS))
    for name, row in results["fashion_half_photo_only"].items():
        print(f"{name:<20}" + "".join(f"{row[s + '_filtered']:>9.3f} / {row[s + '_mixed']:<6.3f}" for s in SETS))
    print("\nfashion, photo queries scored on text-only products (nDCG@10; filtered run / mixed run)")
    for name, row in results["fashion_half_text_only"].items():
        print(f"{name:<20}{row['image_filtered']:>9.3f} / {row['image_mixed']:<6.3f}")
    print("\ngrocery shelf photos → products")
    for name, row in results["grocery_shelf_photos"].items():
        print(f"{name:<20} MRR@10 {row['mrr@10']:.3f}  P@1 {row['p@1']:.3f}  nDCG@10 {row['ndcg@10']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
