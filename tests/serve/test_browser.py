"""The shopper's page in real headless Chromium: search (Chinese), facets, paging, why, more like this, photo."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoplens import Engine
from shoplens.serve.app import create_app

from .conftest import DEMO_DIR, live_server, serve_settings

CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium, headless, with no calls home (the machine has no network beyond loopback).
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1366, "height": 900}
MOBILE = {"width": 390, "height": 844}

if not CHROMIUM.is_file():
    pytest.skip("Debian chromium is not installed (apt-get install chromium fonts-noto-cjk)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(os.environ.get("SHOPLENS_SCREENSHOTS") or Path(tempfile.gettempdir()) / "shoplens-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def site(shop_engine: Engine) -> Iterator[str]:
    with live_server(create_app(serve_settings(shop_engine.path), engine=shop_engine)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 4" not in m.text else None)
    yield pg
    context.close()
    assert not errors, errors


def card_titles(pg: Any) -> list[str]:
    pg.wait_for_selector("#grid .card:not(.skeleton)")
    return [t.strip() for t in pg.locator("#grid .card-link").all_inner_texts()]


def test_search_browse_and_explain(page: Any, site: str, shots: Path, shop_engine: Engine) -> None:
    pg = page
    pg.goto(site + "/")
    pg.wait_for_selector(".dropzone")
    pg.screenshot(path=str(shots / "desktop-1-landing.png"))

    pg.fill("#q", "苹果汁")  # "apple juice"
    pg.press("#q", "Enter")
    top = card_titles(pg)[:4]
    assert any("Apple Juice" in t for t in top), top
    assert pg.locator("#grid .card-price").first.inner_text().startswith("$")
    assert pg.locator("#grid .card img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    assert "q=%E8%8B%B9%E6%9E%9C%E6%B1%81" in pg.url
    pg.screenshot(path=str(shots / "desktop-2-results-zh.png"))

    pg.locator(".facet label", has_text="Packages").click()  # a facet on the side
    pg.wait_for_selector(".chip:has-text('Top category: Packages')")
    pg.wait_for_selector("#grid .skeleton", state="detached")
    cats = pg.locator("#grid .card-cat").all_inner_texts()
    assert cats and all(c.upper().startswith("PACKAGES") for c in cats), cats

    pg.locator("#grid .why-btn").first.click()  # why does it rank there?
    pop = pg.locator("#why")
    pop.wait_for(state="visible")
    assert "Meaning match" in pop.inner_text() and "ranked #" in pop.inner_text()
    pg.screenshot(path=str(shots / "desktop-3-why-popover.png"))
    pg.keyboard.press("Escape")

    pg.fill("#q", "fruit")
    pg.press("#q", "Enter")
    card_titles(pg)
    pg.click("#pager button:has-text('Next')")  # paging
    pg.wait_for_selector("#pager .page.current:has-text('2')")
    assert pg.locator("#summary").inner_text().startswith("25–")

    first = card_titles(pg)[0]
    pg.locator("#grid .more-btn").first.click()  # more like this
    pg.wait_for_selector(f"#heading:has-text('More like {first}')")
    assert first not in card_titles(pg)

    pg.locator("#grid .card-link").first.click()  # click through to the product
    pg.wait_for_selector("#detail[open]")
    pg.click("#detail-cart")
    pg.wait_for_selector("#detail-note:has-text('Added')")
    pg.screenshot(path=str(shots / "desktop-4-product.png"))
    pg.click("#detail-close")

    pg.goto(site + "/?q=apple&f=category%3DNo%20such%20thing")  # the empty state
    pg.wait_for_selector(".status-empty")
    pg.screenshot(path=str(shots / "desktop-5-empty.png"))

    events = [json.loads(x) for x in (shop_engine.path / "events" / "events.jsonl").read_text().splitlines()]
    kinds = {e["type"] for e in events}
    assert {"impression", "click", "cart"} <= kinds, kinds
    assert all(len(e["user"]) == 32 for e in events)


def test_photo_upload_and_bad_file(page: Any, site: str, shots: Path, tmp_path: Path) -> None:
    pg = page
    pg.goto(site + "/")
    pg.wait_for_selector(".dropzone")
    photo = tmp_path / "my-shelf-photo.jpg"
    shutil.copy(DEMO_DIR / "queries" / "shelf-banana.jpg", photo)
    pg.set_input_files("#file", str(photo))
    pg.wait_for_selector("#photo-query:not([hidden])")
    assert "Banana" in card_titles(pg)[:3]
    assert "my-shelf-photo.jpg" in pg.locator("#photo-query").inner_text()
    pg.screenshot(path=str(shots / "desktop-6-photo-search.png"))

    pg.fill("#q", "yellow")  # refine the photo search with words
    pg.press("#q", "Enter")
    pg.wait_for_selector("#heading:has-text('Photo matches for')")

    bad = tmp_path / "not-a-photo.jpg"
    bad.write_text("just some text pretending to be a JPEG")
    pg.set_input_files("#file", str(bad))
    pg.wait_for_selector(".status-error")
    assert "not a photo we can read" in pg.locator("#status").inner_text()
    assert pg.locator("#photo-query").is_hidden()  # the bad file does not stay as the query
    pg.screenshot(path=str(shots / "desktop-7-bad-photo.png"))


def test_api_docs_render_offline(page: Any, site: str, shots: Path) -> None:
    page.goto(site + "/docs")
    page.wait_for_selector(".swagger-ui .opblock-summary-path", timeout=20_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/search/image" in paths and "/products" in paths
    page.screenshot(path=str(shots / "desktop-8-api-docs.png"))


def test_mobile_layout(browser: Any, site: str, shots: Path) -> None:
    context = browser.new_context(viewport=MOBILE, device_scale_factor=2, is_mobile=True, has_touch=True)
    pg = context.new_page()
    try:
        pg.goto(site + "/")
        pg.wait_for_selector(".dropzone")
        pg.screenshot(path=str(shots / "mobile-1-landing.png"))
        pg.fill("#q", "番茄")  # "tomato"
        pg.press("#q", "Enter")
        assert any("Tomato" in t for t in card_titles(pg)[:4])
        width = pg.evaluate("document.documentElement.scrollWidth")
        assert width <= MOBILE["width"], "the page scrolls sideways on a phone"
        assert not pg.locator("#sidebar").is_visible() or pg.locator("#sidebar").bounding_box()["x"] < 0
        pg.screenshot(path=str(shots / "mobile-2-results.png"))
        pg.click("#open-filters")
        pg.wait_for_timeout(300)
        assert pg.locator("#sidebar").bounding_box()["x"] >= 0
        pg.screenshot(path=str(shots / "mobile-3-filters.png"))
    finally:
        context.close()
