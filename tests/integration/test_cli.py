"""The command line as a user types it: index, search, similar, run, eval, add, delete, demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoplens.cli.main import main

from ..conftest import DEMO


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "idx"
    assert main(["index", str(DEMO / "catalog.csv"), "--out", str(out), "--no-progress"]) == 0
    return out


def test_search_prints_ranked_products(cli_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", str(cli_index), "oat milk", "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "Oatly Oat Milk" in out.splitlines()[1]


def test_search_json_with_filter_and_photo(cli_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = DEMO / "queries" / "shelf-banana.jpg"
    code = main(["search", str(cli_index), "--image", str(photo), "--filter", "top_category=Fruit", "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["results"][0]["title"] == "Banana"
    assert all(r["attributes"]["top_category"] == "Fruit" for r in payload["results"])
    assert payload["facets"]["top_category"] == {"Fruit": payload["total"]}


def test_similar(cli_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["similar", str(cli_index), "45", "-k", "2"]) == 0
    assert "more like [45] Oatly Oat Milk" in capsys.readouterr().out


def test_run_and_eval(cli_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        "\n".join(
            [
                json.dumps({"qid": "q1", "text": "oat milk"}),
                json.dumps({"qid": "q2", "image": str(DEMO / "queries" / "shelf-banana.jpg")}),
                json.dumps({"qid": "q3", "text": "苹果", "filters": ["category=Apple"]}),
                "{not json",
            ]
        )
    )
    qrels = tmp_path / "qrels.txt"
    # q3: every apple (category Apple: ids 0-4) answers "苹果" (apple) equally well.
    qrels.write_text("q1 0 45 2\nq2 0 6 2\n" + "".join(f"q3 0 {i} 1\n" for i in range(5)))
    run = tmp_path / "run.txt"
    assert main(["run", str(cli_index), "--queries", str(queries), "--out", str(run), "--k", "20"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["queries"] == 3 and summary["skipped_lines"] == 1
    assert summary["p50_ms"] > 0 and summary["p99_ms"] >= summary["p95_ms"] >= summary["p50_ms"]
    lines = run.read_text().splitlines()
    assert lines[0].split()[:4] == ["q1", "Q0", "45", "1"]
    assert main(["eval", str(run), str(qrels)]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["queries"] == 3
    assert metrics["mrr@10"] == 1.0 and metrics["p@1"] == 1.0


def test_add_and_delete(cli_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"id": "new-1", "title": "Lingonberry jam", "category": "Jam"}) + "\n{bad\n")
    assert main(["add", str(cli_index), str(extra)]) == 0
    out = capsys.readouterr().out
    assert "1 added" in out and "1 skipped" in out
    assert main(["search", str(cli_index), "lingonberry", "-k", "1"]) == 0
    assert "Lingonberry jam" in capsys.readouterr().out
    assert main(["delete", str(cli_index), "new-1"]) == 0
    assert main(["delete", str(cli_index), "new-1"]) == 2  # unknown id: a clear error, exit code 2
    assert "unknown product id" in capsys.readouterr().err


def test_errors_are_messages_not_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", str(tmp_path / "nope"), "milk"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("shoplens: error:") and "Traceback" not in err


def test_demo_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "-k", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "search '苹果'" in out and "photo search" in out
