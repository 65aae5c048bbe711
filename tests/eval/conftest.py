"""Fixtures for the evaluation tests: hand-made runs and qrels, and a tiny regression on fake encoders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

QRELS = "dattr000 0 a 2\ndattr000 0 b 1\ndattr001 0 c 2\ndzh000 0 a 2\ndzh000 0 d 2\ndzh001 0 e 1\n"
# base: dattr000 perfect, dattr001 rank 2, dzh000 one of two at rank 1, dzh001 missed
BASE = {"dattr000": ["a", "b"], "dattr001": ["x", "c"], "dzh000": ["a", "x"], "dzh001": ["x"]}
# rerank: dattr000 the same (tie), dattr001 now at rank 1 (win), dzh000 loses its hit (loss), dzh001 tie
RERANK = {"dattr000": ["a", "b"], "dattr001": ["c", "x"], "dzh000": ["x", "y"], "dzh001": ["x"]}


def write_run(path: Path, ranking: dict[str, list[str]]) -> Path:
    lines = [f"{q} Q0 {d} {i} {10 - i} test" for q, docs in ranking.items() for i, d in enumerate(docs, start=1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def eval_files(tmp_path: Path) -> dict[str, Path]:
    """A qrels file, two runs (before / after), importances and latencies, all written by hand."""
    qrels = tmp_path / "qrels.txt"
    qrels.write_text(QRELS, encoding="utf-8")
    importance = tmp_path / "importance.json"
    importance.write_text(json.dumps({"bm25": 0.4, "dense_text": 0.35, "image": 0.2, "price": -0.05}))
    latency = tmp_path / "latency.json"
    latency.write_text(json.dumps([12.5, 14.0, 13.2, 40.1]))
    return {
        "qrels": qrels,
        "base": write_run(tmp_path / "base.txt", BASE),
        "rerank": write_run(tmp_path / "rerank.txt", RERANK),
        "importance": importance,
        "latency": latency,
    }


TINY_YAML = """\
name: tiny
description: a tiny catalogue on fake encoders
small: true
commands:
  index: shoplens index catalog.csv --out ${WORK}/tiny/index --text-encoder fake --image-encoder fake --no-progress
  run: >-
    shoplens run ${WORK}/tiny/index --queries regressions/data/queries.jsonl --out ${WORK}/tiny/run.txt
    --latency-out ${WORK}/tiny/latency.json
  eval: shoplens eval ${WORK}/tiny/run.txt regressions/data/qrels.txt
tolerance: 0.001
expected:
  queries: 3
"""


@pytest.fixture
def tiny_regression(tiny_catalog: Path) -> Path:
    """``ROOT/regressions/tiny.yaml`` over the eight-product catalogue; returns the YAML path."""
    root = tiny_catalog.parent
    data = root / "regressions" / "data"
    data.mkdir(parents=True)
    queries = [("q1", "red cotton dress"), ("q2", "blue denim jeans"), ("q3", "green wool sweater")]
    (data / "queries.jsonl").write_text("".join(json.dumps({"qid": q, "text": t}) + "\n" for q, t in queries))
    (data / "qrels.txt").write_text("q1 0 p1 2\nq2 0 p2 2\nq3 0 p3 2\n")
    path = root / "regressions" / "tiny.yaml"
    path.write_text(TINY_YAML + "  mrr@10: 1.0\n  p@1: 1.0\n", encoding="utf-8")
    return path
