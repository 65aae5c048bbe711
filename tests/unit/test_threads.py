"""BLAS is limited to one thread while queries run, and restored afterwards."""

from __future__ import annotations

import threading

import pytest

from shoplens.threads import query_threads

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def test_limit_nests_and_restores() -> None:
    import numpy  # noqa: F401  (loads its BLAS)

    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS library found by threadpoolctl")
    with query_threads():
        assert all(n == 1 for n in _blas_threads())
        with query_threads():
            assert all(n == 1 for n in _blas_threads())
        assert all(n == 1 for n in _blas_threads())  # the outer query still runs
    assert _blas_threads() == before


def test_concurrent_queries_share_the_limit() -> None:
    before = _blas_threads()
    inside = threading.Event()
    release = threading.Event()

    def query() -> None:
        with query_threads():
            inside.set()
            release.wait(5)

    t = threading.Thread(target=query)
    t.start()
    assert inside.wait(5)
    with query_threads():
        pass  # a second query ending first must not lift the first one's limit
    if before:
        assert all(n == 1 for n in _blas_threads())
    release.set()
    t.join(5)
    assert _blas_threads() == before
