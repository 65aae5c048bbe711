"""End to end on the bundled grocery demo with the real default models, offline."""

from __future__ import annotations

import numpy as np
import pytest

from shoplens import Engine

from ..conftest import DEMO

APPLES = {"0", "1", "2", "3", "4"}
MILKS = {p for p in map(str, range(36, 53))}  # the milk, oat/soy milk, sour milk, yoghurt-ish packages


def ids(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.id for h in result.hits]


def test_english_queries(demo_index: Engine) -> None:
    assert ids(demo_index.search("granny smith apple", k=1)) == ["1"]
    assert ids(demo_index.search("oat milk", k=1)) == ["45"]
    assert set(ids(demo_index.search("apple", k=4))) <= APPLES | {"14"}  # 14: Bravo Apple Juice


@pytest.mark.parametrize("query, wanted", [("苹果", APPLES), ("牛奶", MILKS), ("燕麦奶", {"45"})])
def test_chinese_queries_reach_english_catalogue(demo_index: Engine, query: str, wanted: set[str]) -> None:
    top = ids(demo_index.search(query, k=3))
    assert top[0] in wanted, (query, top)


@pytest.mark.parametrize(
    "photo, product",
    [("shelf-banana.jpg", "6"), ("shelf-arla-standard-milk.jpg", "41"), ("shelf-granny-smith.jpg", "1")],
)
def test_shelf_photo_finds_product(demo_index: Engine, photo: str, product: str) -> None:
    top = ids(demo_index.search(image=str(DEMO / "queries" / photo), k=3))
    assert product in top, (photo, top)


def test_text_and_photo_together(demo_index: Engine) -> None:
    res = demo_index.search("banana", image=str(DEMO / "queries" / "shelf-banana.jpg"), k=3)
    assert res.hits[0].id == "6"
    assert {"bm25", "text", "image"} <= set(res.hits[0].signals)


def test_more_like_this(demo_index: Engine) -> None:
    top = ids(demo_index.similar("0", k=3))
    assert "0" not in top and len(set(top) & APPLES) >= 2


def test_text_encoder_is_cross_lingual() -> None:
    from shoplens.encode.use_onnx import USEOnnxTextEncoder

    enc = USEOnnxTextEncoder()
    v = enc.encode(["red dress", "红色连衣裙", "wool sweater", "羊毛衫"])
    assert v.shape == (4, 512)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert v[2] @ v[3] > v[2] @ v[1]


def test_onnx_image_encoder_matches_torch() -> None:
    from pathlib import Path

    from PIL import Image

    from shoplens.config import default_cache_dir
    from shoplens.encode.efficientnet import EfficientNetLite0Onnx, EfficientNetLite0Torch

    photos = [Image.open(p).convert("RGB") for p in sorted((DEMO / "images").glob("*.jpg"))[:4]]
    a = EfficientNetLite0Onnx(Path(default_cache_dir()) / "models").encode(photos)
    b = EfficientNetLite0Torch().encode(photos)
    assert a.shape == (4, 1280)
    assert float((a * b).sum(axis=1).min()) > 0.9999


def test_studio_shots_run_at_the_plain_side() -> None:
    from pathlib import Path

    from PIL import Image

    from shoplens.config import default_cache_dir
    from shoplens.encode.efficientnet import EfficientNetLite0Onnx

    studio = Image.open(DEMO / "images" / "0-studio.jpg").convert("RGB")
    shelf = Image.open(DEMO / "queries" / "shelf-banana.jpg").convert("RGB")
    models = Path(default_cache_dir()) / "models"
    mixed = EfficientNetLite0Onnx(models, plain_size=176).encode([studio, shelf, studio])
    at176 = EfficientNetLite0Onnx(models, size=176).encode([studio])
    at224 = EfficientNetLite0Onnx(models).encode([shelf, studio])
    np.testing.assert_allclose(mixed[[0, 2]], np.vstack([at176, at176]), atol=1e-5)
    np.testing.assert_allclose(mixed[1], at224[0], atol=1e-5)
    assert float(at176[0] @ at224[1]) > 0.8  # the same photo at both sides: close, not equal
    assert float(at176[0] @ at224[1]) < 0.9999
