"""Alignment heads: training recovers a known mapping, is seeded, saves and loads; bridges in the engine."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from shoplens import Config, Engine, Product
from shoplens.config import AlignConfig
from shoplens.encode.base import l2_normalize
from shoplens.fuse.align import AlignModel, fit_ridge, knn_transfer, train_photo, train_text_image

from ..conftest import COLOURS, solid


def paired_data(n: int = 300, d_in: int = 24, d_out: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d_in)).astype(np.float32)
    w = rng.normal(size=(d_in, d_out)).astype(np.float32)
    return x, l2_normalize(x @ w)


def test_text_image_head_learns_a_linear_map_and_is_seeded() -> None:
    x, t = paired_data()
    cfg = AlignConfig(epochs=30, patience=30, batch_size=64, lr=1e-2, dropout=0.0, holdout=0.2)
    head, report = train_text_image(x, t, cfg, progress=False)
    assert report["heldout_text_to_image_recall@10"] > 0.9
    assert report["pairs"] == 300 and report["heldout"] == 60
    cos = (head.apply(x) * t).sum(axis=1)
    assert float(np.median(cos)) > 0.5  # InfoNCE fits directions for ranking, not exact values
    again, _ = train_text_image(x, t, cfg, progress=False)
    np.testing.assert_allclose(again.weight, head.weight, atol=1e-6)


def test_ridge_start_is_where_the_head_begins_and_converges_sooner() -> None:
    from shoplens.fuse.align import _split, ridge_start

    x, t = paired_data(n=400, seed=4)
    cfg = AlignConfig(epochs=30, patience=3, batch_size=64, lr=1e-3, dropout=0.0, holdout=0.2)
    start = ridge_start(x, t, cfg)
    train, _val = _split(len(x), cfg.holdout, cfg.seed)
    # Fitted on the training split only: the held-out products stay unseen by the head's start.
    np.testing.assert_allclose(start.head.weight, fit_ridge(x[train], t[train]).weight, rtol=1e-5, atol=1e-6)
    # Zero epochs of training is the start itself (nothing random left in it).
    zero, _ = train_text_image(x, t, AlignConfig(epochs=0, holdout=0.2), progress=False, init=start.head)
    assert zero.weight.shape == start.head.weight.shape
    warm, warm_report = train_text_image(x, t, cfg, progress=False, init=start.head)
    cold, cold_report = train_text_image(x, t, cfg, progress=False)
    assert warm_report["start"] == "given" and cold_report["start"] == "random"
    assert warm_report["heldout_text_to_image_recall@10"] >= cold_report["heldout_text_to_image_recall@10"]
    assert warm_report["best_epoch"] <= cold_report["best_epoch"]
    with pytest.raises(ValueError, match="init head"):
        train_text_image(x[:, :10], t, cfg, progress=False, init=start.head)


def test_head_start_must_be_known() -> None:
    from shoplens.errors import ConfigError

    with pytest.raises(ConfigError, match="head_start"):
        AlignConfig(head_start="zeros")


def test_ridge_recovers_exact_map() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    w = rng.normal(size=(8, 4)).astype(np.float32)
    head = fit_ridge(x, x @ w, lam=1e-6)
    np.testing.assert_allclose(head.weight, w, atol=1e-3)


def test_knn_transfer_hand_worked() -> None:
    gallery = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    values = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    # k=1: each query copies its nearest gallery item's value.
    out = knn_transfer(np.array([[0.9, 0.1], [0.2, 0.8]], np.float32), gallery, values, k=1)
    np.testing.assert_allclose(out, values)
    # k=2 with an equidistant query: equal weights → the normalised mean of both values.
    out = knn_transfer(np.array([[0.7071, 0.7071]], np.float32), gallery, values, k=2)
    np.testing.assert_allclose(out[0], [0.7071, 0.7071, 0.0], atol=1e-3)


def test_photo_head_groups_photos_of_a_product() -> None:
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(30, 32)).astype(np.float32)
    owners = np.repeat(np.arange(30), 4)
    v = l2_normalize(centres[owners] + 0.8 * rng.normal(size=(120, 32)).astype(np.float32))
    cfg = AlignConfig(photo_epochs=40, photo_dim=16, batch_size=64, lr=1e-2, holdout=0.2)
    head, report = train_photo(v, owners, cfg, progress=False)
    assert report["heldout_photo_to_product_accuracy"] > 0.8
    assert head.d_out == 16


def test_model_save_load_round_trip(tmp_path: Path) -> None:
    x, t = paired_data(n=80)
    cfg = AlignConfig(epochs=2, batch_size=32)
    head, report = train_text_image(x, t, cfg, progress=False)
    model = AlignModel(head, None, 0.5, {"text_image": report}, fit_ridge(x, t))
    model.save(tmp_path / "m")
    loaded = AlignModel.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.project(x), model.project(x), atol=1e-6)
    assert loaded.reports["text_image"]["data_hash"] == report["data_hash"]


@pytest.fixture
def half_photo_only(tmp_path: Path) -> Path:
    """40 titled products with photos (4 colours) and 8 photo-only products."""
    rows = []
    names = list(COLOURS)
    for i in range(48):
        colour = names[i % 4]
        solid(tmp_path / "img" / f"{i}.jpg", COLOURS[colour], (40 + i % 7, 40))
        title = f"{colour} item" if i < 40 else ""
        rows.append((f"p{i}", title, f"img/{i}.jpg"))
    path = tmp_path / "cat.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "image"])
        w.writerows(rows)
    return path


def test_text_query_reaches_photo_only_products(tmp_path: Path, half_photo_only: Path, fake_config: Config) -> None:
    cfg = fake_config.replace(align={"min_pairs": 20, "epochs": 30, "lr": 1e-2, "dropout": 0.0})
    engine = Engine(tmp_path / "idx", cfg)
    engine.add_catalog(half_photo_only)
    assert engine.state.align is not None and engine.state.align.text_image is not None
    res = engine.search("blue item", k=48)
    photo_only = [h for h in res.hits if not h.product.title]
    assert photo_only, "photo-only products must be reachable by text"
    assert all("xmodal" in h.signals for h in photo_only)
    # The best-ranked photo-only products are the blue ones (ids 41 and 45: i % 4 == 1).
    assert {h.id for h in photo_only[:2]} == {"p41", "p45"}
    # Reopening uses the stored model; an index built with --align reuses it elsewhere.
    reopened = Engine.open(tmp_path / "idx")
    assert [h.id for h in reopened.search("blue item", k=48).hits] == [h.id for h in res.hits]
    other = Engine(tmp_path / "other", cfg.replace(align={"enabled": False}))
    engine.state.align.save(tmp_path / "model")
    other.align_source = tmp_path / "model"
    other.add_catalog(half_photo_only)
    assert other.state.align is not None


def test_effective_patience_by_hand() -> None:
    from shoplens.fuse.align import effective_patience

    assert effective_patience(6, 12_000, 1_979) == 6  # the dev catalogue: round(6.06) = 6 epochs
    assert effective_patience(6, 12_000, 500) == 6  # small catalogues: never more than ``patience``
    assert effective_patience(6, 12_000, 4_000) == 3  # 12,000 / 4,000
    assert effective_patience(6, 12_000, 8_370) == 2  # round(1.43) = 1, but at least 2 epochs
    assert effective_patience(1, 12_000, 8_370) == 1  # the floor never raises a smaller patience
    assert effective_patience(6, 0, 8_370) == 6 and effective_patience(6, 12_000, 0) == 6


def test_bridge_parts_share_the_gram_matrix() -> None:
    from shoplens.fuse.align import _split, bridge_parts, gram

    rng = np.random.default_rng(3)
    x, t = rng.normal(size=(60, 12)).astype(np.float32), rng.normal(size=(60, 5)).astype(np.float32)
    images = rng.normal(size=(60, 8)).astype(np.float32)
    cfg = AlignConfig(holdout=0.2)
    ridge_all, (ridge_val, knn_val) = bridge_parts(x, t, images, cfg)
    train, val = _split(60, cfg.holdout, cfg.seed)
    np.testing.assert_allclose(ridge_all.weight, fit_ridge(x, t).weight, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ridge_val, fit_ridge(x[train], t[train]).apply(x[val]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(knn_val, knn_transfer(images[val], images[train], t[train]), atol=1e-6)
    np.testing.assert_allclose(gram(x), x.astype(np.float64).T @ x.astype(np.float64))


def test_a_first_build_reuses_a_cached_alignment(
    tmp_path: Path, half_photo_only: Path, fake_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from shoplens.index import build as build_module

    cfg = fake_config.replace(
        encode={"cache": True, "cache_dir": str(tmp_path / "cache")},
        align={"min_pairs": 20, "epochs": 5, "lr": 1e-2, "dropout": 0.0},
    )
    trained = []
    real = build_module.prepare_alignment
    monkeypatch.setattr(build_module, "prepare_alignment", lambda *a, **k: trained.append(1) or real(*a, **k))
    first = Engine(tmp_path / "a", cfg)
    first.add_catalog(half_photo_only)
    assert len(trained) == 1 and first.state.align is not None and first.state.align.text_image is not None
    again = Engine(tmp_path / "b", cfg)  # the same catalogue into a new folder: no training
    again.add_catalog(half_photo_only)
    assert len(trained) == 1 and again.state.align is not None and again.state.align.text_image is not None
    np.testing.assert_array_equal(again.state.align.text_image.weight, first.state.align.text_image.weight)
    assert [h.id for h in again.search("blue item", k=10).hits] == [h.id for h in first.search("blue item", k=10).hits]
    # Other training settings, or an unreadable entry, train again.
    Engine(tmp_path / "c", cfg.replace(align={"epochs": 4})).add_catalog(half_photo_only)
    assert len(trained) == 2
    for entry in (tmp_path / "cache" / "align").iterdir():
        (entry / "align.json").write_text("{broken")
    Engine(tmp_path / "d", cfg).add_catalog(half_photo_only)
    assert len(trained) == 3
    # Later writes to an index retrain (or keep) from its own previous model, never from the cache.
    again.upsert([Product("new", title="red item")])
    assert len(trained) == 4


def test_heads_train_on_a_bounded_sample_of_products() -> None:
    from shoplens.fuse.bridge import prepare_alignment, product_image_inputs, product_means

    rng = np.random.default_rng(5)
    n, d_img, d_txt = 400, 24, 16
    owners = np.r_[np.arange(n), rng.integers(0, n, 200)]  # every product a photo, some a second
    photos = l2_normalize(rng.normal(size=(len(owners), d_img)).astype(np.float32))
    colour = rng.random((len(owners), 6)).astype(np.float32)
    inputs = product_image_inputs(photos, owners, colour)
    rows = np.array([3, 17, 250], np.int64)
    means, col = inputs(rows)
    dense = product_means(photos, owners, n)[rows]
    np.testing.assert_allclose(means, l2_normalize(dense), atol=1e-6)
    assert col is not None
    np.testing.assert_allclose(col, product_means(colour, owners, n)[rows], atol=1e-6)
    text = l2_normalize(inputs(np.arange(n))[0] @ rng.normal(size=(d_img, d_txt)))
    cfg = AlignConfig(max_pairs=150, min_pairs=50, epochs=3, photo_min_products=10, photo_epochs=2, batch_size=64)
    model = prepare_alignment(cfg, text.astype(np.float32), np.ones(n, bool), np.ones(n, bool), inputs, photos, owners, None, progress=False)
    assert model is not None and model.text_image is not None and model.photo is not None
    report = model.reports["text_image"]
    assert (report["pairs"], report["sampled"], report["train"] + report["heldout"]) == (400, 150, 150)
    photo = model.reports["photo"]
    assert photo["photos"] == len(owners) and photo["sampled_photos"] < len(owners)
    # The catalogue grew < 25% since: the heads are kept, whatever the sample size.
    again = prepare_alignment(cfg, text.astype(np.float32), np.ones(n, bool), np.ones(n, bool), inputs, photos, owners, model, progress=False)
    assert again is not None and again.text_image is model.text_image
