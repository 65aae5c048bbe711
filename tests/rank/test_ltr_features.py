"""A ranker stored with another feature list than today's (trained before features were added or
removed) still loads, and scores and explains each feature by its name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoplens.rank.features import FEATURES
from shoplens.rank.ltr import Ranker


def test_a_ranker_stored_with_an_older_feature_list_loads_and_scores_by_name(tmp_path: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    # An older list: two of today's features did not exist yet, and one it had is gone.
    added = [FEATURES[3], FEATURES[-1]]
    old = [f for f in FEATURES if f not in added] + ["retired_feature"]
    rng = np.random.default_rng(0)
    x_old = rng.normal(size=(300, len(old))).astype(np.float32)
    y = x_old[:, old.index("bm25")] - x_old[:, old.index("attr_mismatch")] + 0.5 * x_old[:, old.index("retired_feature")]
    params = {"objective": "regression", "verbose": -1, "num_leaves": 4, "min_data_in_leaf": 5, "seed": 0}
    booster = lgb.train(params, lgb.Dataset(x_old, y), 10)
    Ranker(booster, old, {"library": "lightgbm"}).save(tmp_path / "ranker")
    loaded = Ranker.load(tmp_path / "ranker")
    assert loaded is not None and loaded.features == old
    # Today's feature matrix: the old columns found by name; the added ones must not reach the
    # model whatever their values; the retired one is read as 0.
    x_now = np.zeros((len(x_old), len(FEATURES)), np.float32)
    for j, f in enumerate(old):
        if f in FEATURES:
            x_now[:, FEATURES.index(f)] = x_old[:, j]
    x_now[:, [FEATURES.index(f) for f in added]] = 99.0
    expected_input = x_old.copy()
    expected_input[:, old.index("retired_feature")] = 0.0
    assert np.allclose(loaded.predict(x_now), booster.predict(expected_input))
    explained = loaded.explain(x_now[:3])
    assert all(set(e) <= set(old) | {"(bias)"} for e in explained)
    assert any("bm25" in e for e in explained)
