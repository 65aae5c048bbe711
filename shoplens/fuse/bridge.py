"""Decide, at index build time, whether to train, reuse or import the alignment heads."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..config import AlignConfig
from .align import (
    AlignModel,
    bridge_parts,
    import_torch,
    ridge_start,
    train_photo,
    train_text_image,
    tune_bridge_weights,
)

log = logging.getLogger(__name__)


def product_means(values: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
    """Per product, the mean of its photos' rows (zeros for products without photos)."""
    dim = values.shape[1] if values.ndim == 2 else 0
    acc = np.zeros((n, dim), np.float32)
    if len(owners):
        np.add.at(acc, owners, values)
        counts = np.bincount(owners, minlength=n).astype(np.float32)[:, None]
        acc = np.divide(acc, counts, out=acc, where=counts > 0)
    return acc


def prepare_alignment(
    cfg: AlignConfig,
    text_vectors: np.ndarray,
    has_text: np.ndarray,
    product_image: np.ndarray,
    product_colour: np.ndarray | None,
    image_vectors: np.ndarray,
    image_owner: np.ndarray,
    previous: AlignModel | None,
    external: Path | None = None,
    progress: bool = True,
) -> AlignModel | None:
    """The alignment model for a new generation: imported, retrained when the data grew, or kept."""
    if external is not None:
        model = AlignModel.load(external)
        log.info("using alignment model from %s", external)
        return model
    if not cfg.enabled:
        return None
    has_image = np.linalg.norm(product_image, axis=1) > 0 if product_image.size else np.zeros(len(has_text), bool)
    model = AlignModel(
        previous.text_image if previous else None,
        previous.photo if previous else None,
        cfg.colour_weight,
        dict(previous.reports) if previous else {},
        previous.ridge if previous else None,
        previous.weights if previous else (1.0, 1.0, 1.0),
    )
    pairs = np.flatnonzero(has_text & has_image)
    prev_pairs = int(model.reports.get("text_image", {}).get("pairs", 0))
    if len(pairs) >= cfg.min_pairs and (model.text_image is None or len(pairs) >= prev_pairs * (1 + cfg.retrain_growth)):
        colour = product_colour[pairs] if product_colour is not None and len(product_colour) else None
        x = np.hstack([product_image[pairs], cfg.colour_weight * colour]) if colour is not None else product_image[pairs]
        x, t = x.astype(np.float32), np.asarray(text_vectors, np.float32)[pairs]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(1) as pool:
            # torch's first import (~2 s) on one core while the ridge map of the training split,
            # the head's starting point, is fitted on the other.
            torch_ready = pool.submit(import_torch)
            start = ridge_start(x, t, cfg) if cfg.head_start == "ridge" else None
            torch_ready.result()
            # The rest of the ridge maps and the k-NN transfer do not need the head: fit them
            # (numpy, in a thread) while the head trains (torch, one thread), so both cores work.
            side = pool.submit(bridge_parts, x, t, product_image[pairs], cfg, start)
            head, report = train_text_image(x, t, cfg, progress, init=start.head if start else None)
            t1 = time.perf_counter()
            model.ridge, held_out = side.result()
        t2 = time.perf_counter()
        model.text_image, model.colour_weight = head, cfg.colour_weight
        model.weights, model.reports["bridge_mix"] = tune_bridge_weights(
            head, x, t, product_image[pairs], cfg, held_out
        )
        log.info(
            "text–image bridges (s): head=%.2f ridge+knn wait=%.2f tune=%.2f", t1 - t0, t2 - t1, time.perf_counter() - t2
        )
        model.reports["text_image"] = report
    elif len(pairs) < cfg.min_pairs and model.text_image is None:
        log.info("text–image alignment not trained: %d text+photo products (< %d)", len(pairs), cfg.min_pairs)
    counts = np.bincount(image_owner, minlength=len(has_text)) if len(image_owner) else np.zeros(0, int)
    multi = int((counts >= 2).sum()) if len(counts) else 0
    prev_photos = int(model.reports.get("photo", {}).get("photos", 0))
    if multi >= cfg.photo_min_products and (model.photo is None or len(image_owner) >= prev_photos * (1 + cfg.retrain_growth)):
        keep = counts[image_owner] >= 2  # single-photo products have no positive pair to learn from
        head, report = train_photo(np.asarray(image_vectors)[keep], image_owner[keep], cfg, progress)
        model.photo = head
        model.reports["photo"] = report
    if model.text_image is None and model.photo is None:
        return None
    return model
