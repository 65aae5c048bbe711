"""BLAS is limited to one thread while queries run, and restored afterwards."""

from __future__ import annotations

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
