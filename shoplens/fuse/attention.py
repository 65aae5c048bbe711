"""Attention fusion for "more like this": per-product weights for text and image, learned.

The fixed fusion scores a neighbour q of product p as the cosine in ``[w_t·c; w_i·f]``. Attention
fusion gives each product its own mix, ``s(p, q) = α_p·c_p·c_q + (1 − α_p)·f_p·f_q`` with
``α_p = σ(θ·z_p)``, where ``z_p`` describes how informative each modality is for that product
(bias; how close its 10 nearest text neighbours are; the same for photos) — a product whose photo
looks like many others' leans on its text, and the other way round.

θ is learned from the catalogue itself, without judged queries: products sharing more of their
categorical attribute values (facets) should be nearer (listwise softmax cross-entropy over a sample
of candidates). A catalogue without facets, or without both modalities, keeps the fixed weights.

Measured on the fashion dev catalogue (products split in half, θ learned on one half, "more like
this" from each product of the other half, nDCG@10 with the dev relevance rule: same article type,
and colour for full relevance): fixed equal weights 0.784, attention 0.807 (α ≈ 0.82 ± 0.04). In a
first probe the best fixed text share found *with the labels* (0.7) gave 0.810: most of the gain is
the learned balance; the per-product variation adds little.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

SAMPLE = 2000  # candidates per step and reference products for the neighbourhood features
ANCHORS = 256
STEPS = 200
LEARNING_RATE = 0.1
TEMPERATURE = 0.05
MAX_FIELD_VALUES = 300


@dataclass(frozen=True)
class Gate:
    """``α = σ(θ·z)`` with standardised features ``z``."""

    theta: np.ndarray  # 3
    mean: np.ndarray  # 2 (feature standardisation)
    std: np.ndarray

    def alpha(self, feats: np.ndarray) -> np.ndarray:
        z = np.column_stack([np.ones(len(feats)), (feats - self.mean) / self.std])
        return (1.0 / (1.0 + np.exp(-(z @ self.theta)))).astype(np.float32)


def density(vectors: np.ndarray, reference: np.ndarray, k: int = 10, chunk: int = 4096) -> np.ndarray:
    """Mean cosine to each row's ``k`` nearest reference rows (itself excluded when present)."""
    out = np.zeros(len(vectors), np.float32)
    ref = np.asarray(reference, np.float32)
    for s in range(0, len(vectors), chunk):
        sims = np.asarray(vectors[s : s + chunk], np.float32) @ ref.T
        top = -np.partition(-sims, min(k + 1, sims.shape[1] - 1), axis=1)[:, : k + 1]
        top.sort(axis=1)
        out[s : s + chunk] = top[:, :-1].mean(axis=1)  # drop the single best (most likely itself)
    return out


def facet_codes(facet_items: Sequence[list[tuple[str, str]]]) -> np.ndarray | None:
    """Products × fields integer codes of the categorical attributes (-1 where missing)."""
    values: dict[str, dict[str, int]] = {}
    for items in facet_items:
        for f, v in items:
            values.setdefault(f, {}).setdefault(v, len(values[f]))
    fields = [f for f, vs in values.items() if 1 < len(vs) <= MAX_FIELD_VALUES]
    if not fields:
        return None
    codes = np.full((len(facet_items), len(fields)), -1, np.int32)
    col = {f: j for j, f in enumerate(fields)}
    for r, items in enumerate(facet_items):
        for f, v in items:
            if f in col:
                codes[r, col[f]] = values[f][v]
    return codes


def train_gate(
    feats: np.ndarray, text: np.ndarray, image: np.ndarray, codes: np.ndarray, seed: int = 0
) -> tuple[Gate, dict[str, float]]:
    """Learn θ from products having both modalities (rows aligned across the arguments).

    Only α depends on θ, so the anchor × candidate similarities and targets are computed once and
    θ (three numbers) follows the exact gradient of the listwise loss with Adam, in numpy."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = len(feats)
    mean, std = feats.mean(axis=0), np.maximum(feats.std(axis=0), 1e-6)
    z = np.column_stack([np.ones(n), (feats - mean) / std])
    a_idx = rng.choice(n, min(n, ANCHORS), replace=False)
    c_idx = rng.choice(n, min(n, SAMPLE), replace=False)
    tc = (text[a_idx] @ text[c_idx].T).astype(np.float32) / TEMPERATURE
    ic = (image[a_idx] @ image[c_idx].T).astype(np.float32) / TEMPERATURE
    ca, cc = codes[a_idx], codes[c_idx]
    shared = np.zeros((len(a_idx), len(c_idx)), np.float32)
    for j in range(codes.shape[1]):
        shared += (ca[:, j, None] == cc[None, :, j]) & (ca[:, j, None] >= 0)
    self_mask = a_idx[:, None] == c_idx[None, :]
    off = np.where(self_mask, np.float32(-1e9), np.float32(0.0))  # an anchor is not its own candidate
    target = np.exp(shared * 2.0 + off - (shared * 2.0 + off).max(axis=1, keepdims=True))
    target /= target.sum(axis=1, keepdims=True)
    diff = tc - ic
    # θ (the gate) and a free log-scale τ: the scale absorbs how sharp the targets are, so that α
    # only decides the mix (without it, mixing in a noisy modality "wins" by blurring the scores).
    params = np.zeros(z.shape[1] + 1)
    m = np.zeros_like(params)
    v = np.zeros_like(params)
    za = z[a_idx]
    loss = float("nan")
    for step in range(1, STEPS + 1):
        theta, scale = params[:-1], float(np.exp(params[-1]))
        alpha = (1.0 / (1.0 + np.exp(-(za @ theta)))).astype(np.float32)
        base = ic + alpha[:, None] * diff
        logits = scale * base + off
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        total = e.sum(axis=1, keepdims=True)
        p = e / total
        loss = float(-(target * (logits - np.log(total))).sum(axis=1).mean())
        resid = (p - target) / len(a_idx)
        d_alpha = scale * (resid * diff).sum(axis=1)
        grad = np.append((d_alpha * alpha * (1 - alpha)).astype(np.float64) @ za, float((resid * base).sum()) * scale)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        params -= LEARNING_RATE * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    theta = params[:-1]
    gate = Gate(theta, mean, std)
    alpha_all = gate.alpha(feats)
    report = {
        "products": int(n),
        "alpha_mean": round(float(alpha_all.mean()), 4),
        "alpha_std": round(float(alpha_all.std()), 4),
        "loss": round(loss, 4),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    log.info("attention fusion gate: %s", report)
    return gate, report


class AttentionFusion:
    """A learned gate plus the reference sample its neighbourhood features are measured against;
    a product's α costs two (1 × d)·(d × SAMPLE) products, so no per-catalogue pass is needed."""

    def __init__(self, gate: Gate, text_ref: np.ndarray, image_ref: np.ndarray, report: dict[str, float]):
        self.gate = gate
        self.text_ref = text_ref
        self.image_ref = image_ref
        self.report = report

    def alpha(self, text: np.ndarray, image: np.ndarray, has_text: bool, has_image: bool) -> float:
        """The text share for one product (1 text-only, 0 photo-only)."""
        if not has_image:
            return 1.0
        if not has_text:
            return 0.0
        feats = np.column_stack([density(text[None, :], self.text_ref), density(image[None, :], self.image_ref)])
        return float(self.gate.alpha(feats)[0])


def fit_attention(
    text: np.ndarray,
    image: np.ndarray,
    has_text: np.ndarray,
    has_image: np.ndarray,
    facet_items: Sequence[list[tuple[str, str]]],
    seed: int = 0,
) -> AttentionFusion | None:
    """Learn the gate from a sample of the catalogue, or None when it gives nothing to learn from
    (no facets, or fewer than 50 products with both a text and a photo)."""
    both = has_text & has_image
    if int(both.sum()) < 50 or image.shape[1] == 0:
        return None
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(both)
    ref = rows if len(rows) <= SAMPLE else np.sort(rng.choice(rows, SAMPLE, replace=False))
    # θ has three numbers: a few thousand products are plenty to learn it from (and only their
    # facets are read, so a million-product catalogue costs the same).
    fit = rows if len(rows) <= 4 * SAMPLE else np.sort(rng.choice(rows, 4 * SAMPLE, replace=False))
    codes = facet_codes([facet_items[int(r)] for r in fit])
    if codes is None:
        return None
    text_ref, image_ref = np.asarray(text[ref], np.float32), np.asarray(image[ref], np.float32)
    tf, imf = np.asarray(text[fit], np.float32), np.asarray(image[fit], np.float32)
    feats = np.column_stack([density(tf, text_ref), density(imf, image_ref)])
    gate, report = train_gate(feats, tf, imf, codes, seed)
    return AttentionFusion(gate, text_ref, image_ref, report)
