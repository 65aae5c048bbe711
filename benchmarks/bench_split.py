"""The ranking acceptance flow on catalogues nobody tuned on: the dev catalogue split in parts.

The acceptance checks of the ranking issue run on a held-back catalogue of the same kind, through
the CLI: ``shoplens train INDEX --queries TRAIN.jsonl --qrels TRAIN_QRELS.txt`` with judged queries
in the catalogue's own words, then ``shoplens run INDEX`` on other queries. This script plays that
out on each part of a seeded split of ``../shared/data/fashion-dev`` (half the products, by
default), as a shop would, with every query set generated from the part itself:

- ``train``: catalogue-word queries (gender + colour + type), ``--train`` of them;
- ``attr``: other catalogue-word queries (the triples left after training);
- ``dev-phrasing natural``: the English paraphrases of the shipped ``q-natural.jsonl``, with its
  phrase for each product type (read from that file and its qrels: the words left when colour and
  "for <audience>" are taken off), on every (audience, colour, type) of the part having one;
- ``gen`` / ``fresh`` natural and zh: benchmarks/dev_queries.py's own phrasings;
- personalised: ``gen personal`` and the ``ambiguous personal`` sets with their kinds of history,
  each also without its history (the gain the issue checks is with − without).

Every set is run before training (fused retrieval, no ranker) and after. Development data, split:
these are not held-out figures, but no part was tuned on as a catalogue of its own (the understanding
rules were written looking at the whole dev catalogue and its query files).

    python benchmarks/bench_split.py [--parts 2] [--seed 7] [--train 150] --out benchmarks/results/split.json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    FASHION_DEV,
    git_commit,
    load_average,
    machine_info,
    markdown_table,
    read_catalog,
    require_fashion_dev,
)
from dev_queries import HISTORY_KINDS, generate, generate_fresh, generate_histories, judge, write_set  # noqa: E402

Items = list[tuple[dict[str, object], dict[str, int]]]


def dev_phrases(rows: list[dict[str, str]]) -> dict[str, str]:
    """Product type → the shipped paraphrase's phrase for it ("Kurtas" → "indian tunic"): the words of
    a q-natural query left after its colour and "for <audience>", typed by its fully relevant products."""
    kind = {r["id"]: r["article_type"] for r in rows}
    colours = sorted({r["colour"].lower() for r in rows}, key=len, reverse=True)
    qrels: dict[str, Counter[str]] = {}
    for line in (FASHION_DEV / "qrels-natural.txt").read_text(encoding="utf-8").splitlines():
        qid, _z, doc, grade = line.split()
        if grade == "2" and doc in kind:
            qrels.setdefault(qid, Counter())[kind[doc]] += 1
    out: dict[str, str] = {}
    for line in (FASHION_DEV / "q-natural.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        text, _sep, _who = str(q["text"]).rpartition(" for ")
        colour = next((c for c in colours if text.startswith(c + " ")), None)
        if colour and q["qid"] in qrels:
            out.setdefault(qrels[q["qid"]].most_common(1)[0][0], text[len(colour) + 1 :])
    return out


def query_sets(rows: list[dict[str, str]], n_train: int, phrases: dict[str, str]) -> dict[str, Items]:
    train = generate(rows, seed=5, per_kind=len(rows))["attr"][:n_train]
    taken = {str(q["text"]) for q, _r in train}
    gen = generate(rows, seed=1)
    sets: dict[str, Items] = {"train": train}
    sets["attr"] = [(q, r) for q, r in generate(rows, seed=1, per_kind=len(rows))["attr"] if str(q["text"]) not in taken][:60]
    triples = Counter((r["gender"], r["colour"], r["article_type"]) for r in rows)
    usable = sorted(t for t, n in triples.items() if n >= 2 and t[2] in phrases and t[0] != "Unisex")
    sets["dev-phrasing natural"] = [({"text": f"{c.lower()} {phrases[t]} for {g.lower()}"}, judge(rows, g, c, t)) for g, c, t in usable]
    fresh = generate_fresh(rows)
    sets.update({"gen natural": gen["natural"], "fresh natural": fresh["natural"], "gen zh": gen["zh"], "fresh zh": fresh["zh"]})
    sets["gen personal"] = gen["personal"]
    sets["gen personal, no history"] = [({"text": q["text"]}, r) for q, r in gen["personal"]]
    for kind, items in generate_histories(rows).items():
        sets[f"ambiguous personal, {kind}"] = items
    return sets


def write_query_set(items: Items, folder: Path, name: str) -> tuple[Path, Path]:
    slug = "".join(c if c.isalnum() else "-" for c in name)
    qpath, rpath = folder / f"q-{slug}.jsonl", folder / f"qrels-{slug}.txt"
    write_set(items, qpath, rpath, prefix=f"{slug}-")
    return qpath, rpath


def shoplens(*args: str) -> str:
    """Run the CLI as a shop would (``shoplens`` on PATH, else this interpreter's module)."""
    exe = shutil.which("shoplens")
    cmd = [exe, *args] if exe else [sys.executable, "-c", "from shoplens.cli.main import main; main()", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"shoplens {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def ndcg(folder: Path, run: Path, qrels: Path) -> float:
    out = folder / (run.stem + ".json")
    shoplens("eval", str(run), str(qrels), "--json-out", str(out))
    return round(float(json.loads(out.read_text(encoding="utf-8"))["ndcg@10"]), 4)


def run_part(rows: list[dict[str, str]], folder: Path, n_train: int, phrases: dict[str, str]) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    columns = list(rows[0])
    with (folder / "catalog.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    sets = query_sets(rows, n_train, phrases)
    files = {name: write_query_set(items, folder, name) for name, items in sets.items()}
    index = folder / "index"
    shoplens("index", str(folder / "catalog.csv"), "--out", str(index), "--no-progress")
    result: dict[str, Any] = {"products": len(rows), "queries": {k: len(v) for k, v in sets.items()}, "before": {}, "after": {}}
    tests = [name for name in sets if name != "train"]
    for stage in ("before", "after"):
        if stage == "after":
            t0 = time.perf_counter()
            qpath, rpath = files["train"]
            shoplens("train", str(index), "--queries", str(qpath), "--qrels", str(rpath))
            result["train_s"] = round(time.perf_counter() - t0, 1)
        for name in tests:
            qpath, rpath = files[name]
            run = folder / f"run-{stage}-{qpath.stem[2:]}.txt"
            shoplens("run", str(index), "--queries", str(qpath), "--out", str(run))
            result[stage][name] = ndcg(folder, run, rpath)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", type=int, default=2, help="split the dev catalogue into this many parts (each a shop)")
    ap.add_argument("--seed", type=int, default=7, help="seed of the split")
    ap.add_argument("--train", type=int, default=150, help="judged catalogue-word training queries per part")
    ap.add_argument("--work", type=Path, help="folder for the parts' catalogues, indexes and runs (a temporary one if absent)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/split.json"))
    args = ap.parse_args()
    catalog = require_fashion_dev()
    rows = read_catalog(catalog)
    phrases = dev_phrases(rows)
    shuffled = list(rows)
    random.Random(args.seed).shuffle(shuffled)
    parts = [sorted(shuffled[k :: args.parts], key=lambda r: int(r["id"])) for k in range(args.parts)]
    work = args.work or Path(tempfile.mkdtemp(prefix="shoplens-split-"))
    started = time.time()
    info: dict[str, Any] = {"commit": git_commit(), "machine": machine_info(), "load_before": load_average()}
    info.update(parts=args.parts, seed=args.seed, train_queries=args.train, dev_phrases=phrases)
    results = {f"part {k + 1}": run_part(part, work / f"part{k + 1}", args.train, phrases) for k, part in enumerate(parts)}
    names = [n for n in next(iter(results.values()))["after"]]
    table: list[tuple[str, list[Any]]] = []
    for name in names:
        table.append((f"nDCG@10 {name} ({results['part 1']['queries'][name]} q)", [f"{r['before'][name]:.4f} → {r['after'][name]:.4f}" for r in results.values()]))
    for name in ["gen personal", *(f"ambiguous personal, {k}" for k in HISTORY_KINDS)]:
        base = "gen personal, no history" if name == "gen personal" else "ambiguous personal, no history"
        gains = [f"{r['after'][name] - r['after'][base]:+.4f}" for r in results.values()]
        table.append((f"gain from the history, ranker ({name})", gains))
    table.append(("train s", [r["train_s"] for r in results.values()]))
    table.append(("products", [r["products"] for r in results.values()]))
    info.update(results=results, load_after=load_average(), seconds=round(time.time() - started, 1))
    print(markdown_table(table, list(results)))
    print(f"\nbefore → after training; split seed {args.seed}; development data, split, not held-out; work folder {work}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(info, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
