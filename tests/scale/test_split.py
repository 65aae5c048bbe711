"""Splitting an index into shards, and the scatter-gather merge (no Ray needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoplens import Config, Engine
from shoplens.scale.shard_actor import ShardCandidates, ShardServer
from shoplens.scale.sharded import merge_candidates, merge_scored
from shoplens.scale.split import read_ordinals, shard_of, split_index


def test_shard_of_is_stable_and_in_range() -> None:
    assert shard_of("sku-42", 4) == shard_of("sku-42", 4)
    assert {shard_of(f"p{i}", 3) for i in range(100)} == {0, 1, 2}


def test_merge_scored_takes_the_global_top_and_breaks_ties_by_order() -> None:
    a = [("x", 0.9, 5), ("y", 0.5, 1)]
    b = [("z", 0.9, 2), ("w", 0.7, 3)]
    assert merge_scored([a, b], 3) == [("z", 0.9, 2), ("x", 0.9, 5), ("w", 0.7, 3)]


def test_merge_candidates_coverage_counts_a_word_known_to_any_shard() -> None:
    p1 = ShardCandidates({"bm25": [("a", 2.0, 0)]}, [True, False, False], {"a": [("colour", "red")]})
    p2 = ShardCandidates({"text": [("b", 0.8, 1)]}, [False, True, False], {"b": []})
    runs, coverage, facets = merge_candidates([p1, p2], 10)
    assert set(runs) == {"bm25", "text"}
    assert coverage == pytest.approx(2 / 3)
    assert facets == {"a": [("colour", "red")], "b": []}


def test_split_keeps_every_product_and_vector(shop_catalog: Path, fake_config: Config, tmp_path: Path) -> None:
    single = Engine(tmp_path / "single", fake_config)
    single.add_catalog(shop_catalog)
    shards = split_index(tmp_path / "single", tmp_path / "shards", 3)
    st = single.state
    seen: set[str] = set()
    for i, path in enumerate(shards):
        part = Engine.open(path).state
        assert {p.id for p in part.products}.isdisjoint(seen)
        seen |= {p.id for p in part.products}
        assert all(shard_of(p.id, 3) == i for p in part.products)
        for row, p in enumerate(part.products):
            src = st.id_to_row[p.id]
            np.testing.assert_array_equal(part.text_vectors[row], st.text_vectors[src])
            photos = np.flatnonzero(part.image_owner == row)
            np.testing.assert_array_equal(part.image_vectors[photos], st.image_vectors[st.image_owner == src])
        assert read_ordinals(path) == {p.id: st.id_to_row[p.id] for p in part.products}
        assert part.lexical.num_docs() == part.n
    assert seen == {p.id for p in st.products}


def test_shard_server_alone_returns_ids_and_scores(shop_catalog: Path, fake_config: Config, tmp_path: Path) -> None:
    single = Engine(tmp_path / "single", fake_config)
    single.add_catalog(shop_catalog)
    (path,) = split_index(tmp_path / "single", tmp_path / "one", 1)
    server = ShardServer(str(path))
    from shoplens.types import Query

    got = server.candidates(Query("red dress"), single.encode_query_text("red dress"), None)
    assert got.runs["text"][0][0] == single.search("red dress").hits[0].id
    assert server.get_many(["s1", "nope"]).keys() == {"s1"}


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from shoplens.errors import MissingDependencyError
    from shoplens.scale._ray import connect

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(MissingDependencyError, match=r"shoplens\[scale\]"):
        connect("local")


def test_split_cli(shop_catalog: Path, fake_config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shoplens.scale.cli import main

    Engine(tmp_path / "single", fake_config).add_catalog(shop_catalog)
    assert main(["split", str(tmp_path / "single"), "--shards", "2", "--out", str(tmp_path / "s")]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "s" / "shard-000"), str(tmp_path / "s" / "shard-001")]
    assert main(["split", str(tmp_path / "single"), "--shards", "2", "--out", str(tmp_path / "s")]) == 2  # not empty
