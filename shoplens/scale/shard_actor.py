"""One shard of a sharded index: a normal index folder opened with Engine, answering candidate lists."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import Engine
from ..index.lexical import segment
from ..index.state import IndexState
from ..retrieve.filters import filter_mask, parse_filter
from ..retrieve.hybrid import HybridRetriever
from ..types import Product, Query
from .split import read_ordinals

# Products a shard was not given an order for (added to the shard later) sort after the others.
_UNORDERED = 1 << 40

Scored = list[tuple[str, float, int]]  # (product id, score, global order), best first


@dataclass(frozen=True)
class ShardCandidates:
    """What one shard answers a query with: each signal's candidates and what fusion needs."""

    runs: dict[str, Scored]
    found_tokens: list[bool]  # per query word: does it occur in this shard's name vocabulary
    facets: dict[str, list[tuple[str, str]]]  # candidate id → its facetable (field, value) pairs
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ProductVectors:
    """A product's fused-space parts, for "more like this" across shards."""

    text: np.ndarray
    has_text: bool
    image: np.ndarray
    has_image: bool


def fused_scores(st: IndexState, q: ProductVectors, weights: tuple[float, float]) -> np.ndarray:
    """Cosine of every product of ``st`` with ``q`` in ``[w_t·c; w_i·f]``: the same formula as
    ``retrieve.hybrid.fused_similarity``, with the query given as vectors instead of a row."""
    wt2, wi2 = weights[0] ** 2, weights[1] ** 2
    has_t = st.has_text.astype(np.float32)
    has_i = st.has_image.astype(np.float32)
    text_part = (st.text_vectors @ q.text) * has_t * float(q.has_text)
    pim = st.product_image_vectors
    image_part = (pim @ q.image) if pim.shape[1] and q.image.shape[0] else np.zeros(st.n, np.float32)
    norms = np.sqrt(wt2 * has_t + wi2 * has_i)
    denom = norms * float(np.sqrt(wt2 * q.has_text + wi2 * q.has_image))
    out = np.divide(wt2 * text_part + wi2 * image_part, denom, out=np.zeros(st.n, np.float32), where=denom > 0)
    return out.astype(np.float32)


class ShardServer:
    """Runs inside a Ray actor (``ray.remote(ShardServer)``); plain Python, so it is testable alone."""

    def __init__(self, path: str, shard: int = 0, n_shards: int = 1) -> None:
        self.path = Path(path)
        self.shard, self.n_shards = shard, n_shards
        self.engine = Engine.open(self.path)
        self.ordinals = read_ordinals(self.path)
        self._warm()

    def _warm(self) -> None:
        st = self.engine.state
        _ = st.text_index, st.image_index, st.facet_items, st.id_to_row

    def reload(self) -> int:
        self.engine.reload()
        self.ordinals = read_ordinals(self.path)
        self._warm()
        return len(self.engine)

    def info(self) -> dict[str, Any]:
        st = self.engine.state
        return {"path": str(self.path), "products": st.n, "config": st.config.to_dict()}

    def order(self, pid: str, row: int) -> int:
        got = self.ordinals.get(pid)
        return got if got is not None else _UNORDERED + row * self.n_shards + self.shard

    def candidates(self, q: Query, text_vec: np.ndarray | None, photo: Any) -> ShardCandidates:
        """Each signal's top-``depth`` candidates on this shard (the query already encoded)."""
        st = self.engine.state
        t0 = time.perf_counter()

        def encoded_text(_text: str) -> np.ndarray:
            if text_vec is None:
                raise ValueError("the coordinator sent query text without its vector")
            return text_vec

        retriever = HybridRetriever(st, st.config.retrieve, encoded_text, lambda _i: photo)
        allowed = filter_mask(st.products, [parse_filter(f) for f in q.filters])
        timings: dict[str, float] = {}
        local = Query(q.text, "<encoded>" if photo is not None else None, q.filters, q.history, q.k, q.offset, q.user)
        runs = retriever.candidates(local, allowed, timings)
        found = [st.lexical.vocabulary_probe(t) > 0 for t in segment(q.text)] if q.text else []
        out: dict[str, Scored] = {}
        items = st.facet_items
        facets: dict[str, list[tuple[str, str]]] = {}
        for name, run in runs.items():
            out[name] = []
            for row, score in run:
                pid = st.products[row].id
                out[name].append((pid, float(score), self.order(pid, row)))
                facets[pid] = items[row]
        timings["shard_ms"] = (time.perf_counter() - t0) * 1e3
        return ShardCandidates(out, found, facets, timings)

    def get_many(self, ids: list[str]) -> dict[str, Product]:
        st = self.engine.state
        return {pid: st.products[st.id_to_row[pid]] for pid in ids if pid in st.id_to_row}

    def vectors_of(self, pid: str) -> ProductVectors | None:
        st = self.engine.state
        row = st.id_to_row.get(pid)
        if row is None:
            return None
        return ProductVectors(
            np.array(st.text_vectors[row], np.float32), bool(st.has_text[row]),
            np.array(st.product_image_vectors[row], np.float32), bool(st.has_image[row]),
        )

    def similar(
        self, q: ProductVectors, exclude: str, k: int, filters: tuple[str, ...], weights: tuple[float, float]
    ) -> tuple[Scored, int]:
        """This shard's top-k in the fused space (``exclude`` left out) and how many scored."""
        st = self.engine.state
        scores = fused_scores(st, q, weights)
        row = st.id_to_row.get(exclude)
        if row is not None:
            scores[row] = -np.inf
        allowed = filter_mask(st.products, [parse_filter(f) for f in filters])
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        n = int(np.isfinite(scores).sum())
        order = np.argsort(-scores, kind="stable")[: min(k, n)]
        return [(st.products[int(r)].id, float(scores[r]), self.order(st.products[int(r)].id, int(r))) for r in order], n
