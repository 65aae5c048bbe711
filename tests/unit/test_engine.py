"""The Engine facade with fake encoders: build, update, delete, search, filters, atomicity."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from shoplens import Config, Engine, Product
from shoplens.errors import IndexError_, NotFoundError, QueryError
from shoplens.index import atomic

from ..conftest import COLOURS, solid


def build(tmp_path: Path, catalog: Path, cfg: Config) -> Engine:
    engine = Engine(tmp_path / "idx", cfg)
    engine.add_catalog(catalog)
    return engine


def test_index_text_image_and_photo_only(tmp_path: Path, tiny_catalog: Path, fake_config: Config) -> None:
    engine = build(tmp_path, tiny_catalog, fake_config)
    assert len(engine) == 8
    st = engine.state
    assert st.has_text.sum() == 6 and st.has_image.sum() == 6
    hit = engine.search("wool sweater", k=3).hits[0]
    assert hit.id == "p3" and "bm25" in hit.signals and "text" in hit.signals


def test_photo_query_finds_photo_only_product(tmp_path: Path, tiny_catalog: Path, fake_config: Config) -> None:
    engine = build(tmp_path, tiny_catalog, fake_config)
    query = solid(tmp_path / "q.jpg", COLOURS["blue"], (80, 80))
    ids = [h.id for h in engine.search(image=str(query), k=2).hits]
    assert set(ids) == {"p2", "p8"}


def test_reopen_uses_stored_vectors_without_encoding(
    tmp_path: Path, tiny_catalog: Path, fake_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(tmp_path, tiny_catalog, fake_config)
    reopened = Engine.open(tmp_path / "idx")
    assert reopened.config.encode.text_encoder == "fake"

    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("loading an index must not encode products")

    monkeypatch.setattr("shoplens.engine.encode_texts", boom)
    monkeypatch.setattr("shoplens.engine.encode_images", boom)
    assert reopened.search("denim jeans", k=1).hits[0].id == "p2"
    assert reopened.similar("p1", k=1).hits


def test_upsert_update_and_delete_are_incremental(tmp_path: Path, tiny_catalog: Path, fake_config: Config) -> None:
    engine = build(tmp_path, tiny_catalog, fake_config)
    report = engine.upsert([Product("p9", title="Purple Silk Scarf", category="Scarves")])
    assert (report.added, report.updated) == (1, 0)
    report = engine.upsert([Product("p1", title="Red Linen Dress", category="Dresses")])
    assert (report.added, report.updated) == (0, 1)
    assert engine.get("p1").title == "Red Linen Dress"
    assert engine.search("silk scarf", k=1).hits[0].id == "p9"
    assert engine.delete(["p9"]) == 1
    assert all(h.id != "p9" for h in engine.search("silk scarf", k=10).hits)
    with pytest.raises(NotFoundError):
        engine.get("p9")
    # The updated product keeps its photo only if the update gave one: here it did not.
    assert engine.get("p1").images == ()
    assert len(Engine.open(tmp_path / "idx")) == 8


def test_delete_unknown_id_changes_nothing(tmp_path: Path, tiny_catalog: Path, fake_config: Config) -> None:
    engine = build(tmp_path, tiny_catalog, fake_config)
    with pytest.raises(NotFoundError, match="nope"):
        engine.delete(["p1", "nope"])
    assert len(Engine.open(tmp_path / "idx")) == 8


def test_crash_mid_write_keeps_previous_index(
    tmp_path: Path, tiny_catalog: Path, fake_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = build(tmp_path, tiny_catalog, fake_config)
    before = atomic.current_generation(tmp_path / "idx")

    def crash(*_a: object, **_k: object) -> None:
        raise RuntimeError("simulated crash while writing")

    monkeypatch.setattr("shoplens.index.state.IndexState.save", crash)
    with pytest.raises(RuntimeError):
        engine.upsert([Product("p10", title="Never Stored")])
    assert atomic.current_generation(tmp_path / "idx") == before
    reopened = Engine.open(tmp_path / "idx")
    assert len(reopened) == 8
    with pytest.raises(NotFoundError):
        reopened.get("p10")
    assert not list((tmp_path / "idx").glob(".building-*"))


def test_bad_rows_never_lose_stored_products(tmp_path: Path, tiny_catalog: Path, fake_config: Config) -> None:
    engine = build(tmp_path, tiny_catalog, fake_config)
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    update = tmp_path / "update.csv"
    with update.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "image", "price"])
        w.writerow(["p1", "Red Dress v2", "corrupt.jpg", "10"])  # corrupt photo: row skipped
        w.writerow(["p2", "Blue Jeans v2", "", "abc"])  # bad price: row skipped
        w.writerow(["", "No id", "", ""])  # missing id
        w.writerow(["p11", "Orange Hat", "", "5"])
    report = engine.add_catalog(update, replace=True)
    reasons = {(s.row, s.field) for s in report.skipped}
    assert reasons == {(1, "image"), (2, "price"), (3, "id")}
    assert report.added == 1
    # replace=True drops products absent from the file, but keeps the ones whose rows were bad.
    assert engine.get("p1").title == "Red Cotton Dress"
    assert engine.get("p2").title == "Blue Denim Jeans"
    assert {p.id for p in engine.products()} == {"p1", "p2", "p11"}


def test_filters_and_facets(tmp_path: Path, tiny_catalog: Path, fake_config: Config) -> None:
    engine = build(tmp_path, tiny_catalog, fake_config)
    res = engine.search("red", filters=["gender=Women", "price<100"], k=10)
    assert res.hits and all(h.product.attributes["gender"] == "Women" for h in res.hits)
    assert all(h.product.price is not None and h.product.price < 100 for h in res.hits)
    res = engine.search("blue", filters=["category in [Jeans, Shoes]"], k=10)
    assert {h.id for h in res.hits} <= {"p2", "p6", "p8"}
    assert set(res.facets["category"]) <= {"Jeans", "Shoes"}
    assert sum(res.facets["gender"].values()) == res.total


def test_similar_uses_fused_space(tmp_path: Path, tiny_catalog: Path, fake_config: Config) -> None:
    engine = build(tmp_path, tiny_catalog, fake_config)
    res = engine.similar("p7", k=1)  # photo-only red dress → the red dress with a photo
    assert res.hits[0].id == "p1"
    assert all(h.id != "p7" for h in engine.similar("p7", k=7).hits)
    with pytest.raises(NotFoundError):
        engine.similar("missing")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"text": ""}, "empty query"),
        ({"text": "   "}, "empty query"),
        ({"text": "x" * 10_000}, "limit"),
        ({"text": "dress", "k": 0}, "k must be"),
        ({"text": "dress", "filters": ["price<cheap"]}, "not a number"),
        ({"text": "dress", "filters": ["nonsense"]}, "cannot parse filter"),
    ],
)
def test_bad_queries_get_clear_errors(
    tmp_path: Path, tiny_catalog: Path, fake_config: Config, kwargs: dict, message: str
) -> None:
    engine = build(tmp_path, tiny_catalog, fake_config)
    with pytest.raises(QueryError, match=message):
        engine.search(**kwargs)


def test_wrong_query_type(tmp_path: Path, tiny_catalog: Path, fake_config: Config) -> None:
    engine = build(tmp_path, tiny_catalog, fake_config)
    with pytest.raises(QueryError, match="string"):
        engine.search(123)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="query photo must be a path, URL, bytes or PIL image, got ndarray"):
        engine.search(image=np.zeros((8, 8, 3), np.uint8))  # type: ignore[arg-type]


def test_a_query_photo_may_be_a_path_bytes_or_an_opened_image(
    tmp_path: Path, tiny_catalog: Path, fake_config: Config
) -> None:
    from PIL import Image

    engine = build(tmp_path, tiny_catalog, fake_config)
    query = solid(tmp_path / "q.jpg", COLOURS["blue"], (80, 80))
    want = [h.id for h in engine.search(image=str(query), k=3).hits]
    assert [h.id for h in engine.search(image=query, k=3).hits] == want  # a Path
    assert [h.id for h in engine.search(image=query.read_bytes(), k=3).hits] == want
    with Image.open(query) as img:
        assert [h.id for h in engine.search(image=img, k=3).hits] == want
        assert [h.id for h in engine.search(image=img.convert("L").convert("RGBA"), k=3).hits]


def test_corrupt_query_photo(tmp_path: Path, tiny_catalog: Path, fake_config: Config) -> None:
    from shoplens.errors import ImageError

    engine = build(tmp_path, tiny_catalog, fake_config)
    with pytest.raises(ImageError):
        engine.search(image=b"GIF89a broken")
    with pytest.raises(ImageError):
        engine.search(image=str(tmp_path / "missing.jpg"))


def test_open_missing_or_broken_index(tmp_path: Path) -> None:
    with pytest.raises(IndexError_, match="not a shoplens index"):
        Engine.open(tmp_path / "nothing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "CURRENT").write_text("gen-000009")
    with pytest.raises(IndexError_, match="missing generation"):
        Engine.open(tmp_path / "broken")


def test_old_generations_are_collected(tmp_path: Path, tiny_catalog: Path, fake_config: Config) -> None:
    engine = build(tmp_path, tiny_catalog, fake_config)
    for i in range(4):
        engine.upsert([Product(f"n{i}", title=f"New product {i}")])
    assert len(atomic.generations(tmp_path / "idx")) == fake_config.index.keep_generations


def test_text_only_catalogue(tmp_path: Path, fake_config: Config) -> None:
    """Regression: a catalogue without any photo used to fail building its (empty) image array."""
    path = tmp_path / "text.jsonl"
    path.write_text('{"id": "a", "title": "green tea"}\n{"id": "b", "title": "black coffee"}\n')
    engine = Engine(tmp_path / "idx", fake_config)
    assert engine.add_catalog(path).added == 2
    assert engine.search("green tea", k=1).hits[0].id == "a"
    assert engine.similar("a", k=1).hits[0].id == "b"
    engine.upsert([Product("c", title="white tea", images=())])
    assert len(Engine.open(tmp_path / "idx")) == 3


def test_products_keep_the_date_they_were_first_added(
    tmp_path: Path, tiny_catalog: Path, fake_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from shoplens.index import build as build_module

    now = [1_000.0]
    monkeypatch.setattr(build_module, "listing_time", lambda: now[0])
    engine = build(tmp_path, tiny_catalog, fake_config)  # all listed at t=1000
    now[0] = 2_000.0
    engine.upsert([Product("p9", title="Purple Silk Scarf")])  # new at t=2000
    now[0] = 3_000.0
    engine.upsert([Product("p1", title="Red Linen Dress")])  # an update at t=3000 keeps t=1000
    engine.delete(["p2"])
    st = Engine.open(tmp_path / "idx").state
    added = dict(zip((p.id for p in st.products), st.added.tolist(), strict=True))
    assert added["p1"] == added["p3"] == 1_000.0 and added["p9"] == 2_000.0 and "p2" not in added
    # An index written before dates were recorded: its products date from the generation's folder.
    gen = st.path
    (gen / "added.npy").unlink()
    assert Engine.open(tmp_path / "idx").state.added is None
    monkeypatch.setattr(build_module, "listing_time", lambda: 9_000.0)
    Engine.open(tmp_path / "idx").upsert([Product("p10", title="Blue Cap")])
    st = Engine.open(tmp_path / "idx").state
    dates = dict(zip((p.id for p in st.products), st.added.tolist(), strict=True))
    assert dates["p10"] == 9_000.0 and dates["p1"] == gen.stat().st_mtime
    assert np.all(np.isfinite(st.added))


def test_freshness_feature_counts_days_before_the_newest_listing(
    tmp_path: Path, tiny_catalog: Path, fake_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from shoplens.index import build as build_module
    from shoplens.rank.features import FEATURES, listing_age_log

    now = [0.0]
    monkeypatch.setattr(build_module, "listing_time", lambda: now[0])
    engine = build(tmp_path, tiny_catalog, fake_config)
    assert not listing_age_log(engine.state).any()  # all listed at once: no signal
    now[0] = 9 * 86_400.0
    engine.upsert([Product("p9", title="Purple Silk Scarf")])
    st = engine.state
    age = dict(zip((p.id for p in st.products), listing_age_log(st).tolist(), strict=True))
    assert age["p9"] == 0.0 and age["p1"] == pytest.approx(np.log1p(9.0))
    assert "age_log" in FEATURES
