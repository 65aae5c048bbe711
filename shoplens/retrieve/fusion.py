"""Rank fusion as pure functions over ranked lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Ranked = Sequence[tuple[int, float]]  # (doc, score), best first


def reciprocal_rank_fusion(
    runs: Mapping[str, Ranked], weights: Mapping[str, float] | None = None, k: float = 60.0
) -> list[tuple[int, float, dict[str, int]]]:
    """Weighted RRF (Cormack, Clarke & Büttcher, SIGIR 2009): ``Σ_r w_r / (k + rank_r(d))``.

    Returns ``(doc, fused score, {run: 1-based rank})`` sorted by fused score, ties broken by doc.
    Runs with weight 0 still report their ranks but add nothing to the score.
    """
    if k < 0:
        raise ValueError("rrf k must be >= 0")
    fused: dict[int, float] = {}
    ranks: dict[int, dict[str, int]] = {}
    for name, run in runs.items():
        w = 1.0 if weights is None else float(weights.get(name, 1.0))
        for rank, (doc, _score) in enumerate(run, start=1):
            fused[doc] = fused.get(doc, 0.0) + w / (k + rank)
            ranks.setdefault(doc, {})[name] = rank
    order = sorted(fused, key=lambda d: (-fused[d], d))
    return [(d, fused[d], ranks[d]) for d in order]


def min_max(scores: Sequence[float]) -> list[float]:
    """Scale to [0, 1]; a constant list maps to all 1.0 (no division by zero)."""
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    if hi - lo <= 1e-12:
        return [1.0] * len(scores)
    return [(s - lo) / (hi - lo) for s in scores]
