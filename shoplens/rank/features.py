"""Features of (query, candidate product) pairs for learning-to-rank: a fixed, named list."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..index.state import IndexState
from .behaviour import Behaviour
from .personal import Profile, profile_features
from .understand import Understood

FEATURES = (
    "rrf",
    "bm25",
    "bm25_rank",
    "text_cos",
    "text_rank",
    "xmodal_cos",
    "image_cos",
    "photo_cos",
    "coverage",
    "attr_match",
    "attr_mismatch",
    "attr_match_conf",
    "attr_missing",
    "proto_gap_sum",
    "proto_gap_max",
    "price_log",
    "price_in_range",
    "has_text",
    "has_image",
    "popularity",
    "ctr",
    "conversion",
    "hist_text",
    "hist_image",
    "hist_attr",
    "hist_pref",
    "hist_clash",
)


@dataclass(frozen=True)
class QueryContext:
    """Everything about the query that features need, computed once per query."""

    text_vector: np.ndarray | None
    coverage: float
    understood: Understood | None
    profile: Profile | None
    depth: int


def candidate_features(
    st: IndexState,
    rows: np.ndarray,
    fused: dict[int, float],
    runs: dict[str, list[tuple[int, float]]],
    ctx: QueryContext,
    behaviour: Behaviour,
) -> np.ndarray:
    """``len(rows) × len(FEATURES)`` float32, columns in ``FEATURES`` order."""
    n = len(rows)
    missing_rank = float(np.log1p(ctx.depth + 1))
    cols: dict[str, np.ndarray] = {}
    cols["rrf"] = np.array([fused.get(int(r), 0.0) for r in rows], np.float32)
    for name, score_col, rank_col in (("bm25", "bm25", "bm25_rank"), ("text", None, "text_rank")):
        run = runs.get(name, [])
        score = {d: s for d, s in run}
        rank = {d: i for i, (d, _s) in enumerate(run, start=1)}
        if score_col:
            cols[score_col] = np.array([score.get(int(r), 0.0) for r in rows], np.float32)
        cols[rank_col] = np.array([np.log1p(rank[int(r)]) if int(r) in rank else missing_rank for r in rows], np.float32)
    if ctx.text_vector is not None:
        cols["text_cos"] = (np.asarray(st.text_vectors)[rows] @ ctx.text_vector) * st.has_text[rows]
        proj = st.image_in_text
        cols["xmodal_cos"] = (proj[rows] @ ctx.text_vector) if proj is not None else np.zeros(n, np.float32)
    for name, col in (("image", "image_cos"), ("photo", "photo_cos")):
        score = dict(runs.get(name, []))
        cols[col] = np.array([score.get(int(r), 0.0) for r in rows], np.float32)
    cols["coverage"] = np.full(n, ctx.coverage, np.float32)
    cols.update(_attribute_features(st, rows, ctx.understood))
    prices = np.array([st.products[int(r)].price if st.products[int(r)].price is not None else np.nan for r in rows], np.float64)
    cols["price_log"] = np.nan_to_num(np.log1p(np.maximum(prices, 0)), nan=-1.0).astype(np.float32)
    cols["price_in_range"] = _price_in_range(prices, ctx.understood)
    cols["has_text"] = st.has_text[rows].astype(np.float32)
    cols["has_image"] = st.has_image[rows].astype(np.float32)
    cols.update(behaviour.features(rows))
    asked = {f: v for f, (v, _c) in ctx.understood.attributes.items()} if ctx.understood is not None else {}
    cols.update(profile_features(st, ctx.profile, rows, asked))
    return np.column_stack([np.asarray(cols.get(f, np.zeros(n)), np.float32) for f in FEATURES])


def _attribute_features(st: IndexState, rows: np.ndarray, u: Understood | None) -> dict[str, np.ndarray]:
    n = len(rows)
    match = np.zeros(n, np.float32)
    mismatch = np.zeros(n, np.float32)
    conf = np.zeros(n, np.float32)
    missing = np.zeros(n, np.float32)
    if u is not None and u.attributes:
        for i, r in enumerate(rows):
            items = dict(st.facet_items[int(r)])
            for field, (value, c) in u.attributes.items():
                have = items.get(field)
                if have is None:
                    missing[i] += 1
                elif have.casefold() == value.casefold():
                    match[i] += 1
                    conf[i] += c
                else:
                    mismatch[i] += c
    return {"attr_match": match, "attr_mismatch": mismatch, "attr_match_conf": conf, "attr_missing": missing}


def _price_in_range(prices: np.ndarray, u: Understood | None) -> np.ndarray:
    out = np.full(len(prices), 0.5, np.float32)  # unknown
    if u is None or (u.price_min is None and u.price_max is None):
        return out
    lo = u.price_min if u.price_min is not None else -np.inf
    hi = u.price_max if u.price_max is not None else np.inf
    known = ~np.isnan(prices)
    out[known] = ((prices[known] >= lo) & (prices[known] <= hi)).astype(np.float32)
    return out
