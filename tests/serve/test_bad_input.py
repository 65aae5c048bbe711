"""Bad input over HTTP: uploads checked by content, size limits, path escapes, clear errors, no tracebacks."""

from __future__ import annotations

import io
import socket

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from shoplens import Engine
from shoplens.serve.app import create_app

from .conftest import DEMO_DIR, live_server, serve_settings

PHOTO = (DEMO_DIR / "queries" / "shelf-lemon.jpg").read_bytes()


def upload(client: TestClient, data: bytes, name: str = "photo.jpg", kind: str = "image/jpeg"):  # noqa: ANN201
    return client.post("/search/image", files={"image": (name, data, kind)})


def png_bytes(size: tuple[int, int], mode: str = "1") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "name", "status", "words"),
    [
        (b"%PDF-1.4 not a photo at all", "photo.jpg", 415, "not a recognised image"),  # name says jpg
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "x.svg", 415, "not a recognised image"),
        (PHOTO[: len(PHOTO) // 3], "cut.jpg", 400, "corrupt or truncated"),
        (png_bytes((20_000, 20_000)), "bomb.png", 413, "decompression bomb"),  # 50 kB that decodes to 400 MP
        (png_bytes((13_000, 8)), "strip.png", 413, "size limit"),  # one side over the limit
        (b"", "empty.jpg", 400, "empty"),
    ],
)
def test_uploads_are_checked_by_content(client: TestClient, data: bytes, name: str, status: int, words: str) -> None:
    r = upload(client, data, name)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"]


def test_a_photo_with_a_misleading_name_and_type_still_works(client: TestClient) -> None:
    r = upload(client, PHOTO, "notes.txt", "text/plain")
    assert r.status_code == 200 and "Lemon" in [x["title"] for x in r.json()["results"][:5]]


def test_upload_size_limit(write_engine: Engine) -> None:
    app = create_app(serve_settings(write_engine.path, max_upload_bytes=len(PHOTO) + 1000), engine=write_engine)
    with TestClient(app) as c:
        assert upload(c, PHOTO).status_code == 200
        r = upload(c, PHOTO + b"\0" * 5000)
        assert r.status_code == 413 and "limit" in r.json()["error"]["message"]


def test_query_limits_and_bad_filters(client: TestClient) -> None:
    cases = [
        ({"q": "a" * 1001}, 400, "limit is 1000"),
        ({"q": ""}, 400, "empty query"),
        ({"q": "x", "filter": "price<cheap"}, 400, "not a number"),
        ({"q": "x", "filter": "no operator here"}, 400, "filter"),
        ({"q": "x", "size": 0}, 422, "size"),
        ({"q": "x", "size": 101}, 422, "size"),
        ({"q": "x", "page": 0}, 422, "page"),
        ({"q": "x", "page": 9000, "size": 100}, 400, "too deep"),
        ({"q": "a" * 10_001}, 422, "q"),
    ]
    for params, status, words in cases:
        r = client.get("/search", params=params)
        assert r.status_code == status, (params, r.text)
        assert words in r.json()["error"]["message"], (params, r.json())
    r = client.post("/search", json={"q": "x", "unknown": 1})
    assert r.status_code == 422 and "unknown" in r.json()["error"]["message"]
    r = client.post("/search", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/images/..%2F..%2F..%2Fetc%2Fpasswd",
        "/images/%2e%2e/%2e%2e/etc/passwd",
        "/images/../../etc/passwd",
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2F..%2Fapp.py",
        "/images/3/../../../../etc/passwd",
        "/products/..%2F..%2Fetc%2Fpasswd",
    ],
)
def test_path_escapes_are_refused(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert b"root:" not in r.content and b"import" not in r.content


def test_errors_never_show_a_traceback(client: TestClient, demo_index: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail /srv/keys")

    monkeypatch.setattr(demo_index, "search", broken)
    r = client.get("/search", params={"q": "apple"})
    assert r.status_code == 500
    assert r.json() == {"error": {"type": "InternalError", "status": 500,
                                  "message": "internal server error (see the server log)"}}
    assert "Traceback" not in r.text and "secret" not in r.text


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error"]["message"].startswith("no such endpoint")
    r = client.post("/health")
    assert r.status_code == 405 and r.json()["error"]["status"] == 405


def test_raw_path_escapes_on_the_wire(demo_index: Engine) -> None:
    """HTTP clients tidy ``..`` away before sending; a raw socket sends the path exactly as written."""
    with live_server(create_app(serve_settings(demo_index.path), engine=demo_index)) as url:
        port = int(url.rsplit(":", 1)[1])
        for raw in ("/static/../../../../../../etc/passwd", "/static/..%2f..%2f..%2fapp.py",
                    "/static/%2e%2e/%2e%2e/serve/app.py", "/images/..%2f..%2f..%2fetc%2fpasswd",
                    "/images/3/../../../../etc/passwd", "/images/3%00.jpg"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(f"GET {raw} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            status = int(data.split(b" ", 2)[1])
            assert status in (400, 404), (raw, data[:300])
            assert b"root:" not in data and b"create_app" not in data, raw
