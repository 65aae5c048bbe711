"""Features of (query, candidate product) pairs for learning-to-rank: a fixed, named list."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..index.state import IndexState
from .behaviour import Behaviour
from .personal import Profile, _prior, profile_features
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
    "attr_info_match",
    "attr_info_mismatch",
    "proto_gap_sum",
    "proto_gap_max",
    "price_log",
    "price_in_range",
    "has_text",
    "has_image",
    "age_log",
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
    # Learned from the judgments (rank/train.py value_compatibility): field → asked value → other
    # values that judges graded as fully as the asked one ("Unisex" for "Women") → that share.
    compatible: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)
    # Fields a history may state a preference on (rank/train.py preference_fields: the ones the judged
    # queries ask for); None: every field.
    pref_fields: frozenset[str] | None = None


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
    cols.update(_attribute_features(st, rows, ctx.understood, ctx.compatible))
    prices = np.array([st.products[int(r)].price if st.products[int(r)].price is not None else np.nan for r in rows], np.float64)
    cols["price_log"] = np.nan_to_num(np.log1p(np.maximum(prices, 0)), nan=-1.0).astype(np.float32)
    cols["price_in_range"] = _price_in_range(prices, ctx.understood)
    cols["has_text"] = st.has_text[rows].astype(np.float32)
    cols["has_image"] = st.has_image[rows].astype(np.float32)
    cols["age_log"] = listing_age_log(st)[rows]
    cols.update(behaviour.features(rows))
    asked = {f: v for f, (v, _c) in ctx.understood.attributes.items()} if ctx.understood is not None else {}
    cols.update(profile_features(st, ctx.profile, rows, asked, ctx.compatible, ctx.pref_fields))
    return np.column_stack([np.asarray(cols.get(f, np.zeros(n)), np.float32) for f in FEATURES])


def listing_age_log(st: IndexState) -> np.ndarray:
    """Freshness, per product: log(1 + days it was listed before the newest product of the index)
    (0 for all when the index has no listing dates, or listed everything at once). Relative to the
    newest listing, not to the clock, so a ranker trained today reads an index the same way later."""
    age = st._derived.get("age_log")
    if age is None:
        added = st.added
        if added is None or not len(added):
            age = np.zeros(st.n, np.float32)
        else:
            days = (float(np.max(added)) - np.asarray(added, np.float64)) / 86_400.0
            age = np.log1p(np.maximum(days, 0.0)).astype(np.float32)
        age.setflags(write=False)
        st._derived["age_log"] = age
    return age


def _attribute_features(
    st: IndexState, rows: np.ndarray, u: Understood | None, compatible: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None
) -> dict[str, np.ndarray]:
    """Per candidate: understood values it has (a value the judgments found as good counts by that
    share), values it contradicts (weighted by confidence), and fields it lacks."""
    n = len(rows)
    match = np.zeros(n, np.float32)
    mismatch = np.zeros(n, np.float32)
    conf = np.zeros(n, np.float32)
    missing = np.zeros(n, np.float32)
    info_match = np.zeros(n, np.float32)
    info_mismatch = np.zeros(n, np.float32)
    if u is not None and u.attributes:
        # Information of each asked value, -log(share of the catalogue having it), times the
        # confidence it was understood with: matching a rare product type says more than matching
        # a common colour or audience. Values understood through WordNet, a dictionary or the
        # embeddings count too (until session 6 only the catalogue's own words did): otherwise a
        # paraphrase's product type ("tee shirt" → Tshirts at 0.9) weighed less than its colour,
        # and red tunics outranked the other tee shirts (benchmarks/RESULTS-rank.md, session 6).
        info = {f: float(-np.log(max(_prior(st, f, v), 1.0 / max(st.n, 1)))) for f, (v, _c) in u.attributes.items()}
        for i, r in enumerate(rows):
            items = dict(st.facet_items[int(r)])
            for field, (value, c) in u.attributes.items():
                have = items.get(field)
                if have is None:
                    missing[i] += 1
                elif have.casefold() == value.casefold():
                    match[i] += 1
                    conf[i] += c
                    info_match[i] += c * info[field]
                else:
                    share = compatibility(compatible, field, value, have)
                    match[i] += share
                    conf[i] += c * share
                    mismatch[i] += c * (1.0 - share)
                    info_match[i] += c * share * info[field]
                    info_mismatch[i] += c * (1.0 - share) * info[field]
    return {
        "attr_match": match,
        "attr_mismatch": mismatch,
        "attr_match_conf": conf,
        "attr_missing": missing,
        "attr_info_match": info_match,
        "attr_info_mismatch": info_mismatch,
    }


def compatibility(compatible: Mapping[str, Mapping[str, Mapping[str, float]]] | None, field: str, asked: str, have: str) -> float:
    """How fully relevant the judgments found a product with ``have`` where ``asked`` was asked (0 unknown)."""
    if not compatible:
        return 0.0
    return float(compatible.get(field, {}).get(asked, {}).get(have, 0.0))


def _price_in_range(prices: np.ndarray, u: Understood | None) -> np.ndarray:
    out = np.full(len(prices), 0.5, np.float32)  # unknown
    if u is None or (u.price_min is None and u.price_max is None):
        return out
    lo = u.price_min if u.price_min is not None else -np.inf
    hi = u.price_max if u.price_max is not None else np.inf
    known = ~np.isnan(prices)
    out[known] = ((prices[known] >= lo) & (prices[known] <= hi)).astype(np.float32)
    return out
