"""Crash safety: SIGKILL a real ``shoplens serve`` process in the middle of a big PUT /products."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from shoplens import Config, Engine, Product
from shoplens.cli.main import main

from .conftest import API_KEY, AUTH, DEMO_DIR, free_port

BASE = 300
BIG = 6_000


def shoplens_command() -> list[str]:
    script = Path(sys.executable).parent / "shoplens"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "shoplens.cli.main"]


def start_server(index: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SHOPLENS_API_KEY": API_KEY}
    proc = subprocess.Popen(
        [*shoplens_command(), "serve", str(index), "--host", "127.0.0.1", "--port", str(port), "--no-warmup"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"shoplens serve exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("shoplens serve did not start in 60 s")


def products(prefix: str, n: int) -> list[Product]:
    words = ("fresh", "organic", "crunchy", "sweet", "golden", "smoked", "spicy", "creamy")
    return [Product(f"{prefix}-{i}", title=f"{words[i % 8]} {prefix} item {i}", price=float(i % 50),
                    category=words[(i // 8) % 8]) for i in range(n)]


@pytest.fixture
def fake_index(tmp_path: Path, fake_config: Config) -> Path:
    """A text index with the fake encoders: the server starts in a second, so the test can afford it."""
    engine = Engine(tmp_path / "index", fake_config)
    # One product with a photo: the engine cannot yet build a first generation without any photo.
    photo = str(DEMO_DIR / "images" / "6-studio.jpg")
    engine.upsert([*products("base", BASE - 1), Product(f"base-{BASE - 1}", title="banana", images=(photo,))])
    engine.close()
    return tmp_path / "index"


@pytest.mark.parametrize("delay_s", [0.0, 0.4])
def test_sigkill_mid_update_leaves_the_old_or_the_new_index(fake_index: Path, delay_s: float) -> None:
    port = free_port()
    proc = start_server(fake_index, port)
    body = {"products": [{"id": p.id, "title": p.title, "price": p.price, "category": p.category}
                         for p in products("big", BIG)]}
    outcome: list[object] = []

    def send() -> None:
        try:
            outcome.append(httpx.put(f"http://127.0.0.1:{port}/products", json=body, headers=AUTH, timeout=120))
        except httpx.HTTPError as e:  # the server died under us: expected
            outcome.append(e)

    writer = threading.Thread(target=send)
    try:
        writer.start()
        deadline = time.monotonic() + 60
        while not list(fake_index.glob(".building-*")):  # the new generation is being written now
            assert time.monotonic() < deadline and writer.is_alive(), f"the write never started: {[getattr(o, 'text', o) for o in outcome]}"
            time.sleep(0.005)
        time.sleep(delay_s)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        writer.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    engine = Engine.open(fake_index)  # the index opens...
    ids = {p.id for p in engine.products()}
    big = {i for i in ids if i.startswith("big-")}
    assert len(ids) in (BASE, BASE + BIG) and len(big) in (0, BIG)  # ...with the update fully there or absent
    assert {f"base-{i}" for i in range(BASE)} <= ids
    hits = engine.search("organic base item", k=5).hits  # ...and answers
    assert hits and all(h.id in ids for h in hits)
    if big:
        assert engine.search("golden big item 3", filters=["category=fresh"], k=3).total > 0
    # It stays writable: the dead writer's lock and scratch folder do not block the next write.
    engine.upsert(products("after", 3))
    assert len(Engine.open(fake_index)) == len(ids) + 3
    assert not list(fake_index.glob(".building-*"))
    engine.close()


def test_serve_refuses_a_folder_that_is_not_an_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(tmp_path), "--port", str(free_port())]) == 2
    assert "is not a shoplens index" in capsys.readouterr().err
