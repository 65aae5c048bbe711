"""What the service runs on: bounded worker pools (load shedding) and the engine, kept current."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ..engine import Engine
from ..errors import IndexError_, NotFoundError, ShoplensError
from ..index import atomic
from ..index.state import IndexState
from .events import EventLog
from .metrics import Metrics
from .settings import ServeSettings

log = logging.getLogger(__name__)

T = TypeVar("T")


class OverloadedError(ShoplensError):
    """The service is at capacity; the client should retry later (HTTP 503 with Retry-After)."""

    http_status = 503
    retry_after_s = 1


class WorkerPool:
    """A fixed set of threads for CPU work with a bounded queue: when it is full, fail fast with 503.

    Shedding at the door keeps latency bounded for the requests that are admitted, instead of letting
    every request time out behind an ever-growing queue. A request that still waited longer than
    ``queue_timeout_s`` (its client has likely given up) is dropped before it costs any CPU.
    """

    def __init__(self, name: str, workers: int, queue: int, queue_timeout_s: float) -> None:
        self.name = name
        self.workers = max(1, workers)
        self.capacity = self.workers + max(0, queue)
        self.queue_timeout_s = queue_timeout_s
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=f"shoplens-{name}")
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._lock = threading.Lock()
        self.pending = 0  # admitted and not finished (running + queued)
        self.rejected = 0

    async def run(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run ``fn`` on a worker thread, or raise :class:`OverloadedError` at once if the queue is full."""
        if not self._slots.acquire(blocking=False):
            with self._lock:
                self.rejected += 1
            raise OverloadedError(f"the server is busy ({self.name}); retry shortly")
        with self._lock:
            self.pending += 1
        admitted = time.monotonic()
        call = partial(fn, *args, **kwargs)

        def task() -> T:
            try:
                if time.monotonic() - admitted > self.queue_timeout_s:
                    with self._lock:
                        self.rejected += 1
                    raise OverloadedError(f"the server is busy ({self.name}); the request waited too long")
                return call()
            finally:
                with self._lock:
                    self.pending -= 1
                self._slots.release()

        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, task)
        except RuntimeError as e:  # the executor was shut down: the app is stopping
            with self._lock:
                self.pending -= 1
            self._slots.release()
            raise OverloadedError("the server is shutting down") from e
        return await future

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class EngineHandle:
    """The engine, plus a cheap check that follows generations written by other processes.

    ``Engine.upsert``/``delete`` swap the engine's state in this process. Other workers (``--workers N``)
    or a CLI ``shoplens add`` publish a new ``CURRENT`` instead: before each request the handle
    compares ``CURRENT`` with the loaded generation and reloads when they differ.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reload_lock = threading.Lock()
        self._seen: tuple[int, int] | None = None

    @property
    def path(self) -> Path:
        return self.engine.path

    def generation(self) -> str | None:
        state = self.state()
        return state.path.name if state is not None and state.path is not None else None

    def state(self) -> IndexState | None:
        """The loaded generation, or None for an empty index."""
        try:
            return self.engine.state
        except NotFoundError:
            return None

    def _pointer_key(self) -> tuple[int, int] | None:
        try:
            st = (self.path / atomic.CURRENT).stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def stale(self) -> bool:
        """Cheap (one stat): has ``CURRENT`` changed since this handle last checked it?"""
        key = self._pointer_key()
        return key is not None and key != self._seen

    def refresh(self) -> None:
        """Reload if another process published a newer generation (a stat per call when nothing changed)."""
        pointer = self.path / atomic.CURRENT
        key = self._pointer_key()
        if key is None or key == self._seen:
            return
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except OSError:
            return
        if name == self.generation():
            self._seen = key
            return
        with self._reload_lock:
            if pointer.read_text(encoding="utf-8").strip() == self.generation():
                return
            for attempt in range(3):
                try:
                    self.engine.reload()
                    break
                except IndexError_:  # a writer replaced CURRENT or collected a generation meanwhile
                    if attempt == 2:
                        raise
                    time.sleep(0.05)
            self.warm()
            self._seen = key
            log.info("reloaded index %s at %s", self.path, self.generation())

    def warm(self) -> None:
        """Load a generation's lazy parts now, so the first query after a write is not the slow one."""
        st = self.state()
        if st is None:
            return
        _ = st.text_index, st.image_index, st.facet_items, st.product_image_vectors


@dataclass
class Service:
    """Everything a request handler needs, built once by ``create_app`` (no module-level singletons)."""

    settings: ServeSettings
    handle: EngineHandle
    search_pool: WorkerPool
    write_pool: WorkerPool
    events: EventLog
    metrics: Metrics

    @property
    def engine(self) -> Engine:
        return self.handle.engine

    async def fresh_engine(self) -> Engine:
        """The engine at the newest generation (reloading off the event loop when another process wrote)."""
        if self.handle.stale():
            await run_in_threadpool(self.handle.refresh)
        return self.handle.engine


def get_service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc
