""""More like this" on the fashion dev catalogue: fixed concatenation vs attention fusion (issue 3).

The attention gate is learned on a random half of the products (from their facets only), then every
product of the other half asks for 10 similar products among the whole catalogue; nDCG@10 uses the
dev relevance rule (same article type = 1, and same colour = 2). Development data, not held-out
in the acceptance sense: the split only keeps the gate from being scored on the products it saw.

    python benchmarks/bench_fusion.py [--index DIR] --out benchmarks/results/fusion.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import git_commit, load_average, machine_info, require_fashion_dev  # noqa: E402

from shoplens import Engine  # noqa: E402
from shoplens.eval.metrics import ndcg_at  # noqa: E402
from shoplens.fuse.attention import fit_attention  # noqa: E402
from shoplens.retrieve.hybrid import attention_similarity, fused_similarity  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", type=Path, help="an index of the fashion dev catalogue (built if absent)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/fusion.json"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    catalog = require_fashion_dev()
    with tempfile.TemporaryDirectory(prefix="bench-fusion-") as tmp:
        index = args.index if args.index and args.index.is_dir() else Path(tmp) / "idx"
        if index != args.index:
            Engine(index).add_catalog(catalog)
        st = Engine.open(index).state
        n = st.n
        items = [dict(st.facet_items[r]) for r in range(n)]
        kind = np.array([hash(i.get("article_type")) for i in items])
        colour = np.array([hash(i.get("colour")) for i in items])
        text, image = np.asarray(st.text_vectors), st.product_image_vectors
        rows: list[dict[str, object]] = []
        for seed in args.seeds:
            perm = np.random.default_rng(seed).permutation(n)
            train, test = np.sort(perm[: n // 2]), perm[n // 2 :]
            t0 = time.perf_counter()
            fusion = fit_attention(
                text[train], image[train], st.has_text[train], st.has_image[train], [st.facet_items[int(r)] for r in train], seed
            )
            fit_s = time.perf_counter() - t0
            assert fusion is not None
            scores: dict[str, list[float]] = {"concat": [], "attention": []}
            for p in test:
                grades = np.where(kind == kind[p], np.where(colour == colour[p], 2, 1), 0)
                grades[p] = 0
                qrels = {str(q): int(g) for q, g in enumerate(grades) if g}
                alpha = fusion.alpha(text[p], image[p], bool(st.has_text[p]), bool(st.has_image[p]))
                for name, s in (("concat", fused_similarity(st, int(p), (1.0, 1.0))), ("attention", attention_similarity(st, int(p), alpha))):
                    s = s.copy()
                    s[p] = -np.inf
                    top = np.argsort(-s)[:10]
                    scores[name].append(ndcg_at([str(q) for q in top], qrels, 10))
            rows.append(
                {
                    "seed": seed,
                    "concat": round(float(np.mean(scores["concat"])), 4),
                    "attention": round(float(np.mean(scores["attention"])), 4),
                    "gate": fusion.report,
                    "fit_s": round(fit_s, 2),
                }
            )
    print("| seed | concat [c; f] nDCG@10 | attention nDCG@10 | α mean ± std | gate fit s |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        gate = r["gate"]
        assert isinstance(gate, dict)
        print(f"| {r['seed']} | {r['concat']:.4f} | {r['attention']:.4f} | {gate['alpha_mean']:.3f} ± {gate['alpha_std']:.3f} | {r['fit_s']} |")
    mean_c = float(np.mean([r["concat"] for r in rows]))  # type: ignore[misc]
    mean_a = float(np.mean([r["attention"] for r in rows]))  # type: ignore[misc]
    print(f"| mean | {mean_c:.4f} | {mean_a:.4f} | | |")
    info = {"commit": git_commit(), "machine": machine_info(), "load": load_average(), "rows": rows, "mean": {"concat": mean_c, "attention": mean_a}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(info, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
