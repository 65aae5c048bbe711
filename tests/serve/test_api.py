"""The read API over the real demo index: search (text, Chinese, photo), products, photos, ops endpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shoplens import Engine

DEMO = Path(__file__).resolve().parents[2] / "shoplens" / "data" / "demo"


def titles(body: dict) -> list[str]:
    return [r["title"] for r in body["results"]]


def test_text_search_answers_with_products_facets_and_total(client: TestClient) -> None:
    r = client.get("/search", params={"q": "oat milk", "size": 5})
    assert r.status_code == 200
    body = r.json()
    assert "Oatly Oat Milk" in titles(body)[:3]
    first = body["results"][0]
    assert {"id", "title", "image_url", "price", "attributes", "score", "rank"} <= set(first)
    assert first["image_url"] == f"/images/{first['id']}"
    assert first["signals"] is None  # only with explain
    assert body["total"] >= len(body["results"]) and body["page"] == 1 and body["size"] == 5
    assert body["pages"] == -(-body["total"] // 5)
    assert "top_category" in body["facets"] and sum(body["facets"]["top_category"].values()) == body["total"]


def test_chinese_query_finds_the_english_catalogue(client: TestClient) -> None:
    body = client.get("/search", params={"q": "牛奶", "size": 10}).json()  # "milk"
    assert any("Milk" in t for t in titles(body)[:5])


def test_post_search_with_filters_paging_and_explain(client: TestClient) -> None:
    req = {"q": "juice", "filters": ["top_category=Packages"], "size": 4, "page": 2, "explain": True}
    body = client.post("/search", json=req).json()
    assert body["page"] == 2 and len(body["results"]) == 4
    assert [r["rank"] for r in body["results"]] == [5, 6, 7, 8]
    assert all(r["attributes"]["top_category"] == "Packages" for r in body["results"])
    signals = body["results"][0]["signals"]
    assert signals and any(k in signals for k in ("bm25", "text")) and body["timings_ms"]
    page1 = client.post("/search", json={**req, "page": 1}).json()
    assert not {r["id"] for r in page1["results"]} & {r["id"] for r in body["results"]}


def test_get_and_post_search_agree(client: TestClient) -> None:
    get = client.get("/search", params={"q": "tomato", "filter": ["top_category=Vegetables"], "size": 6}).json()
    post = client.post("/search", json={"q": "tomato", "filters": ["top_category=Vegetables"], "size": 6}).json()
    assert [r["id"] for r in get["results"]] == [r["id"] for r in post["results"]]


def test_photo_upload_finds_the_product(client: TestClient) -> None:
    photo = (DEMO / "queries" / "shelf-banana.jpg").read_bytes()
    r = client.post("/search/image", files={"image": ("shelf.jpg", photo, "image/jpeg")},
                    data={"size": "5", "explain": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "Banana" in titles(body)[:3]
    assert "image" in body["results"][0]["signals"]


def test_photo_and_text_together(client: TestClient) -> None:
    photo = (DEMO / "queries" / "shelf-oatly-oat-milk.jpg").read_bytes()
    r = client.post("/search/image", files={"image": ("x", photo, "application/octet-stream")},
                    data={"q": "oat", "filter": "top_category=Packages"})
    assert r.status_code == 200
    body = r.json()
    assert body["query"] == "oat" and any("Oat" in t for t in titles(body)[:3])


def test_product_similar_and_missing(client: TestClient, demo_index: Engine) -> None:
    pid = next(p.id for p in demo_index.products() if p.title == "Granny Smith")
    product = client.get(f"/products/{pid}").json()
    assert product["title"] == "Granny Smith" and len(product["image_urls"]) == 3
    similar = client.get(f"/products/{pid}/similar", params={"size": 5}).json()
    assert pid not in [r["id"] for r in similar["results"]]
    assert sum(r["category"] == "Apple" for r in similar["results"]) >= 2
    page2 = client.get(f"/products/{pid}/similar", params={"size": 5, "page": 2}).json()
    assert [r["rank"] for r in page2["results"]] == [6, 7, 8, 9, 10]
    for url in ("/products/nope", "/products/nope/similar", "/images/nope"):
        r = client.get(url)
        assert r.status_code == 404 and r.json()["error"]["type"] == "NotFoundError"


def test_recommend_and_together(client: TestClient, demo_index: Engine) -> None:
    apples = [p.id for p in demo_index.products() if p.category == "Apple"]
    recs = client.get("/recommend", params={"history": apples[:2], "size": 4}).json()
    ids = [r["id"] for r in recs["results"]]
    assert len(ids) == 4 and not set(ids) & set(apples[:2])
    assert client.get("/recommend", params={"size": 4}).json()["results"] == []  # nothing to go on
    assert client.get("/recommend", params={"history": ["nope"]}).status_code == 404
    # No baskets in the demo's event log: "bought together" falls back to more like this.
    together = client.get(f"/products/{apples[0]}/together", params={"size": 3}).json()
    assert len(together["results"]) == 3 and apples[0] not in [r["id"] for r in together["results"]]
    assert client.get("/products/nope/together").status_code == 404


def test_images_are_served_from_the_index(client: TestClient, demo_index: Engine) -> None:
    product = next(iter(demo_index.products()))
    r = client.get(f"/images/{product.id}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == Path(product.images[0]).read_bytes()
    assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get(f"/images/{product.id}", params={"n": 2}).content == Path(product.images[2]).read_bytes()
    assert client.get(f"/images/{product.id}", params={"n": 3}).status_code == 404


def test_events_are_stored_with_pseudonymised_users(client: TestClient, demo_index: Engine) -> None:
    events = [
        {"type": "impression", "product_id": "3", "position": 1, "query": "apple", "user": "alice@example.com"},
        {"type": "click", "product_id": "3", "position": 1, "query": "apple", "user": "alice@example.com"},
        {"type": "purchase", "product_id": "3", "session": "s-1"},
    ]
    r = client.post("/events", json={"events": events})
    assert r.status_code == 200 and r.json() == {"accepted": 3}
    log = demo_index.path / "events" / "events.jsonl"
    lines = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()][-3:]
    assert [x["type"] for x in lines] == ["impression", "click", "purchase"]
    assert "alice" not in log.read_text(encoding="utf-8")
    assert lines[0]["user"] == lines[1]["user"] and len(lines[0]["user"]) == 32
    assert lines[2]["session"] != "s-1" and "user" not in lines[2]
    bad = client.post("/events", json={"events": [{"type": "hover", "product_id": "3"}]})
    assert bad.status_code == 422 and "events.0.type" in bad.json()["error"]["message"]


def test_health_metrics_and_openapi(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["products"] == 81 and health["generation"].startswith("gen-")
    client.get("/search", params={"q": "lemon"})
    client.get("/products/3")
    text = client.get("/metrics").text
    assert 'shoplens_http_requests_total{method="GET",route="/search",status="200"}' in text
    assert 'shoplens_http_request_duration_seconds_bucket{route="/search",le="+Inf"}' in text
    assert "shoplens_index_products 81" in text and "shoplens_index_photos 243" in text
    assert int(text.split("\nshoplens_index_disk_bytes ")[1].split()[0]) > 1_000_000
    assert "/products/{product_id}" in text and "/products/3" not in text  # templates, not raw paths
    spec = client.get("/openapi.json").json()
    for path in ("/search", "/search/image", "/products", "/products/{product_id}", "/images/{product_id}",
                 "/products/{product_id}/similar", "/events", "/health", "/metrics"):
        assert path in spec["paths"], path


def test_the_page_and_its_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'id="q"' in page.text and 'type="file"' in page.text
    for name, kind in (("app.js", "javascript"), ("ui.js", "javascript"), ("style.css", "text/css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"], name


def test_api_docs_are_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    if "/docs-assets/" in page.text:  # swagger-ui-py installed (the serve extra): no request leaves the host
        assert "cdn." not in page.text
        assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_event_pseudonyms_follow_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shoplens.serve.events import EventLog, pseudonymise

    monkeypatch.delenv("SHOPLENS_EVENT_KEY", raising=False)
    EventLog(tmp_path).append([{"type": "click", "product_id": "1", "user": "u1"}])
    key_file = tmp_path / "events" / "key"
    assert key_file.stat().st_mode & 0o777 == 0o600  # a random per-index key, private to its owner
    again = EventLog(tmp_path)  # a second process reuses it: pseudonyms stay stable
    assert again.key == bytes.fromhex(key_file.read_text())
    monkeypatch.setenv("SHOPLENS_EVENT_KEY", "from-the-environment")
    EventLog(tmp_path).append([{"type": "click", "product_id": "1", "user": "u1"}])
    lines = [json.loads(x) for x in (tmp_path / "events" / "events.jsonl").read_text().splitlines()]
    assert lines[0]["user"] == pseudonymise(again.key, "u1")
    assert lines[1]["user"] == pseudonymise(b"from-the-environment", "u1") != lines[0]["user"]
