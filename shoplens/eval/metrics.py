"""Ranking metrics as pure functions over one query's ranked ids and graded judgments."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Qrels = Mapping[str, int]  # docid → grade (0 = not relevant)


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain with linear gain, as trec_eval's ndcg_cut: Σ g_i / log2(i + 1)."""
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at(ranked: Sequence[str], qrels: Qrels, k: int = 10) -> float:
    """nDCG@k (Järvelin & Kekäläinen, 2002); 0.0 when the query has no relevant document."""
    gains = [float(max(qrels.get(d, 0), 0)) for d in ranked[:k]]
    ideal = sorted((float(g) for g in qrels.values() if g > 0), reverse=True)[:k]
    best = dcg(ideal)
    return dcg(gains) / best if best > 0 else 0.0


def mrr_at(ranked: Sequence[str], qrels: Qrels, k: int = 10) -> float:
    """Reciprocal rank of the first relevant (grade > 0) document within the top k, else 0."""
    for i, d in enumerate(ranked[:k], start=1):
        if qrels.get(d, 0) > 0:
            return 1.0 / i
    return 0.0


def recall_at(ranked: Sequence[str], qrels: Qrels, k: int = 100) -> float:
    """Share of the relevant documents found in the top k; 0.0 when none is relevant."""
    relevant = {d for d, g in qrels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def precision_at(ranked: Sequence[str], qrels: Qrels, k: int = 1) -> float:
    """Share of the top k that is relevant (the denominator is k, as in trec_eval)."""
    if k <= 0:
        return 0.0
    return sum(1 for d in ranked[:k] if qrels.get(d, 0) > 0) / k


METRICS = {
    "ndcg@10": lambda r, q: ndcg_at(r, q, 10),
    "mrr@10": lambda r, q: mrr_at(r, q, 10),
    "recall@100": lambda r, q: recall_at(r, q, 100),
    "p@1": lambda r, q: precision_at(r, q, 1),
}


def evaluate(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Qrels]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean of each metric over the judged queries (a judged query missing from the run scores 0).

    Queries with no relevant document are left out, as trec_eval does. Returns (means, per query).
    """
    per_query: dict[str, dict[str, float]] = {}
    for qid, judged in qrels.items():
        if not any(g > 0 for g in judged.values()):
            continue
        ranked = run.get(qid, [])
        per_query[qid] = {name: fn(ranked, judged) for name, fn in METRICS.items()}
    n = len(per_query)
    means = {name: (sum(m[name] for m in per_query.values()) / n if n else 0.0) for name in METRICS}
    return means, per_query
