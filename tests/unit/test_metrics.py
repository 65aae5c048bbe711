"""Ranking metrics (shoplens.eval.metrics) against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from shoplens.eval.metrics import dcg, evaluate, mrr_at, ndcg_at, precision_at, recall_at

# Graded judgments used throughout: a is highly relevant (2), b relevant (1), c judged not relevant.
QRELS = {"a": 2, "b": 1, "c": 0}
LOG2_3 = math.log2(3)  # ≈ 1.5849625, the discount at rank 2


# --- dcg ---------------------------------------------------------------------------------------


def test_dcg_uses_linear_gain_and_log2_rank_plus_one_discount() -> None:
    # ranks 1, 2, 3 are discounted by log2(2)=1, log2(3), log2(4)=2
    assert dcg([3.0, 2.0, 1.0]) == pytest.approx(3 / 1 + 2 / LOG2_3 + 1 / 2)  # ≈ 4.7619
    assert dcg([]) == 0.0


# --- nDCG --------------------------------------------------------------------------------------


def test_ndcg_graded_hand_computed() -> None:
    # ranking [c, a, b]: DCG = 0/1 + 2/log2(3) + 1/log2(4) = 1.26186 + 0.5 = 1.76186
    # ideal  [a, b]    : IDCG = 2/1 + 1/log2(3)            = 2 + 0.63093 = 2.63093
    # nDCG = 1.76186 / 2.63093 ≈ 0.669672
    got = ndcg_at(["c", "a", "b"], QRELS, k=10)
    assert got == pytest.approx((2 / LOG2_3 + 1 / 2) / (2 + 1 / LOG2_3))
    assert got == pytest.approx(0.669672, abs=1e-6)


def test_ndcg_perfect_and_reversed_rankings() -> None:
    assert ndcg_at(["a", "b"], QRELS) == pytest.approx(1.0)
    # [b, a]: DCG = 1/1 + 2/log2(3) = 2.26186; IDCG = 2.63093 → 0.859719
    assert ndcg_at(["b", "a"], QRELS) == pytest.approx(0.859719, abs=1e-6)


def test_ndcg_cut_at_k_smaller_than_ranking() -> None:
    # @2 of [c, a, b]: DCG@2 = 2/log2(3) = 1.26186; IDCG@2 = 2 + 1/log2(3) = 2.63093 → 0.479625
    assert ndcg_at(["c", "a", "b"], QRELS, k=2) == pytest.approx(0.479625, abs=1e-6)
    # @1: the top document c has gain 0
    assert ndcg_at(["c", "a", "b"], QRELS, k=1) == 0.0
    # @1 of [a, ...]: DCG = IDCG@1 = 2 → 1.0 (the ideal is cut at k too)
    assert ndcg_at(["a", "c"], QRELS, k=1) == pytest.approx(1.0)


def test_ndcg_ideal_counts_relevant_documents_missing_from_the_ranking() -> None:
    # only b retrieved: DCG = 1; IDCG = 2 + 1/log2(3) = 2.63093 → 0.380093
    assert ndcg_at(["b"], QRELS) == pytest.approx(1 / (2 + 1 / LOG2_3))


def test_ndcg_negative_grades_count_as_zero() -> None:
    # gains [0, 1] → DCG = 1/log2(3) = 0.63093; IDCG = 1 (only b is > 0)
    assert ndcg_at(["a", "b"], {"a": -1, "b": 1}) == pytest.approx(1 / LOG2_3)


@pytest.mark.parametrize("qrels", [{}, {"a": 0, "b": 0}], ids=["no-judgments", "all-zero"])
def test_ndcg_without_relevant_documents_is_zero(qrels: dict[str, int]) -> None:
    assert ndcg_at(["a", "b"], qrels) == 0.0


def test_ndcg_empty_ranking_is_zero() -> None:
    assert ndcg_at([], QRELS) == 0.0


# --- MRR ---------------------------------------------------------------------------------------


def test_mrr_first_relevant_rank() -> None:
    assert mrr_at(["c", "a", "b"], QRELS) == pytest.approx(1 / 2)  # a at rank 2
    assert mrr_at(["x", "y", "c", "b"], QRELS) == pytest.approx(1 / 4)  # grade-0 c is not relevant
    assert mrr_at(["a"], QRELS) == 1.0


def test_mrr_cut_at_k_and_edge_cases() -> None:
    assert mrr_at(["c", "a"], QRELS, k=1) == 0.0  # a is at rank 2, outside the top 1
    assert mrr_at([], QRELS) == 0.0
    assert mrr_at(["a", "b"], {}) == 0.0


# --- recall ------------------------------------------------------------------------------------


def test_recall_hand_computed() -> None:
    qrels = {"a": 2, "b": 1, "d": 1, "c": 0}  # 3 relevant: a, b, d
    assert recall_at(["c", "a", "b"], qrels) == pytest.approx(2 / 3)
    assert recall_at(["c", "a", "b"], qrels, k=2) == pytest.approx(1 / 3)  # only a in the top 2
    assert recall_at(["d", "b", "a"], qrels, k=3) == 1.0


def test_recall_edge_cases() -> None:
    assert recall_at([], QRELS) == 0.0
    assert recall_at(["a"], {"a": 0}) == 0.0  # no relevant document: 0, not a division by zero
    assert recall_at(["a"], {}) == 0.0


# --- precision ---------------------------------------------------------------------------------


def test_precision_denominator_is_k() -> None:
    ranking = ["c", "a", "b"]
    assert precision_at(ranking, QRELS, k=1) == 0.0
    assert precision_at(ranking, QRELS, k=2) == pytest.approx(1 / 2)
    assert precision_at(ranking, QRELS, k=3) == pytest.approx(2 / 3)
    # k beyond the ranking: still divided by k (trec_eval's P_k), 2 relevant / 5
    assert precision_at(ranking, QRELS, k=5) == pytest.approx(2 / 5)


def test_precision_edge_cases() -> None:
    assert precision_at([], QRELS, k=1) == 0.0
    assert precision_at(["a"], QRELS, k=0) == 0.0
    assert precision_at(["a"], {}, k=1) == 0.0


# --- evaluate ----------------------------------------------------------------------------------


def test_evaluate_means_over_judged_queries() -> None:
    run = {
        "q1": ["c", "a", "b"],
        "q2": ["x", "y"],
        "q5": ["a"],  # in the run but not judged: ignored
    }
    qrels = {
        "q1": {"a": 2, "b": 1},
        "q2": {"x": 1},
        "q3": {"y": 1},  # judged but missing from the run: scores 0 on every metric
        "q4": {"z": 0},  # no relevant document: left out, as trec_eval does
    }
    means, per_query = evaluate(run, qrels)

    assert set(per_query) == {"q1", "q2", "q3"}
    # q1: nDCG 0.669672 (see test_ndcg_graded_hand_computed), MRR 1/2, recall 2/2, P@1 0
    q1 = {"ndcg@10": 0.669672, "mrr@10": 0.5, "recall@100": 1.0, "p@1": 0.0}
    assert per_query["q1"] == pytest.approx(q1, abs=1e-6)
    # q2: x at rank 1 → everything 1
    assert per_query["q2"] == pytest.approx({"ndcg@10": 1.0, "mrr@10": 1.0, "recall@100": 1.0, "p@1": 1.0})
    assert per_query["q3"] == {"ndcg@10": 0.0, "mrr@10": 0.0, "recall@100": 0.0, "p@1": 0.0}
    # means over 3 queries: nDCG (0.669672 + 1 + 0)/3 = 0.556557, MRR 1.5/3, recall 2/3, P@1 1/3
    assert means["ndcg@10"] == pytest.approx(0.556557, abs=1e-6)
    assert means["mrr@10"] == pytest.approx(0.5)
    assert means["recall@100"] == pytest.approx(2 / 3)
    assert means["p@1"] == pytest.approx(1 / 3)


def test_evaluate_without_judged_queries_gives_zero_means() -> None:
    means, per_query = evaluate({"q1": ["a"]}, {"q1": {"a": 0}})
    assert per_query == {}
    assert means == {"ndcg@10": 0.0, "mrr@10": 0.0, "recall@100": 0.0, "p@1": 0.0}
    assert evaluate({}, {}) == (means, {})


def test_evaluate_uses_cutoffs_10_and_100() -> None:
    # the only relevant document at rank 11: outside nDCG@10 / MRR@10, inside recall@100
    ranking = [f"n{i}" for i in range(10)] + ["r"]
    _, per_query = evaluate({"q": ranking}, {"q": {"r": 1}})
    assert per_query["q"] == {"ndcg@10": 0.0, "mrr@10": 0.0, "recall@100": 1.0, "p@1": 0.0}
