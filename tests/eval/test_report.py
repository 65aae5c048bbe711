"""The evaluation report (shoplens.eval.report) and ``shoplens eval`` with several runs, checked by hand."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import pytest

from shoplens.cli.main import main
from shoplens.eval.metrics import evaluate
from shoplens.eval.report import RunScores, compare, group_by_type, mean_over, query_type, write_report
from shoplens.eval.trec import read_qrels

from .conftest import BASE, RERANK

# Hand-worked nDCG@10 (linear gain, log2(rank + 1) discount), see conftest for the judgments:
#   dattr000 [a, b]: ideal order                              → 1
#   dattr001 [x, c]: (2 / log2 3) / 2                         → 0.63093
#   dzh000   [a, x]: 2 / (2 + 2 / log2 3)                     → 0.61315
#   dzh001   [x]   : nothing relevant retrieved               → 0
NDCG_BASE = {"dattr000": 1.0, "dattr001": 1 / math.log2(3), "dzh000": 2 / (2 + 2 / math.log2(3)), "dzh001": 0.0}
NDCG_RERANK = {"dattr000": 1.0, "dattr001": 1.0, "dzh000": 0.0, "dzh001": 0.0}


def scores(name: str, ranking: dict[str, list[str]], qrels_path: Path) -> RunScores:
    means, per_query = evaluate(ranking, read_qrels(qrels_path))
    return RunScores(name, f"{name}.txt", means, per_query)


@pytest.mark.parametrize(
    ("qid", "expected"),
    [("dattr000", "dattr"), ("dzh12", "dzh"), ("photo-3", "photo"), ("en_001", "en"), ("123", "other"), ("abc", "abc")],
)
def test_query_type_is_the_prefix_before_the_first_digit(qid: str, expected: str) -> None:
    assert query_type(qid) == expected


def test_group_by_type_prefers_the_given_mapping() -> None:
    assert group_by_type(["dzh1", "dattr2", "dattr1"]) == {"dattr": ["dattr1", "dattr2"], "dzh": ["dzh1"]}
    assert group_by_type(["dzh1", "dattr1"], {"dzh1": "chinese"}) == {"chinese": ["dzh1"], "dattr": ["dattr1"]}


def test_mean_over_counts_a_missing_query_as_zero() -> None:
    assert mean_over({"a": {"m": 1.0}, "b": {"m": 0.5}}, ["a", "b", "c"], "m") == pytest.approx(0.5)
    assert mean_over({}, [], "m") == 0.0


def test_compare_wins_ties_losses_by_hand(eval_files: dict[str, Path]) -> None:
    base = scores("base", BASE, eval_files["qrels"])
    rerank = scores("rerank", RERANK, eval_files["qrels"])
    assert {q: v["ndcg@10"] for q, v in base.per_query.items()} == pytest.approx(NDCG_BASE)
    cmp = compare(base, rerank)
    assert (cmp.wins, cmp.ties, cmp.losses) == (1, 2, 1)
    assert cmp.deltas["dattr001"] == pytest.approx(1 - 1 / math.log2(3))  # +0.36907
    assert cmp.deltas["dzh000"] == pytest.approx(-NDCG_BASE["dzh000"])  # −0.61315
    assert cmp.mean_delta == pytest.approx((sum(NDCG_RERANK.values()) - sum(NDCG_BASE.values())) / 4)


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_report_is_one_self_contained_page(eval_files: dict[str, Path], tmp_path: Path) -> None:
    runs = [scores("base", BASE, eval_files["qrels"]), scores("rerank", RERANK, eval_files["qrels"])]
    path = write_report(
        tmp_path / "report",
        runs,
        qrels="qrels.txt",
        importance={"bm25": 0.4, "price": -0.1},
        latency={"rerank": [10.0, 12.0, 30.0]},
    )
    page = path.read_text(encoding="utf-8")
    assert path == tmp_path / "report" / "index.html"
    assert "http://" not in page and "https://" not in page and "<script" not in page and "<link" not in page
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'src="([^"]*)"', page))
    images = _images(page)
    assert len(images) == 5  # delta, per type, per query, latency, importance
    assert all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    table = page[page.index('<table id="per-query">') :]
    for qid in BASE:
        assert f"<td class=\"txt\">{qid}</td>" in table
    assert "<td>1</td><td>2</td><td>1</td>" in page  # wins, ties, losses
    assert "Feature importance (2 features)" in page and "Latency" in page


def test_report_for_one_run_has_no_comparison(eval_files: dict[str, Path], tmp_path: Path) -> None:
    page = write_report(tmp_path, [scores("base", BASE, eval_files["qrels"])]).read_text(encoding="utf-8")
    assert "Before / after" not in page and "Latency" not in page
    assert len(_images(page)) == 2  # per type, per query


# --- the command line -----------------------------------------------------------------------------


def test_eval_with_one_run_prints_what_it_always_printed(
    eval_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run, qrels = eval_files["base"], eval_files["qrels"]
    assert main(["eval", str(run), str(qrels)]) == 0
    expected = (
        "metric         value\n"
        "ndcg@10       0.5610\n"
        "mrr@10        0.6250\n"
        "recall@100    0.6250\n"
        "p@1           0.5000\n"
        "queries            4\n"
        + json.dumps({"run": str(run), "qrels": str(qrels), "queries": 4, "ndcg@10": 0.561, "mrr@10": 0.625,
                      "recall@100": 0.625, "p@1": 0.5})
        + "\n"
    )
    assert capsys.readouterr().out == expected


def test_eval_several_runs_writes_the_report(
    eval_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    types = tmp_path / "types.json"
    types.write_text(json.dumps({"dzh000": "chinese", "dzh001": "chinese"}))
    out = tmp_path / "report"
    argv = ["eval", str(eval_files["base"]), str(eval_files["rerank"]), str(eval_files["qrels"]), "--report", str(out),
            "--types", str(types), "--importance", str(eval_files["importance"]),
            "--latency", f"rerank={eval_files['latency']}", "--json-out", str(tmp_path / "m.json")]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["metric", "base", "rerank"]
    assert lines[1].split() == ["ndcg@10", "0.5610", "0.5000"]
    first, last = json.loads(lines[-2]), json.loads(lines[-1])  # one JSON line per run, last in the output
    assert (first["name"], last["name"], last["ndcg@10"]) == ("base", "rerank", 0.5)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "<td class=\"txt\">chinese</td>" in page and len(_images(page)) == 5
    saved = json.loads((tmp_path / "m.json").read_text())
    assert [r["name"] for r in saved["runs"]] == ["base", "rerank"]
    assert saved["runs"][1]["per_query"]["dattr001"]["ndcg@10"] == 1.0


def test_eval_named_runs(eval_files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["eval", str(eval_files["qrels"]), "--run", f"before={eval_files['base']}",
            "--run", f"after={eval_files['rerank']}"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["metric", "before", "after"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--importance", "IMP"], "add --report DIR"),
        (["--report", "OUT", "--importance", "BAD"], "importance of 'bm25' must be a number"),
        (["--report", "OUT", "--latency", "BAD"], "JSON list of milliseconds"),
    ],
)
def test_eval_bad_report_input_is_a_clear_error(
    eval_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"bm25": "high"}))
    subst = {"IMP": str(eval_files["importance"]), "BAD": str(bad), "OUT": str(tmp_path / "out")}
    argv = ["eval", str(eval_files["base"]), str(eval_files["qrels"]), *(subst.get(a, a) for a in extra)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_eval_needs_a_run(eval_files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(eval_files["qrels"])]) == 2
    assert "needs a run file" in capsys.readouterr().err
