"""One BLAS thread while answering queries.

A query's matrix products are small (a few hundred candidates × 512): with OpenBLAS's default of one
thread per core they cost more in thread wake-ups than they save, and a server answers several
queries at once anyway. Measured on the 2-core dev machine (fashion dev index, busy machine):
re-ranking p50 36 → 12 ms, dense text search 9 → 1.2 ms. Batch work (index builds, training) keeps
every thread. Process-wide: the limit holds while at least one query is running. Best effort:
OpenBLAS 0.3.31 was seen to ignore a thread count set from a thread other than the first one that
set it, so a server answering from worker threads may keep the default (as before this module).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
_active = 0
_controller: Any = None
_saved: list[tuple[Any, int]] = []


def _get_controller() -> Any:
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _controller = False
            log.info("threadpoolctl missing: BLAS keeps its default threads at query time")
    return _controller


@contextmanager
def query_threads() -> Iterator[None]:
    """BLAS limited to one thread for the duration (re-entrant, shared across threads)."""
    global _active
    with _lock:
        controller = _get_controller()
        if controller and _active == 0:
            # Set through the library handles directly (threadpoolctl's limiter objects cache what
            # they saw, and a second limit after a restore did not apply).
            for lib in controller.select(user_api="blas").lib_controllers:
                _saved.append((lib, lib.get_num_threads()))
                lib.set_num_threads(1)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                while _saved:
                    lib, n = _saved.pop()
                    lib.set_num_threads(n)
