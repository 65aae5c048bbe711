"""Shared fixtures: an isolated embedding cache, fake and real configs, small catalogues on disk."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from shoplens import Config, Engine

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "shoplens" / "data" / "demo"
SHARED = ROOT.parent / "shared" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test session gets its own embedding/model cache (CI starts cold, so do we)."""
    old = os.environ.get("SHOPLENS_CACHE")
    os.environ["SHOPLENS_CACHE"] = str(tmp_path_factory.mktemp("shoplens-cache"))
    yield
    if old is None:
        os.environ.pop("SHOPLENS_CACHE", None)
    else:
        os.environ["SHOPLENS_CACHE"] = old


@pytest.fixture
def fake_config() -> Config:
    return Config().replace(encode={"text_encoder": "fake", "image_encoder": "fake", "progress": False})


COLOURS = {"red": (220, 30, 30), "blue": (30, 40, 220), "green": (30, 200, 40), "yellow": (240, 230, 30)}


def solid(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> Path:
    """A small photo: a coloured block on white (so crops and thumbnails keep the colour)."""
    img = Image.new("RGB", size, (255, 255, 255))
    img.paste(Image.new("RGB", (size[0] - 16, size[1] - 16), rgb), (8, 8))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, quality=95)
    return path


@pytest.fixture
def tiny_catalog(tmp_path: Path) -> Path:
    """Eight products: text+photo, text only and photo only; attributes for filters and facets."""
    rows = [
        ("p1", "Red Cotton Dress", "A light summer dress", "img/red.jpg", "19.99", "Dresses", "Women", "Red"),
        ("p2", "Blue Denim Jeans", "Straight leg jeans", "img/blue.jpg", "49.50", "Jeans", "Men", "Blue"),
        ("p3", "Green Wool Sweater", "Warm winter knitwear", "img/green.jpg", "65", "Sweaters", "Men", "Green"),
        ("p4", "Yellow Rain Jacket", "", "img/yellow.jpg", "89", "Jackets", "Women", "Yellow"),
        ("p5", "Red Leather Handbag", "Genuine leather", "", "120", "Bags", "Women", "Red"),
        ("p6", "Blue Running Shoes", "Lightweight trainers", "", "75", "Shoes", "Men", "Blue"),
        ("p7", "", "", "img/red2.jpg", "", "", "", ""),  # photo only: no words at all
        ("p8", "", "", "img/blue2.jpg", "", "", "", ""),
    ]
    for name, rgb in [("red", COLOURS["red"]), ("blue", COLOURS["blue"]), ("green", COLOURS["green"]),
                      ("yellow", COLOURS["yellow"]), ("red2", COLOURS["red"]), ("blue2", COLOURS["blue"])]:
        solid(tmp_path / "img" / f"{name}.jpg", rgb)
    path = tmp_path / "catalog.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "description", "image", "price", "category", "gender", "colour"])
        w.writerows(rows)
    return path


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The bundled grocery demo indexed once per session with the real default models."""
    out = tmp_path_factory.mktemp("demo-index") / "index"
    engine = Engine(out, Config().replace(encode={"progress": False}))
    report = engine.add_catalog(DEMO / "catalog.csv")
    assert report.added == 81 and not report.skipped
    return engine
