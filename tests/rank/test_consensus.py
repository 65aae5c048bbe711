"""Candidate-consensus features: pseudo-relevance feedback over attribute values."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from shoplens.rank.features import CONSENSUS_K, CONSENSUS_RRF, consensus_features


def fake_state(products: list[dict[str, str]]) -> Any:
    return SimpleNamespace(facet_items=[list(p.items()) for p in products], n=len(products), _derived={})


PRODUCTS = [
    {"article_type": "Dress", "gender": "Women", "year": "2012", "shop": "A"},
    {"article_type": "Dress", "gender": "Women", "year": "2013", "shop": "A"},
    {"article_type": "Shirt", "gender": "Women", "year": "2012", "shop": "A"},
    {"article_type": "Dress", "gender": "Men", "year": "2012", "shop": "A"},
    {"article_type": "Shirt", "gender": "Men", "year": "2013", "shop": "A"},
    {"article_type": "Bag", "gender": "Men", "year": "2012", "shop": "A"},
    {"gender": "Women", "year": "2012", "shop": "A"},  # no product type
    {"article_type": "Dress", "gender": "Women", "year": "2013", "shop": "A"},
]


def test_head_votes_for_values_weighted_by_rank_and_information() -> None:
    st = fake_state(PRODUCTS)
    w = 1.0 / (CONSENSUS_RRF + np.arange(1, 4))
    w = w / w.sum()
    dress, shirt = w[0] + w[1], w[2]  # the head: two dresses, then a shirt, all for women
    got = consensus_features(st, np.array([3, 4, 5, 6]), np.array([0, 1, 2]))
    # Two fields vote (year is numbers, shop has a single value): article type and gender.
    share_type = np.array([dress, shirt, 0.0, 0.0])
    share_gender = np.array([0.0, 0.0, 0.0, 1.0])
    assert np.allclose(got["cons_mean"], (share_type + share_gender) / 2, atol=1e-6)
    info_dress, info_shirt, info_women = -np.log(4 / 8), -np.log(2 / 8), -np.log(5 / 8)
    assert np.allclose(got["cons_info"], [dress * info_dress, shirt * info_shirt, 0.0, info_women], atol=1e-6)
    # Agreeing on a rarer value counts for more (shirts: 2 of 8 products, dresses: 4 of 8).
    assert got["cons_info"][1] / got["cons_mean"][1] > got["cons_info"][0] / got["cons_mean"][0]


def test_no_head_no_consensus() -> None:
    st = fake_state(PRODUCTS)
    got = consensus_features(st, np.array([0, 1]), np.array([], np.int64))
    assert not got["cons_info"].any() and not got["cons_mean"].any()


def test_only_the_first_rows_of_the_head_vote() -> None:
    products = [{"article_type": "Dress"}] * CONSENSUS_K + [{"article_type": "Shirt"}] * 5
    st = fake_state(products)
    got = consensus_features(st, np.array([0, CONSENSUS_K]), np.arange(len(products)))
    assert np.allclose(got["cons_mean"], [1.0, 0.0])
