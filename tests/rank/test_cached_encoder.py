"""Query-time gram vectors do not depend on which queries ran before (rank/understand.py)."""

from __future__ import annotations

import numpy as np

from shoplens.encode.use_onnx import USEOnnxTextEncoder
from shoplens.rank.understand import CachedEncoder


def test_gram_vectors_do_not_depend_on_earlier_queries() -> None:
    model = USEOnnxTextEncoder()
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return model.encode(texts)

    first, second = CachedEncoder(encode), CachedEncoder(encode)
    first(["long sleeve cotton shirt for men", "tee"])  # another query ran before "tee" here
    a = first(["tee", "red"])
    b = second(["red", "tee"])[::-1]
    np.testing.assert_array_equal(a, b)
    assert all(len(c) == 1 for c in calls)  # one text per model call: no batch-mates
    np.testing.assert_array_equal(a[0], model.encode(["tee"])[0])
    assert len(calls) == 5 and first(["tee", "red"]).shape == (2, 512) and len(calls) == 5  # cached
