"""A write to an index searched by IVF updates the saved IVF index instead of training a new one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoplens import Config, Engine, Product
from shoplens.index import quantize


def ivf_config(fake_config: Config) -> Config:
    return fake_config.replace(
        index={"ann_threshold": 500, "vector_dtype": "int8", "ann_kind": "ivf", "ivf_nprobe": 64, "rerank": 4}
    )


def catalogue(n: int, start: int = 0, word: str = "shirt") -> list[Product]:
    colours = ["red", "blue", "green", "black", "white", "navy", "grey", "pink"]
    return [Product(str(i), f"{colours[i % 8]} {word} number {i} style {i % 13}") for i in range(start, start + n)]


def top_ids(engine: Engine, vecs: np.ndarray, k: int = 10) -> list[list[str]]:
    st = engine.state
    return [[st.products[r].id for r, _ in st.text_index.search(v, k)] for v in vecs]


def test_updates_deletes_and_adds_reuse_the_trained_ivf(
    tmp_path: Path, fake_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = ivf_config(fake_config)
    engine = Engine(tmp_path / "idx", cfg)
    engine.upsert(catalogue(2000))
    first = engine.state
    assert first.text_index.uses_ann and first.text_index.cfg.ann_kind == "ivf"
    builds: list[int] = []
    real_build = quantize.build_index
    monkeypatch.setattr(quantize, "build_index", lambda v, spec, seed=0: builds.append(len(v)) or real_build(v, spec, seed))
    # Update 50 products, delete 100, add 200.
    engine.upsert(catalogue(50, start=0, word="dress") + catalogue(200, start=5000))
    engine.delete([str(i) for i in range(100, 200)])
    assert builds == []  # both writes updated the saved index; none trained a new one
    st = engine.state
    ids = [p.id for p in st.products]
    assert len(ids) == 2000 - 100 + 200 and "150" not in ids and "5100" in ids
    # Every product is found by its own vector, under its own (renumbered) row.
    vecs = np.asarray(st.text_vectors)
    sample = np.r_[0:60, 900:960, len(ids) - 60 : len(ids)]
    found = top_ids(engine, vecs[sample], k=1)
    assert [f[0] for f in found] == [ids[r] for r in sample]
    # And it answers as an index trained from scratch on the same products does.
    fresh = Engine(tmp_path / "fresh", cfg)
    fresh.upsert(list(st.products))
    queries = vecs[::37] + 0.05 * np.random.default_rng(0).normal(size=vecs[::37].shape).astype(np.float32)
    a, b = top_ids(engine, queries), top_ids(fresh, queries)
    overlap = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, b, strict=True)])
    assert overlap >= 0.95, overlap


def test_an_index_that_grew_far_past_its_training_is_rebuilt(tmp_path: Path, fake_config: Config) -> None:
    cfg = ivf_config(fake_config)
    engine = Engine(tmp_path / "idx", cfg)
    engine.upsert(catalogue(600))
    old = engine.state
    keep = np.arange(600)
    grown = np.zeros((2400, old.text_vectors.shape[1]), np.float32)
    spec = quantize.CompactSpec.from_config(old.text_index.cfg, ann=True)
    assert old.path is not None
    assert quantize.update_ivf(old.path / "text.hnsw", keep, grown, 600, spec) is None  # 4x: lists off by 2x
    assert quantize.update_ivf(old.path / "text.hnsw", keep, grown[:100], 600, spec) is not None
    assert quantize.update_ivf(old.path / "text.hnsw", keep, grown[:100], 601, spec) is None  # not the rows expected
    assert quantize.update_ivf(old.path / "missing.hnsw", keep, grown[:100], 600, spec) is None


def test_an_append_extends_the_hnsw_graph_and_an_update_rebuilds_it(
    tmp_path: Path, fake_config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = fake_config.replace(index={"ann_threshold": 500})  # float32 HNSW above 500 vectors
    engine = Engine(tmp_path / "idx", cfg)
    engine.upsert(catalogue(1000))
    assert engine.state.text_index.uses_ann and not engine.state.text_index.compact
    caplog.set_level("INFO")
    caplog.clear()
    engine.upsert(catalogue(100, start=5000))  # new products only: an append
    messages = [r.getMessage() for r in caplog.records]
    assert not any(m.startswith("building HNSW") for m in messages), messages
    assert any(m.startswith("extended text.hnsw: 1000 rows kept, 100 added") for m in messages), messages
    st = engine.state
    vecs = np.asarray(st.text_vectors)
    rows = np.r_[0:20, 1080:1100]
    assert [f[0] for f in top_ids(engine, vecs[rows], k=1)] == [st.products[r].id for r in rows]
    # Recall@10 against exact search: as good as a graph built from scratch over the same vectors.
    exact = [[st.products[r].id for r in np.argsort(-(vecs @ q))[:10]] for q in vecs[::25]]
    fresh = Engine(tmp_path / "fresh", cfg)
    fresh.upsert(list(st.products))

    def recall(e: Engine) -> float:
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top_ids(e, vecs[::25]), exact, strict=True)]))

    assert recall(engine) >= recall(fresh) - 0.03, (recall(engine), recall(fresh))
    caplog.clear()
    engine.upsert(catalogue(5, start=0, word="dress"))  # updates drop rows: the graph is rebuilt
    assert any(r.getMessage().startswith("building HNSW") for r in caplog.records)
