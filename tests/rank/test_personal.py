"""Shopper profiles from short or mixed histories, and the histories the ranker is trained on."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from shoplens import Engine
from shoplens.rank.personal import build_profile, named_fields, open_preferences
from shoplens.rank.train import HISTORY_SIZE, history_variant, preference_fields
from shoplens.types import Query

from .test_rank import shop  # noqa: F401  (fixture)


def _ids(engine: Engine, gender: str, kind: str | None = None) -> list[str]:
    return [
        p.id
        for p in engine.products()
        if p.attributes["gender"] == gender and (kind is None or p.attributes["article_type"] == kind)
    ]


def test_a_mostly_consistent_history_still_states_the_audience(shop: Engine) -> None:  # noqa: F811
    st = shop.state
    women, men = _ids(shop, "Women", "Bag"), _ids(shop, "Men", "Dress")
    # Four bags for women, then (most recent) a dress for men: a gift, say.
    mixed = build_profile(st, women[:4] + men[:1])
    assert mixed is not None
    prefs = open_preferences(st, mixed, {"colour": "Red", "article_type": "Shoes"})
    assert prefs["gender"][0] == "Women" and 0.55 <= prefs["gender"][1] < 1.0
    # Without a trained ranker only strong preferences re-order results: this one is not.
    assert "gender" not in open_preferences(st, mixed, {"colour": "Red"}, strong=True)
    clean = build_profile(st, women[:4])
    assert clean is not None
    value, share = open_preferences(st, clean, {"colour": "Red"}, strong=True)["gender"]
    assert value == "Women" and share == pytest.approx(1.0)
    # Half and half says nothing about the audience.
    split = build_profile(st, women[:2] + men[:2])
    assert split is not None
    assert "gender" not in open_preferences(st, split, {"colour": "Red", "article_type": "Shoes"})
    # A field the query asks is never taken from the history.
    assert "gender" not in open_preferences(st, mixed, {"gender": "Men"})


def test_training_histories_clean_and_realistic(shop: Engine) -> None:  # noqa: F811
    st = shop.state
    qu = shop.reranker.understanding(st)
    q = Query("women red shoes", k=20)
    understood = qu.understand(q.text)
    rng = np.random.default_rng(0)
    clean = [history_variant(st, q, understood, rng) for _ in range(20)]
    assert all(h is not None and len(h.history) == HISTORY_SIZE for h in clean)

    def moved_value_share(h: Query) -> float:
        # The history replaces one of the query's values; the words left say which.
        items = [dict(st.facet_items[st.id_to_row[i]]) for i in h.history]
        asked = {"women": ("gender", "Women"), "red": ("colour", "Red"), "shoes": ("article_type", "Shoes")}
        (field, value), = [fv for w, fv in asked.items() if w not in h.text.split()]
        return float(np.mean([it.get(field) == value for it in items]))

    assert all(moved_value_share(h) == 1.0 for h in clean if h is not None)
    realistic = [history_variant(st, q, understood, rng, realistic=True) for _ in range(200)]
    assert all(h is not None for h in realistic)
    sizes = {len(h.history) for h in realistic if h is not None}
    assert sizes == set(range(1, HISTORY_SIZE + 3))
    shares = [moved_value_share(h) for h in realistic if h is not None]
    mixed = [s for s in shares if s < 1.0]
    # Some histories hold one product without the value, never more than one.
    assert mixed and all(s >= 2 / 3 - 1e-9 for s in mixed)
    assert all(len(set(h.history)) == len(h.history) for h in realistic if h is not None)


def test_preferences_only_on_the_fields_shoppers_ask_for(shop: Engine) -> None:  # noqa: F811
    st = shop.state
    # One product: every field of it is "a preference" of share 1 (its colour, its price band...).
    one = build_profile(st, _ids(shop, "Women", "Bag")[:1])
    assert one is not None
    open_fields = open_preferences(st, one, {"article_type": "Shoes"})
    assert {"gender", "colour"} <= set(open_fields)
    # Judged queries asking only for audience and product type: colour is nobody's preference.
    queries = [(f"q{n}", Query(text)) for n, text in enumerate(["women shoes", "men bag", "women dress", "men shirt"])]
    qrels = {qid: {"p0": 1} for qid, _q in queries}
    fields = preference_fields(shop.reranker.understanding(st), queries, qrels)
    assert fields == ["article_type", "gender"]
    assert set(open_preferences(st, one, {"article_type": "Shoes"}, fields=fields)) == {"gender"}
    # Unjudged queries count for nothing.
    assert preference_fields(shop.reranker.understanding(st), queries, {}) == []


def test_a_preference_no_product_of_the_asked_kind_has_is_dropped(tmp_path, fake_config) -> None:  # type: ignore[no-untyped-def]
    # Dresses here are for women (and two for girls); shirts for men and women.
    path = tmp_path / "shop.csv"
    rows = [("Women", "Dress")] * 29 + [("Girls", "Dress")] * 2 + [("Men", "Shirt")] * 20 + [("Women", "Shirt")] * 20
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "gender", "colour", "article_type"])
        for n, (g, t) in enumerate(rows):
            w.writerow([f"p{n}", f"{g} {t} style {n}", g, ["Red", "Blue", "Green"][n % 3], t])
    engine = Engine(tmp_path / "idx", fake_config)
    engine.add_catalog(path)
    st = engine.state
    men = build_profile(st, _ids(engine, "Men", "Shirt")[:4])
    assert men is not None
    # A man's history asking for dresses: no dress is for men, so the history says nothing on
    # audience (it would only lift men's shirts above the dresses asked for)…
    assert "gender" not in open_preferences(st, men, {"article_type": "Dress"})
    # …while for shirts, which men's products are, it does.
    assert open_preferences(st, men, {"article_type": "Shirt"})["gender"][0] == "Men"
    # A small audience of the asked kind still counts (two girls' dresses of 31).
    girl = build_profile(st, _ids(engine, "Girls", "Dress"))
    assert girl is not None
    assert open_preferences(st, girl, {"colour": "Red", "article_type": "Dress"})["gender"][0] == "Girls"


def test_without_a_ranker_preferences_are_on_the_fields_titles_name(tmp_path, fake_config) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "shop.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "gender", "colour", "article_type", "season"])
        for n in range(40):
            g, c, t = ["Women", "Men"][n % 2], ["Red", "Blue"][n // 2 % 2], ["Dress", "Shirt"][n // 4 % 2]
            w.writerow([f"p{n}", f"{g} {c} {t} no. {n}", g, c, t, ["Summer", "Winter", "Fall", "Spring"][n // 8 % 4]])
    engine = Engine(tmp_path / "idx", fake_config)
    engine.add_catalog(path)
    st = engine.state
    # The titles name audience, colour and type, never the season.
    assert named_fields(st) == {"gender", "colour", "article_type"}
    one = build_profile(st, ["p0"])
    assert one is not None
    assert set(open_preferences(st, one, {"article_type": "Shirt"})) >= {"gender", "season"}
    assert set(open_preferences(st, one, {"article_type": "Shirt"}, fields=named_fields(st))) == {"gender", "colour"}
    # Search without a trained ranker says so too: the history's season is not a preference.
    res = engine.search("shirt", k=5, history=["p0"])
    assert set(res.understood["history_prefers"]) == {"gender", "colour"}
