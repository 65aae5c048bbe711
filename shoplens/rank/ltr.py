"""Learning-to-rank with LightGBM LambdaMART (Burges, 2010): train, tune by grouped CV, save, explain."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, MissingDependencyError
from ..eval.metrics import ndcg_at
from .features import FEATURES

log = logging.getLogger(__name__)

RANKER_DIR = "ranker"
FORMAT = 1
GRID = [
    {"num_leaves": 7, "n_estimators": 150, "learning_rate": 0.05},
    {"num_leaves": 15, "n_estimators": 300, "learning_rate": 0.05},
    {"num_leaves": 31, "n_estimators": 300, "learning_rate": 0.03},
]


LIBRARIES = ("lightgbm", "xgboost")
MODEL_FILE = {"lightgbm": "model.txt", "xgboost": "model.json"}


def _lgb() -> Any:
    try:
        import lightgbm
    except ImportError as e:
        raise MissingDependencyError("lightgbm", "rank", "learning-to-rank") from e
    return lightgbm


def _xgb() -> Any:
    try:
        import xgboost
    except ImportError as e:
        raise MissingDependencyError("xgboost-cpu", "xgboost", "the XGBoost ranker") from e
    return xgboost


@dataclass
class TrainingSet:
    """Candidate features grouped by query, with graded labels (0 for unjudged candidates)."""

    x: np.ndarray
    y: np.ndarray
    groups: list[int]  # candidates per query, in order
    qids: list[str]
    # Values judged as good as the asked ones (rank/train.py value_compatibility), kept with the model.
    compatible: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # Fields a history may state a preference on (rank/train.py preference_fields), kept with the model.
    preference_fields: list[str] | None = None

    def slices(self) -> list[slice]:
        out, start = [], 0
        for g in self.groups:
            out.append(slice(start, start + g))
            start += g
        return out


class Ranker:
    """A trained LambdaMART model (LightGBM, or XGBoost's rank:ndcg) with its feature list; predicts
    and explains (per-feature SHAP contributions: LightGBM pred_contrib, XGBoost pred_contribs)."""

    def __init__(self, booster: Any, features: Sequence[str], meta: dict[str, Any]) -> None:
        self.booster = booster
        self.features = list(features)
        self.meta = meta
        self.library = str(meta.get("library", "lightgbm"))

    def _raw(self, x: np.ndarray, contrib: bool = False) -> np.ndarray:
        x = self._align(x)
        if self.library == "xgboost":
            m = _xgb().DMatrix(x, feature_names=self.features)
            return np.asarray(self.booster.predict(m, pred_contribs=contrib))
        return np.asarray(self.booster.predict(x, pred_contrib=contrib))

    def _align(self, x: np.ndarray) -> np.ndarray:
        if self.features == list(FEATURES):
            return x
        cols = [FEATURES.index(f) if f in FEATURES else -1 for f in self.features]
        out = np.zeros((x.shape[0], len(cols)), np.float32)
        for j, c in enumerate(cols):
            if c >= 0:
                out[:, j] = x[:, c]
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._raw(x).astype(np.float64)

    def explain(self, x: np.ndarray) -> list[dict[str, float]]:
        """Per row, each feature's contribution to the score (plus the model's bias)."""
        contrib = self._raw(x, contrib=True)
        out = []
        for row in contrib:
            d = {f: round(float(v), 5) for f, v in zip(self.features, row[:-1], strict=True) if abs(v) > 1e-6}
            d["(bias)"] = round(float(row[-1]), 5)
            out.append(d)
        return out

    def importance(self) -> dict[str, float]:
        if self.library == "xgboost":
            score = self.booster.get_score(importance_type="total_gain")
            gain = [float(score.get(f, 0.0)) for f in self.features]
        else:
            gain = list(self.booster.feature_importance(importance_type="gain"))
        return {
            f: round(float(g), 3)
            for f, g in sorted(zip(self.features, gain, strict=True), key=lambda t: -t[1])
        }

    def save(self, folder: Path) -> None:
        """Write atomically: a crash leaves the previous ranker (or none) in place."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".ranker-"))
        try:
            self.booster.save_model(str(tmp / MODEL_FILE[self.library]))
            (tmp / "ranker.json").write_text(
                json.dumps({**self.meta, "features": self.features, "format": FORMAT}, indent=2),
                encoding="utf-8",
            )
            old = folder.parent / f".old-{folder.name}"
            if folder.exists():
                os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> Ranker | None:
        if not (folder / "ranker.json").is_file():
            return None
        meta = json.loads((folder / "ranker.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ConfigError(f"{folder}: ranker format {meta.get('format')} is not supported; retrain it")
        library = meta.get("library", "lightgbm")
        if library not in LIBRARIES:
            raise ConfigError(f"{folder}: unknown ranker library {library!r}")
        path = folder / MODEL_FILE[library]
        if library == "xgboost":
            booster = _xgb().Booster()
            booster.load_model(str(path))
        else:
            booster = _lgb().Booster(model_file=str(path))
        return cls(booster, meta["features"], meta)


def _fit(
    data: TrainingSet,
    params: dict[str, Any],
    seed: int,
    rows: np.ndarray | None = None,
    library: str = "lightgbm",
) -> Any:
    slices = data.slices()
    chosen = list(range(len(slices)) if rows is None else rows)
    xs = np.vstack([data.x[slices[i]] for i in chosen])
    ys = np.concatenate([data.y[slices[i]] for i in chosen])
    if library == "xgboost":
        xgb = _xgb()
        model = xgb.XGBRanker(
            objective="rank:ndcg",
            tree_method="hist",
            grow_policy="lossguide",
            max_leaves=params["num_leaves"],
            n_estimators=params["n_estimators"],
            learning_rate=params["learning_rate"],
            min_child_weight=1.0,
            subsample=0.9,
            colsample_bytree=0.9,
            random_state=seed,
            n_jobs=1,
        )
        qid = np.concatenate([np.full(data.groups[i], n, np.int64) for n, i in enumerate(chosen)])
        model.fit(xs, ys, qid=qid)
        return model
    lgb = _lgb()
    model = lgb.LGBMRanker(
        objective="lambdarank",
        min_child_samples=10,
        subsample=0.9,
        subsample_freq=1,
        colsample_bytree=0.9,
        random_state=seed,
        n_jobs=1,  # deterministic, and the model is small
        verbose=-1,
        **params,
    )
    model.fit(xs, ys, group=[data.groups[i] for i in chosen])
    return model


def _ndcg_of(model: Any, data: TrainingSet, queries: Sequence[int]) -> float:
    slices = data.slices()
    scores = []
    for i in queries:
        s = slices[i]
        pred = model.predict(data.x[s])
        order = np.argsort(-pred, kind="stable")
        ranked = [str(j) for j in order]
        qrels = {str(j): int(g) for j, g in enumerate(data.y[s]) if g > 0}
        scores.append(ndcg_at(ranked, qrels, 10) if qrels else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def train_ranker(
    data: TrainingSet, folds: int = 3, seed: int = 0, library: str = "lightgbm", source: str = "judgments"
) -> Ranker:
    """Pick hyper-parameters by grouped (per-query) cross-validation, then fit on every query."""
    if library not in LIBRARIES:
        raise ConfigError(f"ranker library must be one of {', '.join(LIBRARIES)}, got {library!r}")
    if len(data.groups) < 4:
        raise ConfigError(
            f"need at least 4 judged queries with candidates to train a ranker, got {len(data.groups)}"
        )
    t0 = time.perf_counter()
    # Folds by query (a query's augmented variant stays in its fold: no leakage between folds).
    bases = sorted({q.split("#")[0] for q in data.qids})
    order = np.random.default_rng(seed).permutation(len(bases))
    fold_of_base = {bases[int(j)]: i % folds for i, j in enumerate(order)}
    fold_of = {n: fold_of_base[q.split("#")[0]] for n, q in enumerate(data.qids)}
    cv: list[dict[str, Any]] = []
    for params in GRID:
        vals = []
        for f in range(folds):
            train = np.array([q for q in range(len(data.groups)) if fold_of[q] != f])
            test = [q for q in range(len(data.groups)) if fold_of[q] == f]
            vals.append(_ndcg_of(_fit(data, params, seed, train, library), data, test))
        cv.append({"params": params, "cv_ndcg@10": round(float(np.mean(vals)), 4)})
        log.info("grouped CV %s: nDCG@10 %.4f", params, np.mean(vals))
    best = max(cv, key=lambda c: c["cv_ndcg@10"])
    model = _fit(data, best["params"], seed, library=library)
    from .. import __version__

    meta = {
        "shoplens_version": __version__,
        "library": library,
        "objective": "rank:ndcg" if library == "xgboost" else "lambdarank",
        "source": source,
        "params": best["params"],
        "cv": cv,
        "queries": len(data.groups),
        # Personalised training copies: the ranker then weighs history itself (see rerank.py).
        "history_queries": sum(1 for q in data.qids if "#history" in q),
        "candidates": int(len(data.y)),
        "compatible": data.compatible,
        "preference_fields": data.preference_fields,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if library == "xgboost":
        booster = model.get_booster()
        booster.feature_names = list(FEATURES)
    else:
        booster = model.booster_
    return Ranker(booster, list(FEATURES), meta)
