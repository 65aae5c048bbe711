"""The large-catalogue query paths (issue #6) give the same answers as the simple ones they replace:
column filters, grouped facet counts, lazy facet items, memory-mapped text index, cached filter
row masks, one faiss thread per query."""

from __future__ import annotations

import random
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from shoplens import Engine
from shoplens.config import Config, IndexConfig
from shoplens.index import atomic
from shoplens.index.state import IndexState, LazyRows
from shoplens.index.vectors import VectorIndex, one_thread
from shoplens.retrieve.filters import ColumnStore, facet_counts, facet_items, filter_mask, parse_filter
from shoplens.types import Product


def _products(n: int, seed: int = 0) -> list[Product]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        attrs: dict[str, object] = {
            "gender": rng.choice(["Women", "Men", "women", " Men ", "Boys"]),
            "size": rng.choice([38, 40, 40.0, "40", "42", True, "XL"]),
            "year": rng.choice([2010, 2011, "2012", 2013.5]),
        }
        if rng.random() < 0.2:
            del attrs["gender"]
        out.append(Product(
            f"p{i}", f"item {i}", price=rng.choice([None, 9.99, 10, 19.9, 50, 120.0]),
            category=rng.choice(["", "Shoes", "Bags", "shoes"]), brand=rng.choice(["", "Acme", "Zed"]),
            attributes=attrs,
        ))
    return out


def _old_mask(products: list[Product], filters: list[str]) -> np.ndarray:
    """The per-product predicate loop the column store replaced (the reference semantics)."""
    mask = np.ones(len(products), bool)
    for f in map(parse_filter, filters):
        pred = f.predicate()
        mask &= np.array([pred(p.field_value(f.field)) for p in products], bool)
    return mask


FILTERS = [
    ["gender=Women"], ["gender!=men"], ["gender in [Boys, Men]"], ["gender not in [Women]"],
    ["size=40"], ["size=40.0"], ["size=true"], ["size in [XL, 42]"], ["size>39"], ["size<=40"],
    ["year>=2012"], ["year=2012"], ["year<2013"], ["price<20"], ["price>=10", "category=shoes"],
    ["price=19.90"], ["brand=Acme", "gender=Women"], ["category!=Shoes"], ["missing=1"], ["missing!=1"],
    ["price>abc"],
]


@pytest.mark.parametrize("filters", FILTERS, ids=[" & ".join(f) for f in FILTERS])
def test_column_filters_match_the_per_product_predicates(filters: list[str]) -> None:
    products = _products(400)
    if filters == ["price>abc"]:
        with pytest.raises(Exception, match="not a number"):
            filter_mask(products, map(parse_filter, filters), ColumnStore(products))
        return
    store = ColumnStore(products)
    got = filter_mask(products, map(parse_filter, filters), store)
    assert got is not None
    np.testing.assert_array_equal(got, _old_mask(products, filters))
    again = filter_mask(products, map(parse_filter, filters), store)  # columns reused
    np.testing.assert_array_equal(again, got)


def test_column_store_builds_each_field_once_and_keeps_types_apart() -> None:
    products = [Product("a", "x", attributes={"v": True}), Product("b", "x", attributes={"v": 1}),
                Product("c", "x", attributes={"v": 1.0}), Product("d", "x")]
    store = ColumnStore(products)
    codes, values, nums = store.column("v")
    assert store.column("v")[0] is codes
    assert values == [True, 1, 1.0, None] and codes.tolist() == [0, 1, 2, 3]  # True, 1, 1.0 not merged
    assert np.isnan(nums[0]) and nums[1] == 1.0 and np.isnan(nums[3])  # a bool is not a number
    assert store.mask(parse_filter("v=true")).tolist() == [True, False, False, False]
    assert store.mask(parse_filter("v>=1")).tolist() == [False, True, True, False]


def _old_facets(items: list[list[tuple[str, str]]], max_values: int, max_distinct: int) -> dict:
    counters: dict[str, Counter[str]] = {}
    for product_items in items:
        for key, value in product_items:
            counters.setdefault(key, Counter())[value] += 1
    return {k: dict(c.most_common(max_values)) for k, c in counters.items() if len(c) <= max_distinct}


def test_facet_counts_same_values_and_order_as_a_counter_per_field() -> None:
    rng = random.Random(3)
    for _ in range(200):
        items = [[(rng.choice("abcde"), str(rng.randrange(rng.choice([3, 30, 300])))) for _ in range(rng.randrange(6))]
                 for _ in range(rng.randrange(300))]
        mv, md = rng.choice([1, 3, 20]), rng.choice([5, 200])
        want, got = _old_facets(items, mv, md), facet_counts(items, mv, md)
        assert list(got) == list(want)
        assert all(list(got[k].items()) == list(want[k].items()) for k in want)


def test_lazy_rows_compute_on_first_use_only() -> None:
    products = _products(50)
    calls: list[str] = []

    def fn(p: Product) -> list[tuple[str, str]]:
        calls.append(p.id)
        return facet_items(p)

    rows = LazyRows(products, fn)
    assert len(rows) == 50 and not calls
    assert rows[7] == facet_items(products[7]) and rows[np.int64(7)] is rows[7]
    assert calls == ["p7"]
    assert rows[2:4] == [facet_items(products[2]), facet_items(products[3])]
    assert list(rows) == [facet_items(p) for p in products]
    assert len(calls) == 50


def _write_state(tmp_path: Path, n: int, photos_per_product: int = 1) -> Path:
    """A small index folder written by the library's writer (no encoder needed)."""
    from shoplens.index.lexical import LexicalIndex

    rng = np.random.default_rng(0)
    products = _products(n)
    text = rng.standard_normal((n, 16)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    m = n * photos_per_product
    image = rng.standard_normal((m, 8)).astype(np.float32)
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    owner = np.repeat(np.arange(n), photos_per_product)
    root = tmp_path / "idx"
    scratch, final = atomic.new_generation_dir(root)
    lexical = LexicalIndex(scratch / "bm25")
    lexical.upsert(products)
    st = IndexState(Config(), products, text, np.ones(n, bool), image, owner, [f"{i}.jpg" for i in owner], {},
                    lexical, "t", "i")
    st.save(scratch)
    atomic.publish(root, scratch, final)
    return root


def test_loaded_text_index_searches_the_memory_map_and_photos_need_no_mean(tmp_path: Path) -> None:
    root = _write_state(tmp_path, 60)
    st = IndexState.load(atomic.current_generation(root))
    assert isinstance(st.text_index.vectors, np.memmap)  # no RAM copy when every product has text
    assert st.product_image_vectors is st.image_vectors  # one photo each: the photo matrix itself
    assert not st.has_image.flags.writeable and st.has_image.all()
    many = IndexState.load(atomic.current_generation(_write_state(tmp_path / "b", 30, photos_per_product=2)))
    pim = many.product_image_vectors
    mean = np.asarray(many.image_vectors).reshape(30, 2, 8).sum(axis=1)
    np.testing.assert_allclose(pim, mean / np.linalg.norm(mean, axis=1, keepdims=True), atol=1e-6)


@pytest.mark.parametrize("cfg", [IndexConfig(), IndexConfig(vector_dtype="int8", ann_kind="ivf", ann_threshold=100)])
@pytest.mark.parametrize("photos", [1, 3])
def test_filtered_search_with_cached_row_masks_matches_exact(cfg: IndexConfig, photos: int) -> None:
    rng = np.random.default_rng(1)
    n = 400
    x = rng.standard_normal((n * photos, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    owners = np.tile(np.arange(n), photos)  # not in product order: rows are mapped to products
    index = VectorIndex(x, owners, n, cfg)
    for share in (0.02, 0.3, 0.9):
        allowed = rng.random(n) < share
        q = x[rng.integers(len(x))]
        per_product = np.full(n, -np.inf, np.float32)
        np.maximum.at(per_product, owners, x @ q)
        k = min(10, int(allowed.sum()))
        want = [int(r) for r in np.argsort(-np.where(allowed, per_product, -np.inf), kind="stable")[:k]]
        first = index.search(q, 10, allowed)
        again = index.search(q, 10, allowed)  # the row mask, subset and bitmap come from the cache
        assert first == again
        assert all(allowed[r] for r, _ in first)
        hits = len({r for r, _ in first} & set(want))
        assert hits >= (k if not index.uses_ann else k - 1)
    assert len(index._masks) == 3


def test_one_thread_is_per_thread_and_restored() -> None:
    import faiss

    before = faiss.omp_get_max_threads()

    def in_new_thread() -> int:
        seen: list[int] = []
        t = threading.Thread(target=lambda: seen.append(faiss.omp_get_max_threads()))
        t.start()
        t.join()
        return seen[0]

    faiss.omp_set_num_threads(2)
    try:
        elsewhere = in_new_thread()  # what a thread that never set it gets (the process default)
        with one_thread():
            assert faiss.omp_get_max_threads() == 1
            assert in_new_thread() == elsewhere  # another thread (a build) is not limited meanwhile
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)


def test_engine_facets_and_filters_unchanged_on_a_real_build(tmp_path: Path, fake_config: Config, tiny_catalog: Path) -> None:
    engine = Engine(tmp_path / "idx", fake_config)
    engine.add_catalog(tiny_catalog)
    res = engine.search("red", filters=["price<100", "gender=Women"], k=10)
    st = engine.state
    allowed = _old_mask(list(st.products), ["price<100", "gender=Women"])
    assert {h.id for h in res.hits} <= {p.id for p, ok in zip(st.products, allowed, strict=True) if ok}
    counted = _old_facets([facet_items(st.products[st.id_to_row[h.id]]) for h in res.hits], 20, 200)
    if res.total == len(res.hits):
        assert res.facets == counted


def test_facet_counts_from_columns_equal_counting_facet_items() -> None:
    from shoplens.retrieve.filters import facet_counts_rows

    products = _products(500, seed=5)
    store = ColumnStore(products)
    rng = np.random.default_rng(2)
    for _ in range(50):
        rows = rng.permutation(500)[: rng.integers(0, 300)]
        mv, md = int(rng.choice([1, 3, 20])), int(rng.choice([2, 200]))
        want = facet_counts([facet_items(products[r]) for r in rows], mv, md)
        got = facet_counts_rows(store, rows, mv, md)
        assert got is not None and list(got) == list(want)
        assert all(list(got[k].items()) == list(want[k].items()) for k in want)
    shadow = [Product("a", "x", attributes={"brand": "B"})]
    assert facet_counts_rows(ColumnStore(shadow), [0]) is None  # an attribute shadows a canonical field


def test_auto_compact_above_the_ann_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss

    from shoplens.index import vectors
    from shoplens.index.vectors import effective_config

    assert effective_config(IndexConfig(), 199_999) == IndexConfig()  # HNSW up to AUTO_COMPACT_MIN
    assert effective_config(IndexConfig(), 200_000).ann_kind == "ivf"
    monkeypatch.setattr(vectors, "AUTO_COMPACT_MIN", 1000)

    small, big = IndexConfig(ann_threshold=1000), IndexConfig(ann_threshold=1000, auto_compact=False)
    assert effective_config(small, 999) is small
    assert (effective_config(small, 1000).vector_dtype, effective_config(small, 1000).ann_kind) == ("int8", "ivf")
    assert effective_config(big, 10**6) is big  # opted out: float32 HNSW
    explicit = IndexConfig(ann_threshold=1000, vector_dtype="float16", ann_kind="hnsw")
    assert effective_config(explicit, 10**6) is explicit
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    auto = VectorIndex(x, np.arange(2000), 2000, small)
    assert isinstance(faiss.downcast_index(auto._ann_index()), faiss.IndexIVFScalarQuantizer)
    exact = VectorIndex(x, np.arange(2000), 2000, IndexConfig())
    hnsw = VectorIndex(x, np.arange(2000), 2000, big)
    hnsw.save_ann(tmp_path / "old.hnsw")  # an index built before auto_compact: its graph still serves
    old = VectorIndex(x, np.arange(2000), 2000, small, VectorIndex.load_ann(tmp_path / "old.hnsw"))
    for q in x[:20]:
        want = [r for r, _ in exact.search(q, 10)]
        assert len({r for r, _ in auto.search(q, 10)} & set(want)) >= 9
        assert len({r for r, _ in old.search(q, 10)} & set(want)) >= 9


def test_stored_facet_columns_are_read_back_and_count_the_same(tmp_path: Path) -> None:
    from shoplens.retrieve.filters import facet_counts_rows

    root = _write_state(tmp_path, 300)
    folder = atomic.current_generation(root)
    assert (folder / "facets.json").is_file() and (folder / "facet_codes.npy").is_file()
    st = IndexState.load(folder)
    assert st.columns._facet_fields is not None  # seeded from the files, not built from products
    fresh = ColumnStore(st.products)
    rows = np.random.default_rng(1).permutation(300)[:120]
    assert facet_counts_rows(st.columns, rows) == facet_counts_rows(fresh, rows)
    for name in fresh.facet_fields():
        codes, labels = st.columns.facet_column(name)
        want_codes, want_labels = fresh.facet_column(name)
        np.testing.assert_array_equal(np.asarray(codes), want_codes)
        assert labels == want_labels
    # An index written before the columns were stored builds them at first use, as before.
    (folder / "facets.json").unlink()
    old = IndexState.load(folder)
    assert old.columns._facet_fields is None
    assert facet_counts_rows(old.columns, rows) == facet_counts_rows(fresh, rows)


def test_facet_columns_that_do_not_match_the_products_are_a_clear_error(tmp_path: Path) -> None:
    from shoplens.errors import IndexError_

    folder = atomic.current_generation(_write_state(tmp_path, 40))
    np.save(folder / "facet_codes.npy", np.zeros((39, 5), np.int32))
    with pytest.raises(IndexError_, match="facet columns"):
        IndexState.load(folder)


def test_product_list_round_trip_fast_and_lenient(tmp_path: Path) -> None:
    import json
    from types import MappingProxyType

    from shoplens.index.state import read_products, write_products

    products = _products(50) + [Product("x/1", "红色 毛衣", images=("a.jpg", "b.jpg"), price=5)]
    path = tmp_path / "products.jsonl"
    write_products(path, products)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [p.to_dict() for p in products]  # the same objects as to_dict
    assert read_products(path) == products
    # A mapping type msgspec cannot encode falls back to json for the whole file.
    odd = [Product("m", "t", attributes=MappingProxyType({"k": "v"}))]
    write_products(path, odd)
    assert read_products(path) == [Product("m", "t", attributes={"k": "v"})]
    # Lines with other value types (an int id, nulls) and blank lines: read leniently.
    path.write_text('{"id": 7, "title": null, "images": null}\n\n{"id": "b", "title": "t"}\n', encoding="utf-8")
    assert read_products(path) == [Product("7"), Product("b", "t")]


def test_big_indexes_leave_the_cyclic_gc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from shoplens.index import state as state_mod

    folder = atomic.current_generation(_write_state(tmp_path, 30))
    was_on = gc.isenabled()
    IndexState.load(folder)
    assert gc.isenabled() == was_on
    monkeypatch.setattr(state_mod, "FREEZE_PRODUCTS", 10)
    before = gc.get_freeze_count()
    try:
        st = IndexState.load(folder)
        assert gc.get_freeze_count() > before and gc.isenabled() == was_on
        assert st.n == 30
    finally:
        gc.unfreeze()


def test_kept_rows_reads_a_full_in_order_keep_without_a_copy(tmp_path: Path) -> None:
    from shoplens.index.build import kept_rows

    arr = np.arange(20, dtype=np.float32).reshape(10, 2)
    np.save(tmp_path / "a.npy", arr)
    mm = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert kept_rows(mm, np.arange(10)) is mm  # an append: the memory map itself, read once by the merge
    np.testing.assert_array_equal(kept_rows(mm, np.array([0, 2, 9])), arr[[0, 2, 9]])
    np.testing.assert_array_equal(kept_rows(mm, np.array([1, 0, 2, 3, 4, 5, 6, 7, 8, 9])), arr[[1, 0, 2, 3, 4, 5, 6, 7, 8, 9]])
    assert kept_rows(mm[:0], np.arange(0)).shape == (0, 2)


def test_stacked_gathers_kept_rows_into_one_array(tmp_path) -> None:
    import numpy as np

    from shoplens.index.build import stacked

    rng = np.random.default_rng(0)
    old = rng.normal(size=(50, 4)).astype(np.float32)
    np.save(tmp_path / "m.npy", old)
    mm = np.load(tmp_path / "m.npy", mmap_mode="r")
    new = rng.normal(size=(3, 4)).astype(np.float32)
    rows = np.array([0, 2, 3, 10, 49], np.int64)
    np.testing.assert_array_equal(stacked(mm, rows, new, 4), np.concatenate([old[rows], new]))
    np.testing.assert_array_equal(stacked(mm, np.arange(50), new, 4), np.concatenate([old, new]))  # an append
    assert stacked(mm, np.zeros(0, np.int64), np.zeros((0, 4), np.float32), 4).shape == (0, 4)
    assert stacked(np.zeros((0, 0), np.float32), np.zeros(0, np.int64), new, 4).shape == (3, 4)
