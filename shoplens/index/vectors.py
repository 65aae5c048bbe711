"""Cosine search over one modality's unit vectors: exact below a size threshold, faiss HNSW above."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..config import IndexConfig

log = logging.getLogger(__name__)

# Compact/IVF indexes filter during the traversal; below this many passing vectors exact search of
# just those is as fast and never misses one (measured: 20k random rows of 1M cost ~15-25 ms).
EXACT_FILTERED_MAX = 5_000


class VectorIndex:
    """Rows are vectors (one per product, or one per photo); ``owners`` maps a row to its product row.

    Search returns product rows with the best score among their vectors (a photo query matches a
    product through any of its photos).
    """

    def __init__(
        self, vectors: np.ndarray, owners: np.ndarray, n_products: int, cfg: IndexConfig, ann: object | None = None
    ) -> None:
        self.vectors = vectors
        self.owners = owners.astype(np.int64, copy=False)
        self.n_products = n_products
        self.cfg = cfg
        self._ann = ann
        self._codes: Any = None  # compact copy for exact-size search (index/quantize.py), built lazily
        # Max over each product's vectors without np.maximum.at (slow): sort rows by owner once,
        # then one reduceat per query. When every product has one vector this is a plain scatter.
        order = np.argsort(self.owners, kind="stable")
        sorted_owners = self.owners[order]
        self._unique = len(sorted_owners) == 0 or bool(np.all(np.diff(sorted_owners) > 0))
        starts = np.flatnonzero(np.r_[True, np.diff(sorted_owners) > 0]) if len(order) else np.zeros(0, np.int64)
        self._order, self._starts = order, starts
        self._group_owner = sorted_owners[starts] if len(order) else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def uses_ann(self) -> bool:
        return len(self) >= self.cfg.ann_threshold

    @property
    def compact(self) -> bool:
        """True when the config asks for quantised vectors or IVF (see index/quantize.py)."""
        return self.cfg.vector_dtype != "float32" or self.cfg.ann_kind != "hnsw"

    def _ann_index(self) -> object:
        if self._ann is None and self.compact:
            from .quantize import CompactSpec, build_index

            self._ann = build_index(self.vectors, CompactSpec.from_config(self.cfg, ann=True))
        if self._ann is None:
            import faiss

            log.info("building HNSW over %d vectors", len(self))
            index = faiss.IndexHNSWFlat(self.vectors.shape[1], self.cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.cfg.hnsw_ef_construction
            index.add(np.ascontiguousarray(self.vectors, dtype=np.float32))
            self._ann = index
        return self._ann

    def save_ann(self, path: Path) -> None:
        """Persist the HNSW graph (only when this index is big enough to use one)."""
        if self.uses_ann:
            import faiss

            faiss.write_index(self._ann_index(), str(path))  # type: ignore[call-overload]

    @staticmethod
    def load_ann(path: Path) -> object | None:
        if not path.is_file():
            return None
        import faiss

        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP)

    def scores(self, q: np.ndarray) -> np.ndarray:
        """Exact cosine of ``q`` with every product (max over its vectors; -inf where it has none)."""
        per_row = self.vectors @ q.astype(np.float32)
        out = np.full(self.n_products, -np.inf, np.float32)
        if len(per_row) == 0:
            return out
        if self._unique:
            out[self.owners] = per_row
        else:
            out[self._group_owner] = np.maximum.reduceat(per_row[self._order], self._starts)
        return out

    def search(self, q: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k ``(product row, cosine)``; ``allowed`` is a boolean mask over products (filters)."""
        if len(self) == 0 or k <= 0:
            return []
        subset = np.flatnonzero(allowed[self.owners]) if allowed is not None and allowed.mean() < 0.25 else None
        if self.uses_ann and (allowed is None or self._filter_in_ann(allowed, subset)):
            return self._search_ann(q, k, allowed)
        if allowed is None and self.cfg.vector_dtype != "float32":
            return self._search_codes(q, k)
        if subset is not None:  # a selective filter reads only the allowed vectors
            return self._search_subset(q, k, subset)
        scores = self.scores(q)
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        k = min(k, int(np.isfinite(scores).sum()))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(r), float(scores[r])) for r in top]

    def _filter_in_ann(self, allowed: np.ndarray, subset: np.ndarray | None) -> bool:
        """Whether a filtered query goes to the ANN index rather than exact search of what passes.

        The float32 HNSW path over-fetches by 1/share, so it goes exact below 5 % of products; the
        compact and IVF paths filter inside the traversal and go exact only for few vectors.
        """
        if not self.compact:
            return bool(allowed.mean() > 0.05)
        return subset is None or len(subset) > EXACT_FILTERED_MAX

    def _search_subset(self, q: np.ndarray, k: int, rows: np.ndarray) -> list[tuple[int, float]]:
        """Exact top-k over vector ``rows`` only (best vector per product), O(len(rows))."""
        sims = np.asarray(self.vectors[rows] @ q.astype(np.float32), np.float32)
        owners = self.owners[rows]
        if not self._unique and len(rows):
            order = np.lexsort((-sims, owners))  # by product, its best vector first
            first = order[np.r_[True, owners[order][1:] != owners[order][:-1]]]
            sims, owners = sims[first], owners[first]
        k = min(k, len(sims))
        if k == 0:
            return []
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(int(owners[i]), float(sims[i])) for i in top]

    def _search_ann(self, q: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        import faiss

        index = self._ann_index()
        fetch = base = min(k * max(2, len(self) // max(self.n_products, 1) + 1), len(self))
        if allowed is not None:
            fetch = int(fetch / max(float(allowed.mean()), 0.05))
        fetch = min(fetch, len(self))
        if self.compact:  # filtered inside the traversal, quantised scores re-ranked in float32
            from .quantize import search as compact_search

            mask = None if allowed is None else allowed[self.owners]
            found_rows, found_sims = compact_search(index, self.vectors, q, base, self.cfg, mask)
            sims, rows = found_sims[None, :], found_rows[None, :]
        else:
            ef = max(self.cfg.hnsw_ef_search, fetch)
            params = faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]
            sims, rows = index.search(q.reshape(1, -1).astype(np.float32), fetch, params=params)  # type: ignore[attr-defined]
        best: dict[int, float] = {}
        for s, r in zip(sims[0], rows[0], strict=True):
            if r < 0:
                continue
            owner = int(self.owners[r])
            if allowed is not None and not allowed[owner]:
                continue
            if owner not in best or s > best[owner]:
                best[owner] = float(s)
        return sorted(best.items(), key=lambda x: -x[1])[:k]

    def _search_codes(self, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Exact-size search over compact codes (a scan), the top candidates re-ranked in float32."""
        if self._codes is None:
            from .quantize import CompactVectors

            self._codes = CompactVectors.build(self.vectors, self.cfg)
        fetch = min(k * max(2, len(self) // max(self.n_products, 1) + 1), len(self))
        rows, sims = self._codes.search(q, fetch)
        best: dict[int, float] = {}
        for s, r in zip(sims, rows, strict=True):
            owner = int(self.owners[r])
            if owner not in best or s > best[owner]:
                best[owner] = float(s)
        return sorted(best.items(), key=lambda x: -x[1])[:k]
