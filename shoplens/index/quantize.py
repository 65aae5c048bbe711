"""Compact vectors: float16 / int8 scalar quantisation and product quantisation, re-ranked in float32."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import IndexConfig
from ..errors import ConfigError

log = logging.getLogger(__name__)

DTYPES = ("float32", "float16", "int8", "pq")
ANN_KINDS = ("flat", "hnsw", "ivf")
_SQ = {"float16": "SQfp16", "int8": "SQ8"}
# k-means wants ~39 training points per centroid (faiss warns below that); PQ has 256 per sub-space.
_POINTS_PER_CENTROID = 39
PQ_MIN_VECTORS = 256 * _POINTS_PER_CENTROID
_ADD_CHUNK = 65_536  # rows copied to float32 at a time when adding (the source may be a memory map)


@dataclass(frozen=True)
class CompactSpec:
    """How a set of unit vectors is stored and searched (built from :class:`IndexConfig`)."""

    dtype: str = "float32"  # float32 | float16 | int8 | pq
    ann: str = "flat"  # flat (scan every code) | hnsw (graph) | ivf (inverted lists)
    hnsw_m: int = 32
    ef_construction: int = 80
    pq_m: int = 64  # bytes per vector for PQ (sub-quantisers of 8 bits each)
    ivf_nlist: int = 0  # 0: 4·√N lists

    @classmethod
    def from_config(cls, cfg: IndexConfig, ann: bool) -> CompactSpec:
        spec = cls(
            dtype=cfg.vector_dtype,
            ann=cfg.ann_kind if ann else "flat",
            hnsw_m=cfg.hnsw_m,
            ef_construction=cfg.hnsw_ef_construction,
            pq_m=cfg.pq_m,
            ivf_nlist=cfg.ivf_nlist,
        )
        spec.validate()
        return spec

    def validate(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(f"config index.vector_dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.ann not in ANN_KINDS:
            raise ConfigError(f"config index.ann_kind must be hnsw or ivf, got {self.ann!r}")
        if self.pq_m <= 0 or self.hnsw_m <= 1:
            raise ConfigError("config index.pq_m must be > 0 and index.hnsw_m > 1")


def effective_dtype(spec: CompactSpec, n: int, dim: int) -> str:
    """PQ needs enough vectors to train its codebooks and a dimension divisible by ``pq_m``;
    below that it falls back to int8 (which needs no training to speak of)."""
    if spec.dtype == "pq" and (n < PQ_MIN_VECTORS or dim % spec.pq_m):
        log.info("PQ needs >= %d vectors and dim %% pq_m == 0 (n=%d, dim=%d): using int8", PQ_MIN_VECTORS, n, dim)
        return "int8"
    return spec.dtype


def ivf_lists(n: int, requested: int = 0) -> int:
    """Number of inverted lists: ``requested`` or 4·√N, capped so each centroid trains on >= 39 points."""
    nlist = requested or int(4 * math.sqrt(max(n, 1)))
    return max(1, min(nlist, n // _POINTS_PER_CENTROID or 1))


def factory_string(spec: CompactSpec, n: int, dim: int) -> str:
    """The faiss ``index_factory`` description of ``spec`` for ``n`` vectors of ``dim``."""
    dtype = effective_dtype(spec, n, dim)
    codes = {"float32": "Flat", "pq": f"PQ{spec.pq_m}"}.get(dtype) or _SQ[dtype]
    if spec.ann == "hnsw":
        return f"HNSW{spec.hnsw_m}_PQ{spec.pq_m}" if dtype == "pq" else f"HNSW{spec.hnsw_m},{codes}"
    if spec.ann == "ivf":
        return f"IVF{ivf_lists(n, spec.ivf_nlist)},{codes}"
    return "Flat" if dtype == "float32" else codes


def build_index(vectors: np.ndarray, spec: CompactSpec, seed: int = 0) -> Any:
    """Train (on a sample) and fill a faiss index holding ``vectors`` in ``spec``'s compact form."""
    import faiss

    n, dim = vectors.shape
    desc = factory_string(spec, n, dim)
    index = faiss.index_factory(dim, desc, faiss.METRIC_INNER_PRODUCT)
    hnsw = getattr(index, "hnsw", None)
    if hnsw is not None:
        hnsw.efConstruction = spec.ef_construction
    pq = getattr(index, "pq", None)
    if pq is not None:
        pq.cp.niter = 10  # codebooks barely improve after 10 k-means rounds; training time is linear in it
    if hasattr(index, "do_polysemous_training"):
        index.do_polysemous_training = False  # Hamming pre-filtering is unused; its training is slow
    if not index.is_trained:
        # PQ codebooks train at ~1 GFLOP/s (8-d sub-spaces): the minimum sample keeps that to seconds.
        coarse = ivf_lists(n, spec.ivf_nlist) * _POINTS_PER_CENTROID if spec.ann == "ivf" else 0
        size = min(n, max(PQ_MIN_VECTORS, coarse))
        sample = np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
        index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
    for start in range(0, n, _ADD_CHUNK):
        index.add(np.ascontiguousarray(vectors[start : start + _ADD_CHUNK], dtype=np.float32))
    log.info("built %s over %d vectors (%.0f bytes each)", desc, n, index_bytes(index) / max(n, 1))
    return index


def is_exact(index: Any) -> bool:
    """True when the index stores full float32 vectors (its similarities need no re-ranking)."""
    import faiss

    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexHNSW):
        inner = faiss.downcast_index(inner.storage)
    return isinstance(inner, faiss.IndexFlat | faiss.IndexIVFFlat)


def index_bytes(index: Any) -> int:
    """Serialised size of a faiss index: codes, graph or lists, and trained tables (≈ its RAM)."""
    import faiss

    return int(faiss.serialize_index(index).nbytes)


def search_params(
    index: Any, ef: int, nprobe: int, allowed_rows: np.ndarray | None = None, packed: np.ndarray | None = None
) -> Any:
    """Per-query search parameters (HNSW ``efSearch``, IVF ``nprobe``), filtered during the
    traversal to ``allowed_rows`` (a boolean mask over the index's rows) when given; ``packed`` is
    that mask already packed (``np.packbits(allowed_rows, bitorder="little")``), to reuse it."""
    import faiss

    kw: dict[str, Any] = {}
    keep: tuple[Any, ...] = ()
    if allowed_rows is not None:
        bits = packed if packed is not None else np.packbits(np.asarray(allowed_rows, bool), bitorder="little")
        sel = faiss.IDSelectorBitmap(len(allowed_rows), faiss.swig_ptr(bits))
        kw["sel"], keep = sel, (bits, sel)
    if hasattr(index, "hnsw"):
        params = faiss.SearchParametersHNSW(efSearch=ef, **kw)  # type: ignore[attr-defined]
    elif hasattr(index, "nprobe"):
        params = faiss.SearchParametersIVF(nprobe=nprobe, **kw)  # type: ignore[call-arg]
    elif kw:
        params = faiss.SearchParameters(**kw)
    else:
        return None
    params.keep_alive = keep  # faiss holds raw pointers to the bitmap and the selector
    return params


def rerank(full: np.ndarray, q: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Re-score candidate ``rows`` with the full-precision vectors: ``(rows, cosines)``, best first.

    Ties keep the candidates' order (stable sort), so a re-ranked list is deterministic.
    """
    rows = np.asarray(rows, np.int64)
    rows = rows[rows >= 0]
    if len(rows) == 0:
        return rows, np.zeros(0, np.float32)
    # Reading the candidates in row order touches each page of a memory-mapped matrix once.
    order = np.argsort(rows, kind="stable")
    sims = np.empty(len(rows), np.float32)
    # einsum, not BLAS: a few hundred rows are too little work for BLAS threads, whose hand-offs
    # dominate (and stall under load) when queries run concurrently.
    # np.asarray first: fancy indexing a np.memmap goes through its Python __getitem__ (3x slower).
    cand = np.asarray(np.asarray(full)[rows[order]], np.float32)
    sims[order] = np.einsum("ij,j->i", cand, np.asarray(q, np.float32))
    best = np.argsort(-sims, kind="stable")
    return rows[best], sims[best]


def search(
    index: Any,
    full: np.ndarray | None,
    q: np.ndarray,
    k: int,
    cfg: IndexConfig,
    allowed_rows: np.ndarray | None = None,
    packed: np.ndarray | None = None,
    exact: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k ``(rows, cosines)`` from a compact index; quantised scores are re-ranked with ``full``.

    ``rerank × k`` candidates are taken from the codes and re-scored exactly, which restores the
    exact order of the top-k whenever the true top-k are among the candidates.
    """
    if exact is None:  # callers searching one index many times pass it (downcasting costs ~1 ms)
        exact = is_exact(index)
    fetch = k if exact or full is None else k * max(cfg.rerank, 1)
    fetch = min(fetch, int(index.ntotal))
    if fetch <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    params = search_params(index, max(cfg.hnsw_ef_search, fetch), cfg.ivf_nprobe, allowed_rows, packed)
    sims, rows = index.search(np.asarray(q, np.float32).reshape(1, -1), fetch, params=params)
    rows, sims = rows[0], sims[0]
    if exact or full is None:
        keep = rows >= 0
        if index.metric_type != 1:  # METRIC_L2 (HNSW-PQ): unit vectors, so cosine = 1 - d²/2
            return rows[keep], sims[keep]
        return rows[keep], (1.0 - sims[keep] / 2.0).astype(np.float32)
    rows, sims = rerank(full, q, rows)
    return rows[:k], sims[:k]


def save_index(index: Any, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def load_index(path: Path, mmap: bool = True) -> Any:
    """Read a saved index; graph and flat codes are memory-mapped where faiss supports it."""
    import faiss

    try:
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mmap else 0)
    except RuntimeError:  # not every index type can be memory-mapped
        return faiss.read_index(str(path))


# An IVF index is updated in place of a rebuild while its number of lists stays within this factor
# of what the current size would get (4·√N: the catalogue grew or shrank about 2.25×).
IVF_REUSE_FACTOR = 1.5


def update_ivf(path: Path, keep: np.ndarray, new: np.ndarray, n_old: int, spec: CompactSpec) -> Any | None:
    """The saved IVF index at ``path`` brought up to date instead of rebuilt: its rows outside
    ``keep`` (old row numbers, ascending) removed, the kept rows renumbered to their positions in
    ``keep``, and ``new`` appended after them. Training (coarse centroids, int8 ranges) is reused.

    None when it cannot serve: not an IVF index, not the ``n_old`` rows expected, or a list count
    (4·√N) off by more than ``IVF_REUSE_FACTOR`` from what the new size would be trained with.
    At 1M products this turns a write's ~10 minutes of IVF training and adding per modality into
    seconds (the codes of kept rows are moved, not recomputed)."""
    import faiss

    if not path.is_file():
        return None
    index = faiss.read_index(str(path))  # into RAM: it is modified
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return None
    n_new = len(keep) + len(new)
    want = ivf_lists(n_new, spec.ivf_nlist)
    if index.ntotal != n_old or not (ivf.nlist / IVF_REUSE_FACTOR <= want <= ivf.nlist * IVF_REUSE_FACTOR):
        return None
    keep = np.asarray(keep, np.int64)
    if len(keep) < n_old:
        dropped = np.setdiff1d(np.arange(n_old, dtype=np.int64), keep, assume_unique=True)
        ivf.remove_ids(faiss.IDSelectorBatch(len(dropped), faiss.swig_ptr(dropped)))
        # Renumber what is left (row r → its position in ``keep``), list by list.
        position = np.full(n_old, -1, np.int64)
        position[keep] = np.arange(len(keep), dtype=np.int64)
        lists: Any = ivf.invlists
        for no in range(ivf.nlist):
            size = lists.list_size(no)
            if not size:
                continue
            ids = faiss.rev_swig_ptr(lists.get_ids(no), size).copy()
            codes = faiss.rev_swig_ptr(lists.get_codes(no), size * lists.code_size).copy()
            renumbered = np.ascontiguousarray(position[ids])
            lists.update_entries(no, 0, size, faiss.swig_ptr(renumbered), faiss.swig_ptr(codes))
    for start in range(0, len(new), _ADD_CHUNK):
        chunk = np.ascontiguousarray(new[start : start + _ADD_CHUNK], dtype=np.float32)
        ids = np.arange(len(keep) + start, len(keep) + start + len(chunk), dtype=np.int64)
        index.add_with_ids(chunk, ids)
    log.info("updated %s: %d rows kept, %d removed, %d added", path.name, len(keep), n_old - len(keep), len(new))
    return index


def extend_hnsw(path: Path, n_old: int, new: np.ndarray, ef_construction: int) -> Any | None:
    """The saved float32 HNSW graph at ``path`` with ``new`` vectors inserted after its ``n_old``
    rows, for a write that kept every old row in order (an append): inserting costs what building
    costs per vector, so an append of k vectors to a 100k graph takes seconds instead of the minute
    or more a rebuild takes. None where it cannot serve (another index type, other row count);
    a write that drops rows rebuilds, because an HNSW graph cannot remove nodes."""
    import faiss

    if not path.is_file():
        return None
    index = faiss.read_index(str(path))  # into RAM: it is modified
    if not isinstance(index, faiss.IndexHNSWFlat) or index.ntotal != n_old:
        return None
    index.hnsw.efConstruction = ef_construction
    for start in range(0, len(new), _ADD_CHUNK):
        index.add(np.ascontiguousarray(new[start : start + _ADD_CHUNK], dtype=np.float32))
    log.info("extended %s: %d rows kept, %d added", path.name, n_old, len(new))
    return index


def recall_at_k(found: Sequence[Sequence[int]], truth: Sequence[Sequence[int]], k: int = 10) -> float:
    """Mean share of the true top-k found in the returned top-k (0 for no queries)."""
    if not truth:
        return 0.0
    hits = [len(set(list(f)[:k]) & set(list(t)[:k])) / max(min(k, len(t)), 1) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits))


class CompactVectors:
    """A compact copy of unit vectors for search, with the float32 originals (often a memory map,
    so they stay on disk) used only to re-rank the candidates."""

    def __init__(self, index: Any, full: np.ndarray | None, cfg: IndexConfig | None = None) -> None:
        self.index = index
        self.full = full
        self.cfg = cfg or IndexConfig()

    @classmethod
    def build(cls, vectors: np.ndarray, cfg: IndexConfig, ann: bool = False) -> CompactVectors:
        return cls(build_index(vectors, CompactSpec.from_config(cfg, ann)), vectors, cfg)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def bytes_per_vector(self) -> float:
        """RAM of the compact index per vector (codes + graph/lists + tables); the originals stay on disk."""
        return index_bytes(self.index) / max(len(self), 1)

    def search(self, q: np.ndarray, k: int, allowed_rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        return search(self.index, self.full, q, k, self.cfg, allowed_rows)

    def save(self, path: Path) -> None:
        save_index(self.index, path)

    @classmethod
    def load(cls, path: Path, full: np.ndarray | None, cfg: IndexConfig | None = None) -> CompactVectors:
        return cls(load_index(path), full, cfg)
