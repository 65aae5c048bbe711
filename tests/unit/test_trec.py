"""TREC qrels and run files (shoplens.eval.trec): reading, writing, and clear errors on bad lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplens.errors import CatalogError
from shoplens.eval.trec import format_run, read_qrels, read_run


def test_read_qrels_graded_and_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "qrels.txt"
    path.write_text("q1 0 a 2\nq1 0 b 1\n\n   \nq2 0 c 0\nq2\t0\td\t-1\n", encoding="utf-8")
    assert read_qrels(path) == {"q1": {"a": 2, "b": 1}, "q2": {"c": 0, "d": -1}}


def test_read_qrels_last_judgment_of_a_pair_wins(tmp_path: Path) -> None:
    path = tmp_path / "qrels.txt"
    path.write_text("q1 0 a 1\nq1 0 a 3\n", encoding="utf-8")
    assert read_qrels(path) == {"q1": {"a": 3}}


@pytest.mark.parametrize(
    ("bad_line", "needle"),
    [
        ("q1 0 b", "expected 'qid 0 docid grade'"),
        ("q1 0 b 1 extra", "expected 'qid 0 docid grade'"),
        ("q1 0 b high", "grade 'high' is not an integer"),
        ("q1 0 b 1.5", "grade '1.5' is not an integer"),
    ],
)
def test_read_qrels_malformed_line_names_the_line(tmp_path: Path, bad_line: str, needle: str) -> None:
    path = tmp_path / "qrels.txt"
    path.write_text(f"q1 0 a 1\n\n{bad_line}\n", encoding="utf-8")  # the bad line is line 3
    with pytest.raises(CatalogError) as exc:
        read_qrels(path)
    msg = str(exc.value)
    assert "line 3" in msg and needle in msg and str(path) in msg


def test_read_run_orders_by_score_then_rank_column(tmp_path: Path) -> None:
    path = tmp_path / "run.txt"
    path.write_text(
        "q1 Q0 low 3 0.5 t\n"
        "q1 Q0 tie-b 2 0.9 t\n"  # same score as tie-a: the rank column breaks the tie
        "q1 Q0 tie-a 1 0.9 t\n"
        "q1 Q0 top 4 1.5 t\n"  # the score, not the rank column, decides first
        "\n"
        "q2 Q0 x 1 -1.0 t extra-columns-are-ignored\n",
        encoding="utf-8",
    )
    assert read_run(path) == {"q1": ["top", "tie-a", "tie-b", "low"], "q2": ["x"]}


@pytest.mark.parametrize(
    ("bad_line", "needle"),
    [
        ("q1 Q0 b 2 0.5", "expected 'qid Q0 docid rank score tag'"),
        ("q1 Q0 b two 0.5 t", "bad rank or score"),
        ("q1 Q0 b 2 high t", "bad rank or score"),
    ],
)
def test_read_run_malformed_line_names_the_line(tmp_path: Path, bad_line: str, needle: str) -> None:
    path = tmp_path / "run.txt"
    path.write_text(f"q1 Q0 a 1 1.0 t\n{bad_line}\n", encoding="utf-8")  # the bad line is line 2
    with pytest.raises(CatalogError) as exc:
        read_run(path)
    msg = str(exc.value)
    assert "line 2" in msg and needle in msg and repr(bad_line) in msg


def test_format_run_writes_trec_lines() -> None:
    text = format_run({"q1": [("d7", 2.5), ("d3", 1.0)], "q2": [("d1", 0.25)]}, tag="mytag")
    assert text == (
        "q1 Q0 d7 1 2.500000 mytag\n"
        "q1 Q0 d3 2 1.000000 mytag\n"
        "q2 Q0 d1 1 0.250000 mytag\n"
    )
    assert format_run({}) == ""
    assert format_run({"q1": []}) == ""
    assert format_run({"q": [("d", 1.0)]}).split()[-1] == "shoplens"  # the default tag


def test_run_round_trip(tmp_path: Path) -> None:
    results = {
        "q1": [("d7", 3.0), ("d3", 2.0), ("d9", 2.0), ("d1", -0.5)],  # d3/d9 tie: kept in rank order
        "q2": [("a", 0.123456)],
    }
    path = tmp_path / "run.txt"
    path.write_text(format_run(results), encoding="utf-8")
    assert read_run(path) == {"q1": ["d7", "d3", "d9", "d1"], "q2": ["a"]}


def test_qrels_and_run_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("", encoding="utf-8")
    assert read_qrels(path) == {}
    assert read_run(path) == {}
