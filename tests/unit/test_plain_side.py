"""Studio shots at a smaller input side: the border test, the per-photo side, the catalogue decision."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from shoplens import Config, Engine
from shoplens.encode.efficientnet import SidePolicy, plain_border_share
from shoplens.index.build import decide_plain_side


def studio(path: Path | None = None, seed: int = 0) -> Image.Image:
    """A textured 'product' in the middle of a plain off-white background."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (150, 200), (246, 246, 244))
    patch = Image.fromarray(rng.integers(0, 255, (120, 80, 3), dtype=np.uint8))
    img.paste(patch, (35, 40))
    ImageDraw.Draw(img).rectangle((50, 20, 100, 40), fill=(200, 30, 30))
    if path is not None:
        img.save(path)
    return img


def scene(path: Path | None = None, seed: int = 0) -> Image.Image:
    """A cluttered photo: texture up to the edges (a shop shelf)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (200, 150, 3), dtype=np.uint8))
    if path is not None:
        img.save(path)
    return img


def test_border_share_tells_studio_shots_from_scenes() -> None:
    assert plain_border_share(studio()) == pytest.approx(1.0)
    assert plain_border_share(scene()) < 0.2
    assert plain_border_share(studio().convert("L")) == pytest.approx(1.0)  # any mode
    assert plain_border_share(Image.new("RGB", (2, 2))) == 0.0  # no border to speak of


def test_side_policy_names_sides_and_keeps_the_order() -> None:
    policy = SidePolicy(224, 176)
    assert policy.name == "efficientnet-lite0-avgpool-224crop-plain176"
    assert SidePolicy(224, 224).plain_size == 0 and SidePolicy(224, 0).name == "efficientnet-lite0-avgpool-224crop"
    photos = [studio(), scene(), studio(seed=1), scene(seed=1)]
    assert policy.sides(photos) == [176, 224, 176, 224]
    seen: list[int] = []

    def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen.append(x.shape[2])  # one batch per side, each preprocessed at its side
        side = np.full((len(x), 1280), float(x.shape[2]), np.float32)
        return side, np.zeros((len(x), 1000), np.float32)

    feats, logits = policy.run(photos, forward)
    assert sorted(seen) == [176, 224]
    assert feats[:, 0].tolist() == [176.0, 224.0, 176.0, 224.0] and logits.shape == (4, 1000)
    assert policy.run([], forward)[0].shape == (0, 1280)


def _refs(tmp_path: Path, n_studio: int, n_scene: int) -> list[str]:
    refs = []
    for make, prefix, n in ((studio, "s", n_studio), (scene, "c", n_scene)):
        for i in range(n):
            make(tmp_path / f"{prefix}{i}.png", seed=i)
            refs.append(str(tmp_path / f"{prefix}{i}.png"))
    return refs


def test_a_catalogue_of_studio_shots_keeps_the_plain_side(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "idx", Config())
    decide_plain_side(engine, None, _refs(tmp_path, 45, 5))  # 90% plain >= 80%, 50 photos
    assert engine.config.encode.plain_image_size == 176


def test_a_catalogue_with_shop_photos_encodes_every_photo_at_one_side(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "idx", Config())
    decide_plain_side(engine, None, _refs(tmp_path, 35, 25) + [str(tmp_path / "missing.jpg")])
    assert engine.config.encode.plain_image_size == 0  # 58% plain; the unreadable photo is not counted


def test_a_first_write_of_a_few_photos_decides_nothing(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "idx", Config())
    decide_plain_side(engine, None, _refs(tmp_path, 20, 0))  # all studio shots, but only 20
    assert engine.config.encode.plain_image_size == 0


def test_an_index_with_photos_keeps_how_they_were_encoded(tmp_path: Path) -> None:
    refs = _refs(tmp_path, 10, 0)
    old: Any = SimpleNamespace(image_vectors=np.zeros((3, 1280)), config=Config().replace(encode={"plain_image_size": 0}))
    engine = Engine(tmp_path / "idx", Config())
    decide_plain_side(engine, old, refs)  # all plain, but the index's photos were encoded without it
    assert engine.config.encode.plain_image_size == 0
    old = SimpleNamespace(image_vectors=np.zeros((3, 1280)), config=Config())
    engine = Engine(tmp_path / "idx", Config())
    decide_plain_side(engine, old, _refs(tmp_path, 0, 4))  # all scenes, but the index used the plain side
    assert engine.config.encode.plain_image_size == 176


def test_encoders_without_a_side_are_left_alone(tmp_path: Path, fake_config: Config) -> None:
    engine = Engine(tmp_path / "idx", fake_config)
    decide_plain_side(engine, None, _refs(tmp_path, 0, 3))
    assert engine.config.encode.plain_image_size == fake_config.encode.plain_image_size


def test_query_photos_get_their_own_encoder_only_when_sides_differ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shoplens import engine as engine_module

    built: list[bool] = []

    def fake_build(cfg: Any, query: bool = False) -> object:
        built.append(query)
        return SimpleNamespace(query=query)

    monkeypatch.setattr(engine_module, "build_image_encoder", fake_build)
    engine = Engine(tmp_path / "a", Config())  # plain side on: queries use every photo at 224
    assert engine.query_image_encoder is not engine.image_encoder
    assert engine.query_image_encoder.query is True and built == [True, False]
    same = Engine(tmp_path / "b", Config().replace(encode={"plain_image_size": 0}))
    assert same.query_image_encoder is same.image_encoder
