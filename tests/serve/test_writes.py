"""Writes over HTTP: the API key, upserts and deletes seen by the next search, all-or-nothing batches."""

from __future__ import annotations

import hmac
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shoplens import Engine, Product
from shoplens.serve import security
from shoplens.serve.app import create_app

from .conftest import AUTH, DEMO_DIR, serve_settings, share_encoders


def put(client: TestClient, products: list[dict], headers: dict[str, str] | None = AUTH):  # noqa: ANN201
    return client.put("/products", json={"products": products}, headers=headers)


def test_writes_need_the_right_key(write_client: TestClient) -> None:
    item = [{"id": "k1", "title": "Key test"}]
    for headers in (None, {"X-API-Key": "wrong-key-000000000"}, {"X-API-Key": ""}):
        r = put(write_client, item, headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "ApiKey"
    assert write_client.delete("/products/3").status_code == 401
    assert write_client.get("/products/k1").status_code == 404
    assert write_client.get("/search", params={"q": "apple"}).status_code == 200  # reads stay open


def test_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    assert security.key_matches("k" * 10, "k" * 10) and not security.key_matches("x" * 10, "k" * 10)
    assert calls == [(b"k" * 10, b"k" * 10), (b"x" * 10, b"k" * 10)]
    assert not security.key_matches(None, "k" * 10) and not security.key_matches("k" * 10, None)


def test_writes_are_refused_without_a_configured_key(write_engine: Engine) -> None:
    app = create_app(serve_settings(write_engine.path, api_key=None), engine=write_engine)
    with TestClient(app) as c:
        r = put(c, [{"id": "k1", "title": "x"}])
        assert r.status_code == 403 and "SHOPLENS_API_KEY" in r.json()["error"]["message"]


def test_protected_reads_need_the_key(write_engine: Engine) -> None:
    app = create_app(serve_settings(write_engine.path, protect_reads=True), engine=write_engine)
    with TestClient(app) as c:
        assert c.get("/search", params={"q": "apple"}).status_code == 401
        assert c.get("/search", params={"q": "apple"}, headers=AUTH).status_code == 200
        assert c.get("/health").status_code == 200  # liveness probes stay open


def test_upsert_and_delete_are_visible_to_the_next_search(write_client: TestClient) -> None:
    before = write_client.get("/health").json()
    products = [
        {"id": "dragon-1", "title": "Dragon Fruit", "description": "Pink tropical fruit", "price": "$4.50",
         "category": "Exotic", "origin": "Vietnam"},
        {"id": "dragon-2", "title": "Yellow Dragon Fruit", "price": 5, "category": "Exotic"},
    ]
    r = put(write_client, products)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["added"], body["updated"], body["total"]) == (2, 0, 83)
    assert body["generation"] != before["generation"]
    hits = write_client.get("/search", params={"q": "dragon fruit", "size": 3}).json()["results"]
    assert {h["id"] for h in hits[:2]} == {"dragon-1", "dragon-2"}
    assert hits[0]["price"] in (4.5, 5.0) and write_client.get("/products/dragon-1").json()["attributes"] == {
        "origin": "Vietnam"}
    r = put(write_client, [{"id": "dragon-1", "title": "Red Dragon Fruit", "price": 3.25}])
    assert r.json()["updated"] == 1 and write_client.get("/products/dragon-1").json()["price"] == 3.25
    r = write_client.delete("/products/dragon-2", headers=AUTH)
    assert r.status_code == 200 and r.json()["deleted"] == 1 and r.json()["total"] == 82
    assert write_client.get("/products/dragon-2").status_code == 404
    ids = [h["id"] for h in write_client.get("/search", params={"q": "dragon fruit"}).json()["results"]]
    assert "dragon-2" not in ids and ids[0] == "dragon-1"
    assert write_client.delete("/products/dragon-2", headers=AUTH).status_code == 404


def test_a_batch_with_bad_rows_writes_nothing(write_client: TestClient) -> None:
    r = put(write_client, [
        {"id": "ok-1", "title": "Fine product"},
        {"id": "bad-1", "title": "Bad price", "price": "cheap"},
        {"title": "No id"},
        {"id": "ok-1", "title": "Duplicate"},
    ])
    assert r.status_code == 400
    err = r.json()["error"]
    assert "3 of 4 products invalid, nothing written" in err["message"]
    assert any("row 2" in d and "'price'" in d for d in err["details"])
    assert any("row 3" in d and "'id'" in d for d in err["details"])
    assert any("row 4" in d and "duplicate" in d for d in err["details"])
    assert write_client.get("/products/ok-1").status_code == 404
    assert write_client.get("/health").json()["products"] == 81


def test_photo_paths_cannot_escape_the_image_root(write_client: TestClient, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    shutil.copy(DEMO_DIR / "images" / "6-studio.jpg", root / "banana.jpg")
    outside = tmp_path / "secret.jpg"
    shutil.copy(DEMO_DIR / "images" / "8-studio.jpg", outside)
    (root / "link.jpg").symlink_to(outside)
    attempts = {
        "../secret.jpg": "leaves the catalogue folder",
        "sub/../../secret.jpg": "leaves the catalogue folder",
        str(outside): "must be relative",
        "~/secret.jpg": "must be relative",
        "link.jpg": "leaves the catalogue folder",  # a symlink pointing out of the root
        "file:///etc/passwd": "only http(s) URLs",
        "ftp://example.org/a.jpg": "only http(s) URLs",
    }
    for ref, why in attempts.items():
        for field in ("image", "images"):
            r = put(write_client, [{"id": "esc", "title": "Escape", field: ref}])
            assert r.status_code == 400, (ref, r.text)
            assert why in r.json()["error"]["message"], (ref, r.json())
    assert write_client.get("/products/esc").status_code == 404
    r = put(write_client, [{"id": "ban-2", "title": "Another banana", "image": "banana.jpg"}])
    assert r.status_code == 200 and r.json()["added"] == 1, r.text
    served = write_client.get("/images/ban-2")
    assert served.status_code == 200 and served.content == (root / "banana.jpg").read_bytes()


def test_local_photo_paths_need_an_image_root(write_engine: Engine) -> None:
    app = create_app(serve_settings(write_engine.path, allow_image_urls=False), engine=write_engine)
    with TestClient(app) as c:
        r = put(c, [{"id": "p", "title": "x", "image": "banana.jpg"}])
        assert r.status_code == 400 and "--image-root" in r.json()["error"]["message"]
        r = put(c, [{"id": "p", "title": "x", "image": "https://example.org/x.jpg"}])
        assert r.status_code == 400 and "URLs are disabled" in r.json()["error"]["message"]


def test_an_undecodable_photo_is_reported_not_stored(write_client: TestClient, tmp_path: Path) -> None:
    (tmp_path / "photos" / "fake.jpg").write_bytes(b"this is text, not a JPEG")
    r = put(write_client, [{"id": "t1", "title": "Has a fake photo", "image": "fake.jpg"},
                           {"id": "t2", "title": "Fine"}])
    assert r.status_code == 200
    body = r.json()
    assert body["added"] == 1 and body["skipped"][0]["row"] == 1 and body["skipped"][0]["field"] == "image"
    assert write_client.get("/products/t1").status_code == 404


def test_batch_and_body_size_limits(write_engine: Engine) -> None:
    app = create_app(serve_settings(write_engine.path, max_batch=3, max_json_bytes=2000), engine=write_engine)
    with TestClient(app) as c:
        r = put(c, [{"id": str(i), "title": "x"} for i in range(4)])
        assert r.status_code == 413 and "the limit is 3" in r.json()["error"]["message"]
        r = put(c, [{"id": "big", "title": "y" * 3000}])
        assert r.status_code == 413 and r.json()["error"]["status"] == 413

        def chunks():  # no Content-Length: the limit is enforced while the body streams in
            yield b'{"products": [{"id": "big", "title": "'
            for _ in range(10):
                yield b"z" * 500
            yield b'"}]}'

        r = c.put("/products", content=chunks(), headers={**AUTH, "content-type": "application/json"})
        assert r.status_code == 413
        assert c.get("/health").json()["products"] == 81


def test_writes_by_another_process_are_followed(write_client: TestClient, write_engine: Engine) -> None:
    """Another worker process or a CLI ``shoplens add`` publishes a generation: the next request sees it."""
    other = share_encoders(write_engine, Engine.open(write_engine.path))
    other.upsert([Product("elsewhere-1", title="Cloudberry jam", category="Jam")])
    assert write_client.get("/products/elsewhere-1").json()["title"] == "Cloudberry jam"
    assert write_client.get("/search", params={"q": "cloudberry"}).json()["results"][0]["id"] == "elsewhere-1"
    other.delete(["elsewhere-1"])
    assert write_client.get("/products/elsewhere-1").status_code == 404
    assert write_client.get("/health").json()["generation"] == other.state.path.name


def test_ids_with_slashes_work_in_every_product_route(write_client: TestClient) -> None:
    r = put(write_client, [{"id": "fruit/dragon 1", "title": "Dragon Fruit", "category": "Exotic"}])
    assert r.status_code == 200, r.text
    path = "/products/fruit%2Fdragon%201"  # how a client escapes the id (encodeURIComponent)
    assert write_client.get(path).json()["id"] == "fruit/dragon 1"
    assert write_client.get("/products/fruit/dragon 1").json()["id"] == "fruit/dragon 1"
    similar = write_client.get(path + "/similar", params={"size": 3})
    assert similar.status_code == 200 and len(similar.json()["results"]) == 3
    assert "fruit/dragon 1" not in [h["id"] for h in similar.json()["results"]]
    assert write_client.get(path + "/together", params={"size": 2}).status_code == 200
    assert write_client.get("/products/fruit%2Fnone/similar").status_code == 404
    r = write_client.delete(path, headers=AUTH)
    assert r.status_code == 200 and r.json()["deleted"] == 1
    assert write_client.get(path).status_code == 404
