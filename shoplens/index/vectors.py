"""Cosine search over one modality's unit vectors: exact below a size threshold, faiss HNSW above."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..config import IndexConfig

log = logging.getLogger(__name__)

# Compact/IVF indexes filter during the traversal; below this many passing vectors exact search of
# just those is as fast and never misses one (measured: 20k random rows of 1M cost ~15-25 ms).
EXACT_FILTERED_MAX = 5_000


# From this many vectors ``index.auto_compact`` replaces float32 HNSW by int8 IVF + re-ranking.
# Measured end to end (benchmarks/RESULTS-large.md): at 100k HNSW answers photo queries faster
# (1280-d) and builds in ~1 min, so it stays; at 1M a float32 HNSW graph takes ~10 min per 512-d
# modality to build on 2 cores and ~7.5 KB of RAM per product, IVF int8 ~2 KB and minutes.
AUTO_COMPACT_MIN = 200_000


def effective_config(cfg: IndexConfig, n_vectors: int) -> IndexConfig:
    """The config ``n_vectors`` vectors are searched with: with ``index.auto_compact``, a set of at
    least ``AUTO_COMPACT_MIN`` vectors under the float32 + HNSW defaults uses int8 IVF + float32
    re-ranking (recall@10 >= HNSW's at 100k-1M: RESULTS-scale.md)."""
    big = n_vectors >= max(cfg.ann_threshold, AUTO_COMPACT_MIN)
    if cfg.auto_compact and big and (cfg.vector_dtype, cfg.ann_kind) == ("float32", "hnsw"):
        return dataclasses.replace(cfg, vector_dtype="int8", ann_kind="ivf")
    return cfg


@contextmanager
def one_thread() -> Iterator[None]:
    """Run faiss on this thread only for one query (restored afterwards).

    One query is too little work to share: faiss's OpenMP teams (e.g. a scalar-quantizer scan)
    cost more than they save, and several concurrent queries each spawning a team oversubscribe
    the cores. OpenMP's thread count is a per-thread setting, so builds running on other threads
    (or on this one later) keep every core.
    """
    import faiss

    before = faiss.omp_get_max_threads()
    if before == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


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
        self.cfg = effective_config(cfg, int(vectors.shape[0]))
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
        # One vector per product, in product order: a product mask is already a row mask.
        self._identity = self._unique and len(self.owners) == n_products and bool(
            np.array_equal(self.owners, np.arange(n_products))
        )
        self._masks: dict[int, _RowMask] = {}
        self._exact: bool | None = None  # whether the ANN index holds float32 vectors (no re-ranking)

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
        rm = self._row_mask(allowed) if allowed is not None else None
        subset = rm.subset if rm is not None else None
        if self.uses_ann and (rm is None or self._filter_in_ann(rm.share, subset)):
            return self._search_ann(q, k, allowed, rm)
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

    def _row_mask(self, allowed: np.ndarray) -> _RowMask:
        """What a product mask means for this index's rows, derived once per mask object.

        The engine caches a mask per distinct filter, so a repeated filter costs no O(N) passes
        (share, row gather, bitmap packing: ~5 ms at 1M) after its first query."""
        got = self._masks.get(id(allowed))
        if got is not None and got.allowed is allowed:
            return got
        share = float(allowed.mean()) if len(allowed) else 0.0
        rows = allowed if self._identity else allowed[self.owners]
        subset = np.flatnonzero(rows) if share < 0.25 else None
        got = _RowMask(allowed, share, rows, subset)
        if len(self._masks) >= 64:
            self._masks.pop(next(iter(self._masks)), None)
        self._masks[id(allowed)] = got
        return got

    def _filter_in_ann(self, share: float, subset: np.ndarray | None) -> bool:
        """Whether a filtered query goes to the ANN index rather than exact search of what passes.

        The float32 HNSW path over-fetches by 1/share, so it goes exact below 5 % of products; the
        compact and IVF paths filter inside the traversal and go exact only for few vectors.
        """
        if not self.compact:
            return share > 0.05
        return subset is None or len(subset) > EXACT_FILTERED_MAX

    def _search_subset(self, q: np.ndarray, k: int, rows: np.ndarray) -> list[tuple[int, float]]:
        """Exact top-k over vector ``rows`` only (best vector per product), O(len(rows))."""
        sims = np.asarray(np.asarray(self.vectors)[rows] @ q.astype(np.float32), np.float32)
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

    def _search_ann(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None, rm: _RowMask | None = None
    ) -> list[tuple[int, float]]:
        index = self._ann_index()
        if allowed is not None and rm is None:
            rm = self._row_mask(allowed)
        with one_thread():
            return self._search_ann_1t(index, q, k, allowed, rm)

    def _search_ann_1t(
        self, index: Any, q: np.ndarray, k: int, allowed: np.ndarray | None, rm: _RowMask | None
    ) -> list[tuple[int, float]]:
        import faiss

        fetch = base = min(k * max(2, len(self) // max(self.n_products, 1) + 1), len(self))
        if rm is not None:
            fetch = int(fetch / max(rm.share, 0.05))
        fetch = min(fetch, len(self))
        if self.compact:  # filtered inside the traversal, quantised scores re-ranked in float32
            from .quantize import search as compact_search

            mask = None if rm is None else rm.rows
            # One vector per product: k rows are k products, and the compact search already takes
            # rerank × k candidates (over-fetching twice re-ranked 8k rows: 1,600 × 1280-d photos).
            want = k if self._unique else base
            if self._exact is None:
                from .quantize import is_exact

                self._exact = is_exact(index)
            found_rows, found_sims = compact_search(
                index, self.vectors, q, want, self.cfg, mask, rm.packed() if rm is not None else None, self._exact
            )
            sims, rows = found_sims[None, :], found_rows[None, :]
        else:
            ef = max(self.cfg.hnsw_ef_search, fetch)
            params = faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]
            sims, rows = index.search(q.reshape(1, -1).astype(np.float32), fetch, params=params)
        return self._best_per_owner(rows[0], sims[0], k, allowed)

    def _best_per_owner(
        self, rows: np.ndarray, sims: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Candidate vector rows → top-k ``(product row, best cosine)``, allowed products only."""
        rows = np.asarray(rows, np.int64)
        sims = np.asarray(sims, np.float32)
        keep = rows >= 0
        rows, sims = rows[keep], sims[keep]
        owners = self.owners[rows]
        if allowed is not None:
            ok = allowed[owners]
            owners, sims = owners[ok], sims[ok]
        order = np.argsort(-sims, kind="stable")  # ties keep the index's order
        owners, sims = owners[order], sims[order]
        if not self._unique and len(owners):  # a product's first (best) vector stands for it
            first = np.sort(np.unique(owners, return_index=True)[1])
            owners, sims = owners[first], sims[first]
        return [(int(owners[i]), float(sims[i])) for i in range(min(k, len(owners)))]

    def _search_codes(self, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Exact-size search over compact codes (a scan), the top candidates re-ranked in float32."""
        if self._codes is None:
            from .quantize import CompactVectors

            self._codes = CompactVectors.build(self.vectors, self.cfg)
        fetch = k if self._unique else k * max(2, len(self) // max(self.n_products, 1) + 1)
        with one_thread():
            rows, sims = self._codes.search(q, min(fetch, len(self)))
        return self._best_per_owner(rows, sims, k)


class _RowMask:
    """A product mask (``allowed``) as seen by one index: share passing, row mask, selective subset,
    and the packed bitmap faiss filters with (packed on first use)."""

    __slots__ = ("allowed", "share", "rows", "subset", "_bits")

    def __init__(self, allowed: np.ndarray, share: float, rows: np.ndarray, subset: np.ndarray | None) -> None:
        self.allowed, self.share, self.rows, self.subset = allowed, share, rows, subset
        self._bits: np.ndarray | None = None

    def packed(self) -> np.ndarray:
        if self._bits is None:
            self._bits = np.packbits(np.asarray(self.rows, bool), bitorder="little")
        return self._bits
