"""Values the judgments grade as fully relevant as the asked one ("Unisex" for "Women"), learned
from a shop's own judged queries and used by the attribute and history features."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from shoplens.rank.features import _attribute_features, compatibility
from shoplens.rank.train import value_compatibility
from shoplens.rank.understand import Understood
from shoplens.types import Query


class FakeUnderstanding:
    def understand(self, text: str) -> Understood:
        g, c = text.split()
        return Understood({"gender": (g.title(), 1.0), "colour": (c.title(), 1.0)})


def fake_state(products: dict[str, dict[str, str]]) -> Any:
    ids = list(products)
    return SimpleNamespace(
        id_to_row={p: i for i, p in enumerate(ids)}, facet_items=[list(products[p].items()) for p in ids], n=len(ids), _derived={}
    )


def test_value_compatibility_learns_from_the_top_grades() -> None:
    products = {
        "w1": {"gender": "Women", "colour": "Red"},
        "u1": {"gender": "Unisex", "colour": "Red"},
        "u2": {"gender": "Unisex", "colour": "Red"},
        "u3": {"gender": "Unisex", "colour": "Red"},
        "m1": {"gender": "Men", "colour": "Red"},
        "m2": {"gender": "Men", "colour": "Red"},
        "m3": {"gender": "Men", "colour": "Red"},
        "u4": {"gender": "Unisex", "colour": "Blue"},  # another colour: says nothing about gender
    }
    qrels = {
        "q1": {"w1": 2, "u1": 2, "u2": 2, "u3": 2, "m1": 1, "m2": 1, "m3": 1, "u4": 1},
        "q2": {"m1": 2, "m2": 2, "m3": 2, "u1": 2, "u2": 2, "u3": 2},
    }
    queries = [("q1", Query("women red")), ("q2", Query("men red")), ("q3", Query("men blue"))]
    got = value_compatibility(fake_state(products), FakeUnderstanding(), queries, qrels)  # type: ignore[arg-type]
    assert got == {"gender": {"Women": {"Unisex": 1.0}, "Men": {"Unisex": 1.0}}}
    assert compatibility(got, "gender", "Women", "Unisex") == 1.0
    assert compatibility(got, "gender", "Women", "Men") == 0.0
    assert compatibility({}, "gender", "Women", "Unisex") == 0.0


def test_compatible_value_counts_as_a_match() -> None:
    st = fake_state({"a": {"gender": "Women"}, "b": {"gender": "Unisex"}, "c": {"gender": "Men"}})
    u = Understood({"gender": ("Women", 0.8)})
    rows = np.arange(3)
    plain = _attribute_features(st, rows, u)
    assert list(plain["attr_match"]) == [1, 0, 0] and list(plain["attr_mismatch"]) == [0, 0.8, 0.8]
    learned = _attribute_features(st, rows, u, {"gender": {"Women": {"Unisex": 1.0}}})
    assert list(learned["attr_match"]) == [1, 1, 0]
    assert np.allclose(learned["attr_mismatch"], [0, 0, 0.8])
    # Information-weighted: -log(share of the catalogue with the value) (no columns here: 1/n),
    # times the confidence the value was understood with (0.8 here: a paraphrase's reading counts too).
    assert np.allclose(learned["attr_info_match"], [0.8 * np.log(3), 0.8 * np.log(3), 0])
    assert np.allclose(learned["attr_info_mismatch"], [0, 0, 0.8 * np.log(3)])
    sure = _attribute_features(st, rows, Understood({"gender": ("Women", 1.0)}), {"gender": {"Women": {"Unisex": 1.0}}})
    assert np.allclose(sure["attr_info_match"], [np.log(3), np.log(3), 0])
    assert np.allclose(sure["attr_info_mismatch"], [0, 0, np.log(3)])
