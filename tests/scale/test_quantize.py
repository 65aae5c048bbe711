"""Compact vectors: recall against exact search, exact re-ranking, save/load, engine integration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from shoplens import Config, Engine
from shoplens.config import IndexConfig
from shoplens.errors import ConfigError
from shoplens.index.quantize import (
    CompactSpec,
    CompactVectors,
    factory_string,
    ivf_lists,
    recall_at_k,
    rerank,
)
from shoplens.index.vectors import VectorIndex


def real_like(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    """Unit vectors shaped like text embeddings: clustered, with a decaying spectrum (not isotropic)."""
    rng = np.random.default_rng(seed)
    scale = (1.0 / np.sqrt(np.arange(1, dim + 1))).astype(np.float32)
    centres = rng.standard_normal((max(n // 40, 4), dim)).astype(np.float32) * scale
    x = centres[rng.integers(0, len(centres), n)] + 0.4 * rng.standard_normal((n, dim)).astype(np.float32) * scale
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top(x: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    return np.argsort(-(x @ q), kind="stable")[:k].tolist()


X = real_like(3000)
QUERIES = real_like(40, seed=1)


def test_recall_at_k_by_hand() -> None:
    assert recall_at_k([[1, 2, 3]], [[1, 2, 4]], k=3) == pytest.approx(2 / 3)
    assert recall_at_k([[1, 2], [9, 8]], [[2, 1], [7, 6]], k=2) == pytest.approx(0.5)
    assert recall_at_k([], []) == 0.0


def test_rerank_orders_by_full_precision() -> None:
    full = np.array([[1, 0], [0.6, 0.8], [0, 1]], np.float32)
    rows, sims = rerank(full, np.array([0, 1], np.float32), np.array([0, 1, -1, 2]))
    assert rows.tolist() == [2, 1, 0]  # -1 (faiss's "no result") is dropped
    assert sims.tolist() == pytest.approx([1.0, 0.8, 0.0])


def test_factory_strings() -> None:
    assert factory_string(CompactSpec("int8"), 3000, 64) == "SQ8"
    assert factory_string(CompactSpec("float16", "hnsw", hnsw_m=16), 3000, 64) == "HNSW16,SQfp16"
    assert factory_string(CompactSpec("pq", "ivf", pq_m=16), 100_000, 64) == f"IVF{ivf_lists(100_000)},PQ16"
    assert factory_string(CompactSpec("pq"), 3000, 64) == "SQ8"  # too few vectors to train PQ
    assert ivf_lists(100) == 2 and ivf_lists(1_000_000) == 4000


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_scalar_quantisation_recall_and_exact_rerank(dtype: str) -> None:
    store = CompactVectors.build(X, IndexConfig(vector_dtype=dtype, rerank=4))
    assert store.bytes_per_vector < X.shape[1] * (2.2 if dtype == "float16" else 1.2)
    found, truth = [], []
    for q in QUERIES:
        rows, sims = store.search(q, 10)
        found.append(rows.tolist())
        truth.append(exact_top(X, q, 10))
        np.testing.assert_allclose(sims, X[rows] @ q, rtol=0, atol=1e-6)  # scores are full precision
    assert recall_at_k(found, truth) >= 0.98
    # Re-ranking restores the exact order: wherever all true top-10 were fetched, the lists are equal.
    assert sum(f == t for f, t in zip(found, truth, strict=True)) >= 0.9 * len(QUERIES)


@pytest.fixture
def one_omp_thread() -> Iterator[None]:
    """k-means in faiss spins its OpenMP threads; on a loaded 2-core box one thread is much faster."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def test_pq_with_rerank_beats_pq_alone(one_omp_thread: None) -> None:
    x = real_like(10_000, dim=32, seed=2)  # PQ trains on >= 256 × 39 vectors
    queries = real_like(40, dim=32, seed=3)
    truth = [exact_top(x, q, 10) for q in queries]
    store = CompactVectors.build(x, IndexConfig(vector_dtype="pq", pq_m=16, rerank=10))
    assert store.bytes_per_vector < 30  # 16 bytes of codes + the codebooks shared by all
    reranked = [store.search(q, 10)[0].tolist() for q in queries]
    raw = [store.index.search(q[None], 10)[1][0].tolist() for q in queries]
    assert recall_at_k(reranked, truth) >= 0.9
    assert recall_at_k(reranked, truth) > recall_at_k(raw, truth)


def test_save_load_round_trip(tmp_path: Path) -> None:
    cfg = IndexConfig(vector_dtype="int8", ann_kind="ivf", ivf_nprobe=8)
    store = CompactVectors.build(X, cfg, ann=True)
    store.save(tmp_path / "x.faiss")
    np.save(tmp_path / "x.npy", X)
    loaded = CompactVectors.load(tmp_path / "x.faiss", np.load(tmp_path / "x.npy", mmap_mode="r"), cfg)
    for q in QUERIES[:10]:
        a, b = store.search(q, 10), loaded.search(q, 10)
        assert a[0].tolist() == b[0].tolist()
        np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("dtype,kind", [("int8", "hnsw"), ("float16", "ivf"), ("float32", "ivf")])
def test_vector_index_compact_ann_with_filters(dtype: str, kind: str, tmp_path: Path) -> None:
    n = len(X)
    cfg = IndexConfig(ann_threshold=1000, vector_dtype=dtype, ann_kind=kind, ivf_nprobe=16)
    vi, exact = VectorIndex(X, np.arange(n), n, cfg), VectorIndex(X, np.arange(n), n, IndexConfig())
    mask = np.zeros(n, bool)
    mask[::4] = True  # 25% pass: searched through the ANN index, filtered during the traversal
    found = [[r for r, _ in vi.search(q, 10, mask)] for q in QUERIES]
    truth = [[r for r, _ in exact.search(q, 10, mask)] for q in QUERIES]
    assert all(mask[r] for f in found for r in f)
    assert recall_at_k(found, truth) >= 0.95
    vi.save_ann(tmp_path / "t.hnsw")  # what IndexState.save does; the next load memory-maps it
    again = VectorIndex(X, np.arange(n), n, cfg, VectorIndex.load_ann(tmp_path / "t.hnsw"))
    assert [r for r, _ in again.search(QUERIES[0], 10)] == [r for r, _ in vi.search(QUERIES[0], 10)]


def test_selective_filter_reads_only_allowed_rows_and_matches_full_scan() -> None:
    owners = np.repeat(np.arange(1500), 2)  # two photos per product
    vi = VectorIndex(X, owners, 1500, IndexConfig())
    allowed = np.zeros(1500, bool)
    allowed[[3, 50, 700, 1499]] = True
    full = np.where(allowed, vi.scores(QUERIES[0]), -np.inf)
    got = vi.search(QUERIES[0], 3, allowed)
    assert [r for r, _ in got] == np.argsort(-full, kind="stable")[:3].tolist()
    assert [s for _, s in got] == pytest.approx(np.sort(full)[::-1][:3].tolist())


def test_default_config_is_unchanged_and_bad_dtype_is_rejected() -> None:
    cfg = IndexConfig()
    assert (cfg.vector_dtype, cfg.ann_kind) == ("float32", "hnsw")
    assert not VectorIndex(X, np.arange(len(X)), len(X), cfg).compact
    with pytest.raises(ConfigError, match="vector_dtype"):
        VectorIndex(X, np.arange(len(X)), len(X), IndexConfig(vector_dtype="int4")).search(QUERIES[0], 5)


def test_engine_with_int8_vectors_answers_like_float32(tiny_catalog: Path, fake_config: Config, tmp_path: Path) -> None:
    compact = fake_config.replace(index={"vector_dtype": "int8"})
    a, b = Engine(tmp_path / "f32", fake_config), Engine(tmp_path / "i8", compact)
    a.add_catalog(tiny_catalog)
    b.add_catalog(tiny_catalog)
    b = Engine.open(tmp_path / "i8")
    assert b.config.index.vector_dtype == "int8"
    for query in ["red dress", "blue jeans", "wool"]:
        q = a.encode_query_text(query)
        ra, rb = a.state.text_index.search(q, 5), b.state.text_index.search(q, 5)
        # The same products with the same full-precision scores (zero scores tie in any order).
        assert [(r, round(s, 6)) for r, s in ra if s > 0] == [(r, round(s, 6)) for r, s in rb if s > 0]
        assert [h.id for h in a.search(query, k=3).hits] == [h.id for h in b.search(query, k=3).hits]
