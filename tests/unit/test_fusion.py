"""Rank fusion (shoplens.retrieve.fusion): weighted RRF and min-max scaling against hand-computed values."""

from __future__ import annotations

import pytest

from shoplens.retrieve.fusion import min_max, reciprocal_rank_fusion

# Two retrievers: bm25 ranks 1 then 2; text ranks 2 then 3. The raw scores do not matter to RRF.
RUNS = {"bm25": [(1, 9.0), (2, 8.0)], "text": [(2, 0.9), (3, 0.8)]}


def test_rrf_unweighted_k60() -> None:
    # doc 1: 1/(60+1)             = 0.0163934
    # doc 2: 1/(60+2) + 1/(60+1)  = 0.0161290 + 0.0163934 = 0.0325225
    # doc 3: 1/(60+2)             = 0.0161290
    fused = reciprocal_rank_fusion(RUNS)
    assert [d for d, _, _ in fused] == [2, 1, 3]
    scores = {d: s for d, s, _ in fused}
    assert scores[1] == pytest.approx(1 / 61)
    assert scores[2] == pytest.approx(1 / 62 + 1 / 61)
    assert scores[2] == pytest.approx(0.0325225, abs=1e-7)
    assert scores[3] == pytest.approx(1 / 62)
    ranks = {d: r for d, _, r in fused}
    assert ranks == {1: {"bm25": 1}, 2: {"bm25": 2, "text": 1}, 3: {"text": 2}}


def test_rrf_weights() -> None:
    # bm25 weight 2, text weight 0.5:
    # doc 1: 2/61                 = 0.0327869
    # doc 2: 2/62 + 0.5/61        = 0.0322581 + 0.0081967 = 0.0404548
    # doc 3: 0.5/62               = 0.0080645
    fused = reciprocal_rank_fusion(RUNS, weights={"bm25": 2.0, "text": 0.5})
    assert [(d, round(s, 7)) for d, s, _ in fused] == [(2, 0.0404548), (1, 0.0327869), (3, 0.0080645)]


def test_rrf_missing_weight_defaults_to_one() -> None:
    # text is not named: weight 1. doc 1: 3/61 = 0.04918; doc 2: 3/62 + 1/61 = 0.06478; doc 3: 1/62
    fused = reciprocal_rank_fusion(RUNS, weights={"bm25": 3.0})
    scores = {d: s for d, s, _ in fused}
    assert scores == pytest.approx({1: 3 / 61, 2: 3 / 62 + 1 / 61, 3: 1 / 62})


def test_rrf_small_k() -> None:
    # k = 0: doc 1: 1/1 = 1; doc 2: 1/2 + 1/1 = 1.5; doc 3: 1/2 = 0.5
    fused = reciprocal_rank_fusion(RUNS, k=0)
    assert [(d, s) for d, s, _ in fused] == [(2, 1.5), (1, 1.0), (3, 0.5)]


def test_rrf_ties_broken_by_doc_id() -> None:
    # every doc has exactly 1/61 (rank 1 in one run): the doc id decides, ascending
    runs = {"a": [(5, 1.0)], "b": [(3, 1.0)], "c": [(9, 1.0)], "d": [(4, 0.1)]}
    fused = reciprocal_rank_fusion(runs)
    assert [d for d, _, _ in fused] == [3, 4, 5, 9]
    assert all(s == pytest.approx(1 / 61) for _, s, _ in fused)


def test_rrf_weight_zero_run_reports_ranks_but_adds_nothing() -> None:
    runs = {"bm25": [(1, 2.0), (2, 1.0)], "image": [(2, 0.9), (7, 0.5)]}
    fused = reciprocal_rank_fusion(runs, weights={"image": 0.0})
    # doc 1: 1/61; doc 2: 1/62 + 0; doc 7: 0 — but 7 is still listed, with its image rank
    assert [(d, s, r) for d, s, r in fused] == [
        (1, pytest.approx(1 / 61), {"bm25": 1}),
        (2, pytest.approx(1 / 62), {"bm25": 2, "image": 1}),
        (7, 0.0, {"image": 2}),
    ]


def test_rrf_empty_input_and_negative_k() -> None:
    assert reciprocal_rank_fusion({}) == []
    assert reciprocal_rank_fusion({"bm25": []}) == []
    with pytest.raises(ValueError, match="k must be >= 0"):
        reciprocal_rank_fusion(RUNS, k=-1)


def test_rrf_is_pure() -> None:
    runs = {"bm25": [(1, 9.0)], "text": [(1, 0.5)]}
    weights = {"bm25": 1.0}
    first = reciprocal_rank_fusion(runs, weights)
    assert reciprocal_rank_fusion(runs, weights) == first
    assert runs == {"bm25": [(1, 9.0)], "text": [(1, 0.5)]} and weights == {"bm25": 1.0}


def test_min_max_scales_to_unit_interval() -> None:
    # lo = 1, hi = 5: (s - 1) / 4
    assert min_max([1.0, 5.0, 2.0, 3.0]) == pytest.approx([0.0, 1.0, 0.25, 0.5])
    # negative values: lo = -2, hi = 2 → (s + 2) / 4
    assert min_max([-2.0, 0.0, 2.0]) == pytest.approx([0.0, 0.5, 1.0])


def test_min_max_guards_constant_and_empty_lists() -> None:
    assert min_max([]) == []
    assert min_max([7.0]) == [1.0]
    assert min_max([0.3, 0.3, 0.3]) == [1.0, 1.0, 1.0]
    assert min_max([1.0, 1.0 + 1e-13]) == [1.0, 1.0]  # a spread below 1e-12 counts as constant
