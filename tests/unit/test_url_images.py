"""Catalogue photos given as http(s) URLs: fetched with a timeout and size limit, failures reported."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoplens import Config, Engine

from ..conftest import COLOURS, solid


@pytest.fixture
def photo_server(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server over a folder with two photos."""
    root = tmp_path / "www"
    solid(root / "red.jpg", COLOURS["red"])
    solid(root / "blue.jpg", COLOURS["blue"])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url_photos_are_fetched_and_missing_ones_reported(tmp_path: Path, photo_server: str, fake_config: Config) -> None:
    cat = tmp_path / "cat.jsonl"
    cat.write_text(
        "\n".join(
            [
                f'{{"id": "r", "title": "red thing", "image": "{photo_server}/red.jpg"}}',
                f'{{"id": "b", "title": "blue thing", "image": "{photo_server}/blue.jpg"}}',
                f'{{"id": "x", "title": "gone", "image": "{photo_server}/missing.jpg"}}',
                '{"id": "f", "title": "local file", "image": "file:///etc/passwd"}',
            ]
        )
    )
    engine = Engine(tmp_path / "idx", fake_config)
    report = engine.add_catalog(cat)
    assert report.added == 2
    skipped = {s.id: s for s in report.skipped}
    assert "404" in skipped["x"].reason or "cannot fetch" in skipped["x"].reason
    assert "http(s)" in skipped["f"].reason
    query = solid(tmp_path / "q.jpg", COLOURS["blue"])
    assert engine.search(image=str(query), k=1).hits[0].id == "b"
