"""Serve fixtures: the demo index behind a TestClient, writable copies, and a live loopback server."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'shoplens[serve]'")
pytest.importorskip("httpx", reason="httpx is needed for the FastAPI TestClient")

import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from shoplens import Engine  # noqa: E402
from shoplens.serve.app import create_app  # noqa: E402
from shoplens.serve.settings import ServeSettings  # noqa: E402

DEMO_DIR = Path(__file__).resolve().parents[2] / "shoplens" / "data" / "demo"
API_KEY = "test-key-0123456789"
AUTH = {"X-API-Key": API_KEY}


def serve_settings(index: Path, **overrides: Any) -> ServeSettings:
    values: dict[str, Any] = {"api_key": API_KEY, "warmup": False, "event_key": "test-event-key"}
    values.update(overrides)
    return ServeSettings(index=str(index), **values)


def share_encoders(src: Engine, dst: Engine) -> Engine:
    """Hand an open engine's loaded models to another (test shortcut: loading them again costs seconds)."""
    dst._text_encoder = src.text_encoder  # noqa: SLF001
    dst._image_encoder = src.image_encoder  # noqa: SLF001
    return dst


def copy_engine(src: Engine, dest: Path) -> Engine:
    """A private, writable copy of an index, sharing the source engine's models."""
    shutil.copytree(src.path, dest, ignore=shutil.ignore_patterns(".write.lock", "events"))
    return share_encoders(src, Engine.open(dest))


@pytest.fixture(scope="session")
def client(demo_index: Engine) -> Iterator[TestClient]:
    """The demo index, read-only, behind the app (writes in other tests go to copies)."""
    app = create_app(serve_settings(demo_index.path), engine=demo_index)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def write_engine(demo_index: Engine, tmp_path: Path) -> Engine:
    return copy_engine(demo_index, tmp_path / "index")


@pytest.fixture
def write_client(write_engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    """A writable copy of the demo index; photos may be named relative to ``tmp_path / 'photos'``."""
    root = tmp_path / "photos"
    root.mkdir()
    app = create_app(serve_settings(write_engine.path, image_root=str(root)), engine=write_engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
def shop_engine(demo_index: Engine, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The demo catalogue as a shop: prices, and brands for packaged goods (for the page and its screenshots)."""
    engine = copy_engine(demo_index, tmp_path_factory.mktemp("shop") / "index")
    priced = []
    for p in engine.products():
        n = int(p.id) if p.id.isdigit() else 0
        words = p.title.split()
        brand = " ".join(words[:2] if words[0] == "God" else words[:1])  # "God Morgon" is one brand
        brand = brand if p.attributes.get("top_category") == "Packages" else ""
        priced.append(dataclasses.replace(p, price=round(0.79 + (n * 37 % 400) / 100, 2), brand=brand))
    engine.upsert(priced)
    return engine


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Run the app under uvicorn on a free loopback port in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
