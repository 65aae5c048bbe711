"""Regression files and their runner (shoplens.eval.regression, ``shoplens regress``) on a tiny fake setup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shoplens.cli.main import main
from shoplens.errors import ConfigError
from shoplens.eval.regression import (
    check_metrics,
    find_regressions,
    last_json,
    load_regression,
    run_regression,
    substitute,
)

from ..conftest import ROOT
from .conftest import TINY_YAML


def test_check_metrics_within_tolerance() -> None:
    checks = check_metrics({"a": 0.5, "b": 0.5, "c": 1.0}, 0.01, {"a": 0.509, "b": 0.52, "c": "n/a"})
    assert [(c.metric, c.ok) for c in checks] == [("a", True), ("b", False), ("c", False)]
    assert checks[2].value is None


def test_last_json_takes_the_last_object_line() -> None:
    assert last_json('table\n{"a": 1}\n{"b": 2}\nreport: x\n') == {"b": 2}
    assert last_json("no json here\n[1, 2]\n") == {}


def test_substitute_refuses_unknown_variables() -> None:
    assert substitute("${WORK}/x ${SHARED}", {"WORK": "/w", "SHARED": "/s"}) == "/w/x /s"
    with pytest.raises(ConfigError, match="unknown variable"):
        substitute("${NOPE}/x", {"WORK": "/w"})


def test_tiny_regression_passes(tiny_regression: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = load_regression(tiny_regression)
    assert reg.root == tiny_regression.parent.parent and [s for s, _ in reg.commands] == ["index", "run", "eval"]
    outcome = run_regression(reg, tmp_path / "work")
    assert outcome.ok, outcome
    assert [(c.metric, c.value) for c in outcome.checks] == [("queries", 3.0), ("mrr@10", 1.0), ("p@1", 1.0)]
    latencies = json.loads((tmp_path / "work" / "tiny" / "latency.json").read_text())  # `run --latency-out`
    assert len(latencies) == 3 and all(isinstance(ms, float) and ms > 0 for ms in latencies)
    # the same through the command line, by name from --dir
    assert main(["regress", "tiny", "--dir", str(tiny_regression.parent)]) == 0
    out = capsys.readouterr().out
    assert "OK   tiny  p@1" in out and "\nFAIL" not in out and "1 OK, 0 FAIL, 0 SKIP" in out


def test_off_expectation_fails_with_exit_code_1(
    tiny_regression: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny_regression.write_text(TINY_YAML + "  p@1: 0.5\n  ndcg@20: 0.9\n", encoding="utf-8")
    assert main(["regress", str(tiny_regression)]) == 1
    out = capsys.readouterr().out
    assert "OK   tiny  queries" in out
    assert "FAIL tiny  p@1" in out and "(expected 0.5000 ± 0.001)" in out
    assert "FAIL tiny  ndcg@20" in out and "missing" in out  # a metric the command never printed


def test_failing_command_fails_the_regression(tiny_regression: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = TINY_YAML.replace("regressions/data/queries.jsonl", "regressions/data/missing.jsonl")
    tiny_regression.write_text(text, encoding="utf-8")
    assert main(["regress", str(tiny_regression)]) == 1
    out = capsys.readouterr().out
    assert "FAIL tiny: step 'run' exited with code" in out and "missing.jsonl" in out


def test_missing_data_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "needs-data.yaml"
    path.write_text(
        "requires:\n  - ${SHARED}/fashion-dev/catalog.csv\ncommands: [shoplens --version]\nexpected: {ndcg@10: 1}\n"
    )
    assert main(["regress", str(path), "--shared", str(tmp_path / "nowhere")]) == 0
    out = capsys.readouterr().out
    assert "SKIP needs-data: ${SHARED}/fashion-dev/catalog.csv not found" in out and "0 FAIL, 1 SKIP" in out
    # the module entry point: python -m shoplens.eval.regression FILE
    cmd = [sys.executable, "-m", "shoplens.eval.regression", str(path), "--shared", str(tmp_path / "nowhere")]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0 and "SKIP needs-data" in proc.stdout, proc.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("commands: {run: shoplens --version}\n", "'expected' must map"),
        ("commands: 3\nexpected: {p@1: 1}\n", "'commands' must map"),
        ("commands: [x]\nexpected: {p@1: high}\n", "expected p@1 must be a number"),
        ("commands: [x]\nexpected: {p@1: 1}\nmetrics_from: eval\n", "'metrics_from' names no step"),
        ("commands: [x\n", "not valid YAML"),
    ],
)
def test_bad_regression_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_regression(path)
    assert main(["regress", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_the_repository_regressions_load() -> None:
    regs = {r.name: r for r in find_regressions(ROOT / "regressions")}
    assert {"demo-grocery", "fashion-dev-attr", "fashion-dev-natural", "fashion-dev-zh", "fashion-dev-image"} <= set(regs)
    assert {"fashion-dev-ranked-natural", "fashion-dev-ranked-zh"} <= set(regs)
    assert [name for name, _cmd in regs["fashion-dev-ranked-zh"].commands] == ["index", "train", "run", "eval"]
    assert [r.name for r in find_regressions(ROOT / "regressions", small_only=True)] == ["demo-grocery"]
    for reg in regs.values():
        assert {"ndcg@10", "mrr@10", "recall@100", "p@1", "queries"} <= set(reg.expected)
        assert reg.name == "demo-grocery" or reg.requires[0] == "${SHARED}/fashion-dev/catalog.csv"


def test_demo_grocery_regression(tmp_path: Path) -> None:
    """The CI regression: the bundled demo with the real default models (about half a minute)."""
    outcome = run_regression(load_regression(ROOT / "regressions" / "demo-grocery.yaml"), tmp_path)
    failed = [c for c in outcome.checks if not c.ok]
    assert outcome.ok, (outcome.error, failed, outcome.steps[-1].stderr[-2000:] if outcome.steps else "")
    page = (tmp_path / "demo-grocery" / "report" / "index.html").read_text(encoding="utf-8")
    assert "<h2>Latency</h2>" in page and "photo000" in page  # `run --latency-out` fed `eval --latency`


def test_steps_keep_their_vectors_in_the_work_folder(
    tiny_regression: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cached text vector is the one its first batch gave: the user's cache must not decide the
    # pinned metrics, so the steps encode into ${WORK}/embeddings.sqlite (and the setting ends with them).
    monkeypatch.delenv("SHOPLENS_EMBEDDINGS", raising=False)
    work = tmp_path / "work"
    outcome = run_regression(load_regression(tiny_regression), work)
    assert outcome.ok, outcome
    assert (work / "embeddings.sqlite").is_file()
    assert "SHOPLENS_EMBEDDINGS" not in os.environ
    # An explicit setting is the user's choice and is kept.
    mine = tmp_path / "mine.sqlite"
    monkeypatch.setenv("SHOPLENS_EMBEDDINGS", str(mine))
    assert run_regression(load_regression(tiny_regression), tmp_path / "work2").ok
    assert mine.is_file() and not (tmp_path / "work2" / "embeddings.sqlite").exists()
