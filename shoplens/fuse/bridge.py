"""Decide, at index build time, whether to train, reuse or import the alignment heads."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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


# The products' image inputs, for some rows: (unit mean photo vectors, mean colour histograms or None).
ImageInputs = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


def product_image_inputs(image_vectors: np.ndarray, image_owner: np.ndarray, colour: np.ndarray | None) -> ImageInputs:
    """:data:`ImageInputs` over photo rows: only the asked products' photos are read and averaged
    (at 1M products the means of every product would be 5 GB, twice)."""

    def inputs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        rows = np.asarray(rows, np.int64)
        photos = np.flatnonzero(np.isin(image_owner, rows))
        local = np.searchsorted(rows, image_owner[photos])  # ``rows`` ascending
        means = product_means(np.asarray(image_vectors[photos], np.float32), local, len(rows))
        norms = np.linalg.norm(means, axis=1, keepdims=True)
        means = np.divide(means, norms, out=np.zeros_like(means), where=norms > 0)
        col = product_means(np.asarray(colour[photos], np.float32), local, len(rows)) if colour is not None else None
        return means, col

    return inputs


def sample_rows(rows: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """At most ``cap`` of ``rows`` (ascending), a seeded uniform sample when there are more."""
    if cap <= 0 or len(rows) <= cap:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, cap, replace=False))


def prepare_alignment(
    cfg: AlignConfig,
    text_vectors: np.ndarray,
    has_text: np.ndarray,
    has_image: np.ndarray,
    image_inputs: ImageInputs,
    image_vectors: np.ndarray,
    image_owner: np.ndarray,
    previous: AlignModel | None,
    external: Path | None = None,
    progress: bool = True,
) -> AlignModel | None:
    """The alignment model for a new generation: imported, retrained when the data grew, or kept.

    Heads train on at most ``align.max_pairs`` products (a seeded sample), so time and memory stay
    bounded at any catalogue size; ``pairs`` in the report counts every text+photo product."""
    if external is not None:
        model = AlignModel.load(external)
        log.info("using alignment model from %s", external)
        return model
    if not cfg.enabled:
        return None
    model = AlignModel(
        previous.text_image if previous else None,
        previous.photo if previous else None,
        cfg.colour_weight,
        dict(previous.reports) if previous else {},
        previous.ridge if previous else None,
        previous.weights if previous else (1.0, 1.0, 1.0),
    )
    all_pairs = np.flatnonzero(has_text & has_image)
    prev_pairs = int(model.reports.get("text_image", {}).get("pairs", 0))
    if len(all_pairs) >= cfg.min_pairs and (
        model.text_image is None or len(all_pairs) >= prev_pairs * (1 + cfg.retrain_growth)
    ):
        pairs = sample_rows(all_pairs, cfg.max_pairs, cfg.seed)
        images, colour = image_inputs(pairs)
        x = np.hstack([images, cfg.colour_weight * colour]) if colour is not None and colour.size else images
        x, t = x.astype(np.float32), np.asarray(text_vectors[pairs], np.float32)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(1) as pool:
            # torch's first import (~2 s) on one core while the ridge map of the training split,
            # the head's starting point, is fitted on the other.
            torch_ready = pool.submit(import_torch)
            start = ridge_start(x, t, cfg) if cfg.head_start == "ridge" else None
            torch_ready.result()
            # The rest of the ridge maps and the k-NN transfer do not need the head: fit them
            # (numpy, in a thread) while the head trains (torch, one thread), so both cores work.
            side = pool.submit(bridge_parts, x, t, images, cfg, start)
            head, report = train_text_image(x, t, cfg, progress, init=start.head if start else None)
            t1 = time.perf_counter()
            model.ridge, held_out = side.result()
        t2 = time.perf_counter()
        model.text_image, model.colour_weight = head, cfg.colour_weight
        model.weights, model.reports["bridge_mix"] = tune_bridge_weights(head, x, t, images, cfg, held_out)
        log.info(
            "text–image bridges (s): head=%.2f ridge+knn wait=%.2f tune=%.2f", t1 - t0, t2 - t1, time.perf_counter() - t2
        )
        model.reports["text_image"] = {**report, "pairs": int(len(all_pairs)), "sampled": int(len(pairs))}
    elif len(all_pairs) < cfg.min_pairs and model.text_image is None:
        log.info("text–image alignment not trained: %d text+photo products (< %d)", len(all_pairs), cfg.min_pairs)
    counts = np.bincount(image_owner, minlength=len(has_text)) if len(image_owner) else np.zeros(0, int)
    multi = int((counts >= 2).sum()) if len(counts) else 0
    prev_photos = int(model.reports.get("photo", {}).get("photos", 0))
    if multi >= cfg.photo_min_products and (model.photo is None or len(image_owner) >= prev_photos * (1 + cfg.retrain_growth)):
        # Single-photo products have no positive pair to learn from.
        owners = sample_rows(np.flatnonzero(counts >= 2), cfg.max_pairs, cfg.seed)
        keep = np.flatnonzero(np.isin(image_owner, owners))
        head, report = train_photo(np.asarray(image_vectors[keep], np.float32), image_owner[keep], cfg, progress)
        report = {**report, "photos": int(len(image_owner)), "sampled_photos": int(len(keep))}
        model.photo = head
        model.reports["photo"] = report
    if model.text_image is None and model.photo is None:
        return None
    return model
