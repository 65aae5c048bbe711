"""Learned bridges between modalities, trained on the catalogue's own products.

* text–image: a head maps a product's image features (+ its colour histogram) into the frozen
  multilingual text space, trained with symmetric InfoNCE (CLIP-style, Radford et al. 2021) on
  products that have both; the text side stays the encoder's own space, so Chinese queries keep
  working although the catalogue is English.
* photo–photo: a head trained with supervised contrastive loss (Khosla et al. 2020) so photos of
  the same product (studio and shop photos) land together.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..config import AlignConfig
from ..encode.base import l2_normalize
from ..errors import MissingDependencyError
from .heads import ProjectionHead, data_hash, write_json

log = logging.getLogger(__name__)


@dataclass
class AlignModel:
    """The trained heads with their training reports; either head may be absent."""

    text_image: ProjectionHead | None = None
    photo: ProjectionHead | None = None
    colour_weight: float = 0.5
    reports: dict[str, Any] = field(default_factory=dict)
    ridge: ProjectionHead | None = None  # least-squares image → text map, ensembled with the InfoNCE head
    # Weights of the three bridges (InfoNCE head, ridge, k-NN text transfer), chosen on the held-out split.
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def project(self, x: np.ndarray) -> np.ndarray:
        """Image inputs → unit vectors in the text space: the weighted sum of the trained heads."""
        assert self.text_image is not None
        out = self.weights[0] * self.text_image.apply(x)
        if self.ridge is not None and self.weights[1]:
            out = out + self.weights[1] * self.ridge.apply(x)
        return l2_normalize(out)

    def image_inputs(self, features: np.ndarray, colour: np.ndarray | None) -> np.ndarray:
        """The text–image head's input: image features, then the weighted colour histogram."""
        if self.text_image is None:
            return features
        extra = self.text_image.d_in - features.shape[1]
        if extra <= 0:
            return features
        if colour is None or colour.shape[1] != extra:
            colour = np.zeros((features.shape[0], extra), np.float32)
        return np.hstack([features, self.colour_weight * colour]).astype(np.float32)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self.text_image is not None:
            self.text_image.save(folder, "text_image")
        if self.photo is not None:
            self.photo.save(folder, "photo")
        if self.ridge is not None:
            self.ridge.save(folder, "ridge")
        write_json(
            folder / "align.json",
            {"colour_weight": self.colour_weight, "reports": self.reports, "weights": list(self.weights)},
        )

    @classmethod
    def load(cls, folder: Path) -> AlignModel:
        meta = json.loads((folder / "align.json").read_text(encoding="utf-8"))
        ti = ProjectionHead.load(folder, "text_image") if (folder / "text_image.weight.npy").is_file() else None
        ph = ProjectionHead.load(folder, "photo") if (folder / "photo.weight.npy").is_file() else None
        ridge = ProjectionHead.load(folder, "ridge") if (folder / "ridge.weight.npy").is_file() else None
        w = tuple(float(v) for v in meta.get("weights", (1.0, 1.0, 1.0)))
        return cls(ti, ph, float(meta.get("colour_weight", 0.5)), meta.get("reports", {}), ridge, (w[0], w[1], w[2]))


def import_torch() -> Any:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a default dependency
        raise MissingDependencyError("torch", "default", "training alignment heads") from e
    # One thread: the heads are small (thread start-up costs more than it saves on 2 cores, and
    # far more when the machine is busy), and a fixed thread count keeps results reproducible.
    torch.set_num_threads(1)
    return torch


class AdamW:
    """AdamW (Loshchilov & Hutter, 2019) computed as torch's single-tensor CPU path does, written out
    because ``torch.optim``'s first step imports ``torch._dynamo`` (2–5 s) for two small tensors."""

    def __init__(
        self, params: list[Any], lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        torch = import_torch()
        self.params, self.lr, self.weight_decay, self.betas, self.eps = params, lr, weight_decay, betas, eps
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
        self.steps = 0
        self._no_grad = torch.no_grad

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.steps += 1
        b1, b2 = self.betas
        step_size = self.lr / (1 - b1**self.steps)
        bias2_sqrt = (1 - b2**self.steps) ** 0.5
        with self._no_grad():
            for p, (m, v) in zip(self.params, self.moments, strict=True):
                if p.grad is None:
                    continue
                g = p.grad
                p.mul_(1 - self.lr * self.weight_decay)
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                p.addcdiv_(m, (v.sqrt() / bias2_sqrt).add_(self.eps), value=-step_size)


def effective_patience(patience: int, patience_pairs: int, n_train: int, floor: int = 2) -> int:
    """Epochs without improvement to wait: ``patience``, or fewer when each epoch is long, so the
    wait covers about ``patience_pairs`` training pairs (at least ``floor`` epochs)."""
    if n_train <= 0 or patience_pairs <= 0:
        return patience
    return max(min(patience, floor), min(patience, round(patience_pairs / n_train)))


def _split(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    nv = max(1, int(round(n * holdout)))
    return perm[nv:], perm[:nv]


def train_text_image(
    x: np.ndarray, t: np.ndarray, cfg: AlignConfig, progress: bool = True, init: ProjectionHead | None = None
) -> tuple[ProjectionHead, dict]:
    """Fit image inputs ``x`` (n × d_in) to unit text vectors ``t`` (n × d_t); early stop on held-out
    text→image MRR. ``init``: starting weights (e.g. the ridge map fitted on the same training
    split, :func:`ridge_start`), else a random start."""
    torch = import_torch()
    torch.manual_seed(cfg.seed)
    x_t, t_t = torch.tensor(x, dtype=torch.float32), torch.tensor(t, dtype=torch.float32)
    train, val = _split(len(x), cfg.holdout, cfg.seed)
    lin = torch.nn.Linear(x.shape[1], t.shape[1])
    if init is not None:
        if (init.d_in, init.d_out) != (x.shape[1], t.shape[1]):
            raise ValueError(f"init head is {init.d_in}×{init.d_out}, the data {x.shape[1]}×{t.shape[1]}")
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(init.weight.T, np.float32)))
            lin.bias.copy_(torch.from_numpy(np.asarray(init.bias, np.float32)))
    drop = torch.nn.Dropout(cfg.dropout)
    log_scale = torch.nn.Parameter(torch.tensor(float(np.log(1.0 / cfg.temperature))))
    params = list(lin.parameters()) + ([log_scale] if cfg.learn_temperature else [])
    opt = AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    # Epoch -1 is the start: a given start that training never beats is kept as it is.
    scores = _heldout_scores(lin, x_t, t_t, torch.as_tensor(val), torch)
    best: tuple[tuple[float, float], int, dict, float] = (
        scores, -1, {k: v.detach().clone() for k, v in lin.state_dict().items()}, float(log_scale.detach())
    )
    patience = effective_patience(cfg.patience, cfg.patience_pairs, len(train))
    t0 = time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc="aligning text–image", unit="epoch", disable=None if progress else True)
    for epoch in bar:
        lin.train()
        order = torch.as_tensor(train)[torch.randperm(len(train), generator=gen)]
        for i in range(0, len(order), cfg.batch_size):
            b = order[i : i + cfg.batch_size]
            if len(b) < 2:
                continue
            zi = torch.nn.functional.normalize(lin(drop(x_t[b])), dim=1)
            logits = zi @ t_t[b].T * log_scale.exp().clamp(max=100)
            labels = torch.arange(len(b))
            loss = (
                torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(logits.T, labels)
            ) / 2
            opt.zero_grad()
            loss.backward()
            opt.step()
        scores = _heldout_scores(lin, x_t, t_t, torch.as_tensor(val), torch)
        bar.set_postfix(mrr=f"{scores[0]:.3f}", r10=f"{scores[1]:.3f}")
        if scores[0] > best[0][0]:
            best = (scores, epoch, {k: v.detach().clone() for k, v in lin.state_dict().items()}, float(log_scale.detach()))
        elif epoch - best[1] >= patience:
            break
    (mrr, recall), epoch, state, scale = best
    head = ProjectionHead(state["weight"].numpy().T.copy(), state["bias"].numpy().copy())
    report = {
        "pairs": int(len(x)),
        "train": int(len(train)),
        "heldout": int(len(val)),
        "heldout_text_to_image_recall@10": round(recall, 4),
        "heldout_text_to_image_mrr": round(mrr, 4),
        "best_epoch": int(epoch),
        "patience": int(patience),
        "start": "given" if init is not None else "random",
        "temperature": round(float(np.exp(-scale)), 4),
        "seconds": round(time.perf_counter() - t0, 1),
        "data_hash": data_hash(x, t),
        "config": asdict(cfg),
    }
    log.info("text–image head: held-out t→i MRR %.3f, recall@10 %.3f (%d pairs)", mrr, recall, len(x))
    return head, report


def gram(x: np.ndarray) -> np.ndarray:
    """``XᵀX`` in float64 (the ridge fits share it: the full fit is the training part's plus the held-out part's)."""
    x64 = x.astype(np.float64)
    return x64.T @ x64


def fit_ridge(x: np.ndarray, t: np.ndarray, lam: float = 1.0, xtx: np.ndarray | None = None) -> ProjectionHead:
    """Closed-form ridge regression ``W = (XᵀX + λI)⁻¹ XᵀT`` (Hoerl & Kennard, 1970); ``xtx``: a
    precomputed ``XᵀX``."""
    x64, t64 = x.astype(np.float64), t.astype(np.float64)
    g = xtx if xtx is not None else x64.T @ x64
    w = np.linalg.solve(g + lam * np.eye(x.shape[1]), x64.T @ t64)
    return ProjectionHead(w.astype(np.float32), np.zeros(t.shape[1], np.float32))


@dataclass(frozen=True)
class RidgeStart:
    """The ridge map fitted on the training split alone, with that split's ``XᵀX``: the InfoNCE
    head's starting point and the first half of :func:`bridge_parts`."""

    head: ProjectionHead
    g_train: np.ndarray


def ridge_start(x: np.ndarray, t: np.ndarray, cfg: AlignConfig) -> RidgeStart:
    """Ridge regression on the training split (the split the head trains on, so its held-out
    products stay unseen)."""
    train, _val = _split(len(x), cfg.holdout, cfg.seed)
    g_train = gram(x[train])
    return RidgeStart(fit_ridge(x[train], t[train], xtx=g_train), g_train)


def bridge_parts(
    x: np.ndarray, t: np.ndarray, images: np.ndarray, cfg: AlignConfig, start: RidgeStart | None = None
) -> tuple[ProjectionHead, tuple[np.ndarray, np.ndarray]]:
    """Everything the bridge mix needs but the InfoNCE head (so it can run while the head trains):
    the ridge map on all pairs, and for the held-out split the ridge map fitted on the training
    split (``start``, when already fitted) and the k-NN text transfer from it."""
    train, val = _split(len(x), cfg.holdout, cfg.seed)
    start = start or ridge_start(x, t, cfg)
    ridge_all = fit_ridge(x, t, xtx=start.g_train + gram(x[val]))
    ridge_val = start.head.apply(x[val])
    return ridge_all, (ridge_val, knn_transfer(images[val], images[train], t[train]))


def knn_transfer(
    queries: np.ndarray, gallery: np.ndarray, values: np.ndarray, k: int = 10, temperature: float = 0.05
) -> np.ndarray:
    """For each query vector, the softmax-weighted mean of the ``values`` of its k nearest gallery
    vectors (cosine): label propagation of text vectors from similar-looking products."""
    out = np.zeros((len(queries), values.shape[1]), np.float32)
    if len(gallery) == 0 or len(queries) == 0:
        return out
    k = min(k, len(gallery))
    for start in range(0, len(queries), 1024):
        sims = queries[start : start + 1024] @ gallery.T
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(sims, idx, axis=1)
        w = np.exp((top - top.max(axis=1, keepdims=True)) / temperature)
        w /= w.sum(axis=1, keepdims=True)
        out[start : start + 1024] = np.einsum("qk,qkd->qd", w, values[idx])
    return l2_normalize(out)


def tune_bridge_weights(
    head: ProjectionHead,
    x: np.ndarray,
    t: np.ndarray,
    images: np.ndarray,
    cfg: AlignConfig,
    held_out: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[tuple[float, float, float], dict[str, Any]]:
    """Choose the mix of InfoNCE head, ridge map and k-NN transfer by text→image MRR on the
    same held-out split the head was early-stopped on (ridge and k-NN see only the training part;
    ``held_out``: their held-out outputs from :func:`bridge_parts`, computed here when absent)."""
    train, val = _split(len(x), cfg.holdout, cfg.seed)
    ridge_val, knn_val = held_out if held_out is not None else bridge_parts(x, t, images, cfg)[1]
    parts = (head.apply(x[val]), ridge_val, knn_val)
    grid = [(a, b, c) for a in (0.0, 0.5, 1.0) for b in (0.0, 0.5, 1.0) for c in (0.0, 0.5, 1.0) if a + b + c > 0]
    scored = []
    for w in grid:
        z = l2_normalize(w[0] * parts[0] + w[1] * parts[1] + w[2] * parts[2])
        sims = t[val] @ z.T
        # Mean reciprocal rank of each held-out product's photo for its own text: recall@10
        # saturates near 1 on small splits and cannot tell the mixes apart.
        mrr = float((1.0 / own_ranks(sims)).mean())
        scored.append((mrr, -sum(w), w))  # ties: the simpler (lighter) mix
    mrr, _neg, best = max(scored)
    return best, {"weights": list(best), "heldout_text_to_image_mrr": round(mrr, 4), "grid": len(grid)}


def own_ranks(sims: np.ndarray) -> np.ndarray:
    """Rank (1 = first) of each row's own item (the diagonal) among that row's similarities."""
    return (sims > np.diag(sims)[:, None]).sum(axis=1) + 1


def _heldout_scores(lin: Any, x: Any, t: Any, val: Any, torch: Any) -> tuple[float, float]:
    """Held-out text→image (MRR, recall@10) among the held-out products (the gallery is the split).
    MRR steers early stopping: recall@10 saturates near 1 on small splits and on near-duplicate
    photos, where it cannot tell epochs apart."""
    lin.eval()
    with torch.no_grad():
        zi = torch.nn.functional.normalize(lin(x[val]), dim=1)
        rank = own_ranks((t[val] @ zi.T).numpy())
    return float((1.0 / rank).mean()), float((rank <= 10).mean())


def train_photo(v: np.ndarray, owners: np.ndarray, cfg: AlignConfig, progress: bool = True) -> tuple[ProjectionHead, dict]:
    """Supervised contrastive head over photos: photos with the same owner are positives; early stop
    on held-out photo → product nearest-neighbour accuracy."""
    torch = import_torch()
    torch.manual_seed(cfg.seed)
    x = torch.tensor(v, dtype=torch.float32)
    y = torch.as_tensor(owners.astype(np.int64))
    train, val = _split(len(v), cfg.holdout, cfg.seed + 1)
    tr, va = torch.as_tensor(train), torch.as_tensor(val)
    lin = torch.nn.Linear(v.shape[1], cfg.photo_dim)
    opt = AdamW(list(lin.parameters()), lr=cfg.lr, weight_decay=cfg.photo_weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    best: tuple[float, int, dict] = (-1.0, -1, {})
    patience = effective_patience(cfg.patience * 2, cfg.patience_pairs * 2, len(train))
    t0 = time.perf_counter()
    bar = tqdm(range(cfg.photo_epochs), desc="learning photo similarity", unit="epoch", disable=None if progress else True)
    for epoch in bar:
        order = tr[torch.randperm(len(tr), generator=gen)]
        for i in range(0, len(order), cfg.batch_size):
            b = order[i : i + cfg.batch_size]
            z = torch.nn.functional.normalize(lin(x[b]), dim=1)
            eye = torch.eye(len(b))
            logits = z @ z.T / cfg.photo_temperature - eye * 1e9
            logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
            pos = (y[b][:, None] == y[b][None, :]).float() - eye
            count = pos.sum(dim=1)
            keep = count > 0
            if not bool(keep.any()):
                continue
            loss = -((logp * pos).sum(dim=1)[keep] / count[keep]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            z = torch.nn.functional.normalize(lin(x), dim=1)
            acc = float((y[tr][(z[va] @ z[tr].T).argmax(dim=1)] == y[va]).float().mean())
        bar.set_postfix(acc=f"{acc:.3f}")
        if acc > best[0]:
            best = (acc, epoch, {k: w.detach().clone() for k, w in lin.state_dict().items()})
        elif epoch - best[1] >= patience:
            break
    acc, epoch, state = best
    head = ProjectionHead(state["weight"].numpy().T.copy(), state["bias"].numpy().copy())
    report = {
        "photos": int(len(v)),
        "products": int(len(np.unique(owners))),
        "heldout_photo_to_product_accuracy": round(acc, 4),
        "best_epoch": int(epoch),
        "seconds": round(time.perf_counter() - t0, 1),
        "data_hash": data_hash(v, owners.astype(np.float32)),
    }
    log.info("photo head: held-out photo→product accuracy %.3f (%d photos)", acc, len(v))
    return head, report
