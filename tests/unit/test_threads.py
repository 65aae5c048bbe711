"""BLAS is limited to one thread while queries run, and restored afterwards."""

from __future__ import annotations

import numpy as np
import pytest

from shoplens import threads
from shoplens.threads import query_threads

pytest.importorskip("threadpoolctl")


def test_limit_nests_and_restores() -> None:
    np.ones((4, 4)) @ np.ones((4, 4))  # numpy's BLAS is loaded
    controller = threads._get_controller()
    libs = controller.select(user_api="blas").lib_controllers if controller else []
    if not libs:
        pytest.skip("no BLAS library found by threadpoolctl")
    before = [lib.get_num_threads() for lib in libs]
    with query_threads():
        assert all(lib.get_num_threads() == 1 for lib in libs)
        with query_threads():
            assert all(lib.get_num_threads() == 1 for lib in libs)
        assert all(lib.get_num_threads() == 1 for lib in libs)  # the outer query still runs
    assert [lib.get_num_threads() for lib in libs] == before
