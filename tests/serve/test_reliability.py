"""Reliability on a live loopback server: readers during writes see old or new state, overload sheds with 503."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import httpx
import pytest

from shoplens import Engine
from shoplens.serve.app import create_app
from shoplens.serve.runtime import OverloadedError, WorkerPool

from .conftest import AUTH, live_server, serve_settings

BATCH = 20


def batch(version: int, ids: range = range(BATCH)) -> list[dict]:
    return [{"id": f"zz-{i}", "title": f"Zanzibar spice mix number {i}", "category": "Spice", "batch": "zz",
             "version": f"v{version}"} for i in ids]


def test_searches_during_writes_see_old_or_new_never_a_mix(write_engine: Engine) -> None:
    app = create_app(serve_settings(write_engine.path), engine=write_engine)
    seen: Counter[tuple[int, str]] = Counter()
    problems: list[str] = []
    stop = threading.Event()

    def reader(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                r = http.get("/search", params={"q": "zanzibar spice", "filter": "batch=zz", "size": 100})
                if r.status_code != 200:
                    problems.append(f"search answered {r.status_code}: {r.text[:200]}")
                    continue
                body = r.json()
                versions = {h["attributes"]["version"] for h in body["results"]}
                n = len(body["results"])
                if n != body["total"] or n not in (0, BATCH - 2, BATCH - 1, BATCH) or len(versions) > 1:
                    problems.append(f"mixed state: {n} results of total {body['total']}, versions {versions}")
                seen[(n, min(versions, default="-"))] += 1
                one = http.get("/products/zz-0")
                if one.status_code not in (200, 404):
                    problems.append(f"product answered {one.status_code}")

    with live_server(app) as url:
        threads = [threading.Thread(target=reader, args=(url,)) for _ in range(4)]
        for t in threads:
            t.start()
        with httpx.Client(base_url=url, timeout=120, headers=AUTH) as http:
            steps = [
                lambda: http.put("/products", json={"products": batch(1)}),
                lambda: http.put("/products", json={"products": batch(2)}),
                lambda: http.delete("/products/zz-0"),
                lambda: http.delete("/products/zz-1"),
                lambda: http.put("/products", json={"products": batch(3)}),
            ]
            for step in steps:
                time.sleep(0.3)
                r = step()
                assert r.status_code == 200, r.text
            time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not problems, problems[:5]
    # The readers really overlapped the writes: they saw several states, each complete.
    assert len(seen) >= 3, seen
    states = {(0, "-"), (BATCH, "v1"), (BATCH, "v2"), (BATCH - 1, "v2"), (BATCH - 2, "v2"), (BATCH, "v3")}
    assert set(seen) <= states, seen


def test_overload_sheds_with_503_and_retry_after(write_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real_search = write_engine.search

    def slow_search(*args: object, **kwargs: object) -> object:
        release.wait(timeout=30)
        return real_search(*args, **kwargs)

    monkeypatch.setattr(write_engine, "search", slow_search)
    app = create_app(serve_settings(write_engine.path, search_workers=1, search_queue=1), engine=write_engine)
    pool = app.state.service.search_pool
    with live_server(app) as url:
        results: list[int] = []

        def one() -> None:
            results.append(httpx.get(f"{url}/search", params={"q": "apple"}, timeout=60).status_code)

        admitted = [threading.Thread(target=one) for _ in range(2)]
        for t in admitted:
            t.start()
        deadline = time.monotonic() + 10
        while pool.pending < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.pending == 2  # one running, one queued: the pool is full
        started = time.monotonic()
        shed = httpx.get(f"{url}/search", params={"q": "apple"}, timeout=10)
        assert shed.status_code == 503 and time.monotonic() - started < 2  # refused at once, not timed out
        assert shed.headers["retry-after"] == "1" and "busy" in shed.json()["error"]["message"]
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200  # cheap endpoints still answer
        release.set()
        for t in admitted:
            t.join(timeout=30)
        assert results == [200, 200]
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        assert "shoplens_shed_requests_total 1" in metrics
        assert 'route="/search",status="503"} 1' in metrics


def test_pool_drops_requests_that_waited_too_long() -> None:
    pool = WorkerPool("test", workers=1, queue=1, queue_timeout_s=0.05)

    async def scenario() -> list[object]:
        slow = pool.run(time.sleep, 0.3)
        late = pool.run(lambda: "ran")
        return await asyncio.gather(slow, late, return_exceptions=True)

    try:
        slow, late = asyncio.run(scenario())
    finally:
        pool.close()
    assert slow is None
    assert isinstance(late, OverloadedError) and "waited too long" in str(late)
    assert pool.pending == 0 and pool.rejected == 1
