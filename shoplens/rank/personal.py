"""Personalisation: a shopper profile from the products they interacted with (most recent last)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..encode.base import l2_normalize
from ..index.state import IndexState
from .understand import stem_words

DECAY = 0.8  # each older interaction counts 0.8× the next one


@dataclass(frozen=True)
class Profile:
    text: np.ndarray | None  # decayed mean of the history's text vectors
    image: np.ndarray | None  # … and of their image vectors
    prefs: dict[tuple[str, str], float]  # (field, value) → share of the history having it
    size: int


def build_profile(st: IndexState, history: Sequence[str]) -> Profile | None:
    rows = [st.id_to_row[h] for h in history if h in st.id_to_row]
    if not rows:
        return None
    w = np.array([DECAY ** (len(rows) - 1 - i) for i in range(len(rows))], np.float32)
    text = image = None
    has_t = st.has_text[rows]
    if has_t.any():
        text = l2_normalize((np.asarray(st.text_vectors)[rows][has_t] * w[has_t, None]).sum(axis=0))
    pim = st.product_image_vectors
    has_i = st.has_image[rows]
    if pim.shape[1] and has_i.any():
        image = l2_normalize((pim[rows][has_i] * w[has_i, None]).sum(axis=0))
    counts: dict[tuple[str, str], float] = {}
    for r, weight in zip(rows, w, strict=True):
        for item in st.facet_items[r]:
            counts[item] = counts.get(item, 0.0) + float(weight)
    total = float(w.sum())
    return Profile(text, image, {k: v / total for k, v in counts.items()}, len(rows))


CONSISTENT = 0.55  # a field's value is a preference when more than half the (decayed) history has it…
MIN_LIFT = 1.3  # …and 1.3× the share the catalogue has (4 casual products say little)
# Without a trained ranker the preferences re-order results directly, so only strong ones count
# (a ranker trained on varied histories sees each preference's share and learns how far to trust it).
STRONG_SHARE, STRONG_LIFT = 0.8, 1.5
IMPLIED = 0.95  # a field the asked values decide (article type → category) counts as asked
# A preferred value that (almost) no product with an asked value has cannot be what the shopper
# wants now: an ethnic-wear history asking for "black tshirts" (no T-shirt is Ethnic) buys T-shirts,
# and the preference would only lift kurtas above them. "Almost no": under RARE of those products
# (at least RARE_SUPPORT of them) and under RARE_LIFT × the value's catalogue share, so a small
# audience (girls' T-shirts, 5 of 288) or a rare pairing (pink for men, 3 of 101) still counts.
RARE, RARE_LIFT, RARE_SUPPORT = 0.01, 0.2, 20


# Without a trained ranker (which records the fields its judged queries ask for) the fields a shopper
# can name are read from the catalogue: those whose value is written in the titles of at least
# NAMED_SHARE of the products having one (fashion-dev: gender 0.89, colour 0.85, product type 0.67,
# subcategory 0.35; usage 0.08, category, season and year ≈ 0). Measured once per index generation on
# up to NAMED_SAMPLE products spread over the catalogue (≈ 0.4 s: titles are segmented).
NAMED_SHARE, NAMED_SAMPLE = 0.2, 2_000


def named_fields(st: IndexState) -> frozenset[str] | None:
    """The facet fields whose values the product titles name (see NAMED_SHARE), cached per index
    generation; None (every field) when none does, e.g. titles in another language than the values."""
    if "named_fields" not in st._derived:
        rows: np.ndarray = np.unique(np.linspace(0, st.n - 1, min(st.n, NAMED_SAMPLE)).astype(np.int64))
        have: dict[str, int] = {}
        named: dict[str, int] = {}
        value_words: dict[str, list[str]] = {}
        for r in rows:
            items = st.facet_items[int(r)]
            if not items:
                continue
            title = set(stem_words(st.products[int(r)].title))
            for name, value in items:
                have[name] = have.get(name, 0) + 1
                words = value_words.get(value)
                if words is None:
                    words = value_words[value] = stem_words(value)
                if words and all(w in title for w in words):
                    named[name] = named.get(name, 0) + 1
        fields = frozenset(f for f, n in have.items() if named.get(f, 0) >= NAMED_SHARE * n)
        st._derived["named_fields"] = fields or None
    out: frozenset[str] | None = st._derived["named_fields"]
    return out


def _column(st: IndexState, name: str) -> tuple[np.ndarray, list[str]] | None:
    try:
        codes, labels = st.columns.facet_column(name)
    except (AttributeError, KeyError, ValueError):  # pragma: no cover - unusual catalogues
        return None
    return np.asarray(codes), list(labels)


def _prior(st: IndexState, name: str, value: str) -> float:
    """Share of the catalogue's products having this value (cached per index generation)."""
    cache: dict[str, dict[str, float]] = st._derived.setdefault("facet_priors", {})
    if name not in cache:
        col = _column(st, name)
        shares: dict[str, float] = {}
        if col is not None and len(col[0]):
            codes, labels = col
            counts = np.bincount(codes[codes >= 0], minlength=len(labels))
            shares = {lab: float(c) / len(codes) for lab, c in zip(labels, counts, strict=True)}
        cache[name] = shares
    return cache[name].get(value, 0.0)


def implied_fields(st: IndexState, asked: dict[str, str], fields: set[str]) -> set[str]:
    """Fields whose value is (almost) decided by the query's understood values: asking for
    "Heels" asks for category "Footwear" too, so a history of apparel must not push shoes down.
    Each (field, value, other field) is measured once per index generation (a pass over N)."""
    cache: dict[tuple[str, str, str], bool] = st._derived.setdefault("implied_fields", {})
    out: set[str] = set()
    for name, value in asked.items():
        for other in fields - set(asked) - out:
            key = (name, value, other)
            if key not in cache:
                cache[key] = _decides(st, name, value, other)
            if cache[key]:
                out.add(other)
    return out


def unreachable(st: IndexState, asked: dict[str, str], prefs: dict[str, tuple[str, float]]) -> set[str]:
    """Fields of ``prefs`` whose value fewer than RARE of the products having some asked value
    have (the query's own words beat the history). Cached per index generation, like
    implied_fields."""
    cache: dict[tuple[str, str, str, str], bool] = st._derived.setdefault("unreachable", {})
    out: set[str] = set()
    for other, (pv, _share) in prefs.items():
        for name, value in asked.items():
            key = (name, value, other, pv)
            if key not in cache:
                cache[key] = _rare(st, name, value, other, pv)
            if cache[key]:
                out.add(other)
                break
    return out


def _other_codes(st: IndexState, name: str, value: str, other: str) -> tuple[np.ndarray, list[str]] | None:
    """The ``other`` field's value codes (and labels) of the products whose ``name`` is ``value``
    (products without an ``other`` value left out); None when either field or the value is unknown."""
    col, oc = _column(st, name), _column(st, other)
    if col is None or oc is None or value not in col[1]:
        return None
    codes = oc[0][col[0] == col[1].index(value)]
    return codes[codes >= 0], oc[1]


def _rare(st: IndexState, name: str, value: str, other: str, ovalue: str) -> bool:
    found = _other_codes(st, name, value, other)
    if found is None or ovalue not in found[1] or len(found[0]) < RARE_SUPPORT:
        return False
    codes, labels = found
    share = int((codes == labels.index(ovalue)).sum()) / len(codes)
    return share < RARE and share < RARE_LIFT * _prior(st, other, ovalue)


def _decides(st: IndexState, name: str, value: str, other: str) -> bool:
    found = _other_codes(st, name, value, other)
    return found is not None and bool(len(found[0])) and int(np.bincount(found[0]).max()) >= IMPLIED * len(found[0])


def open_preferences(
    st: IndexState,
    profile: Profile,
    asked: dict[str, str],
    strong: bool = False,
    fields: Collection[str] | None = None,
) -> dict[str, tuple[str, float]]:
    """The shopper's consistent values on the fields the query leaves open: the query says "red
    shoes", the history says "Women" — history decides audience, never colour or type. A value
    counts when most of the history has it (CONSISTENT, recent products weighing more) and the
    catalogue as a whole does not (MIN_LIFT × its catalogue share); ``strong``: STRONG_SHARE and
    STRONG_LIFT instead, for re-ordering without a trained ranker. Shoppers' histories are
    mixed (a gift, a partner's purchase): three of four products for women still say "Women".
    ``fields``: only these may hold a preference (those shoppers ask for: one product listed in 2013
    says nothing about the year a shopper wants). A preference is dropped where the asked values
    decide its field (implied_fields) or (almost) never go with it (unreachable)."""
    min_share, min_lift = (STRONG_SHARE, STRONG_LIFT) if strong else (CONSISTENT, MIN_LIFT)
    best: dict[str, tuple[str, float]] = {}
    for (name, value), share in profile.prefs.items():
        if fields is not None and name not in fields:
            continue
        if name not in asked and share > best.get(name, ("", 0.0))[1]:
            best[name] = (value, share)
    prefs = {
        f: (v, share) for f, (v, share) in best.items() if share >= min_share and share >= min_lift * _prior(st, f, v)
    }
    for f in implied_fields(st, asked, set(prefs)) | unreachable(st, asked, prefs):
        prefs.pop(f, None)
    return prefs


def preference_match(
    st: IndexState,
    profile: Profile | None,
    asked: dict[str, str],
    rows: np.ndarray,
    compatible: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    strong: bool = False,
    fields: Collection[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate: how many of the shopper's open preferences it has, and how many it contradicts
    (a different value on the field, less the share by which the judgments found that value as good:
    ``compatible``, see rank/train.py); a field the product lacks counts as neither. ``strong``,
    ``fields``: see open_preferences."""
    match = np.zeros(len(rows), np.float32)
    clash = np.zeros(len(rows), np.float32)
    if profile is None:
        return match, clash
    prefs = open_preferences(st, profile, asked, strong, fields)
    if not prefs:
        return match, clash
    for i, r in enumerate(rows):
        items = dict(st.facet_items[int(r)])
        for f, (v, share) in prefs.items():
            have = items.get(f)
            if have == v:
                match[i] += share
            elif have is not None:
                ok = float(compatible.get(f, {}).get(v, {}).get(have, 0.0)) if compatible else 0.0
                match[i] += share * ok
                clash[i] += share * (1.0 - ok)
    return match, clash


def profile_features(
    st: IndexState,
    profile: Profile | None,
    rows: np.ndarray,
    asked: dict[str, str] | None = None,
    compatible: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    pref_fields: Collection[str] | None = None,
) -> dict[str, np.ndarray]:
    n = len(rows)
    if profile is None:
        zero = np.zeros(n, np.float32)
        return {"hist_text": zero, "hist_image": zero, "hist_attr": zero, "hist_pref": zero, "hist_clash": zero}
    ht = (np.asarray(st.text_vectors)[rows] @ profile.text) if profile.text is not None else np.zeros(n, np.float32)
    pim = st.product_image_vectors
    hi = (pim[rows] @ profile.image) if profile.image is not None else np.zeros(n, np.float32)
    ha = np.array(
        [np.mean([profile.prefs.get(item, 0.0) for item in st.facet_items[r]]) if st.facet_items[r] else 0.0 for r in rows],
        np.float32,
    )
    pref, clash = preference_match(st, profile, asked or {}, rows, compatible, fields=pref_fields)
    return {"hist_text": ht.astype(np.float32), "hist_image": hi.astype(np.float32), "hist_attr": ha, "hist_pref": pref, "hist_clash": clash}
