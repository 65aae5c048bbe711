"""A sharded index: one Ray actor per shard, scatter-gather top-k merge behind Engine's read API."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from ..config import Config
from ..engine import Engine
from ..errors import NotFoundError, QueryError
from ..index.state import IndexState
from ..retrieve.filters import facet_counts, parse_filter
from ..retrieve.fusion import reciprocal_rank_fusion
from ..retrieve.hybrid import HybridRetriever
from ..types import Hit, Product, Query, QueryImage, SearchResult
from ._ray import connect
from .shard_actor import Scored, ShardCandidates, ShardServer

log = logging.getLogger(__name__)


def merge_scored(lists: Sequence[Scored], depth: int) -> Scored:
    """Global top-``depth`` of per-shard lists: by score, ties by the products' global order."""
    merged = [item for run in lists for item in run]
    merged.sort(key=lambda x: (-x[1], x[2]))
    return merged[:depth]


def merge_candidates(
    parts: Sequence[ShardCandidates], depth: int
) -> tuple[dict[str, Scored], float, dict[str, list[tuple[str, str]]]]:
    """Each signal merged across shards, the query's vocabulary coverage over the whole catalogue
    (a word counts when any shard knows it) and every candidate's facet items."""
    names = sorted({name for p in parts for name in p.runs})
    runs = {name: merge_scored([p.runs.get(name, []) for p in parts], depth) for name in names}
    found = [any(flags) for flags in zip(*(p.found_tokens for p in parts), strict=True)] if parts else []
    coverage = sum(found) / len(found) if found else 0.0
    facets: dict[str, list[tuple[str, str]]] = {}
    for p in parts:
        facets.update(p.facets)
    return runs, coverage, facets


class ShardedEngine:
    """Search over N shard folders, each held by a Ray actor; a stand-in for :class:`Engine` when
    reading (``search``, ``similar``, ``get``). Queries are encoded once here, then scattered."""

    def __init__(
        self,
        shards: Sequence[str | Path],
        address: str | None = None,
        config: Config | None = None,
        cpus_per_shard: float = 1.0,
    ) -> None:
        if not shards:
            raise NotFoundError("a sharded engine needs at least one shard folder")
        self.ray = connect(address)
        remote = self.ray.remote(ShardServer)
        self.paths = [str(Path(p).resolve()) for p in shards]
        n = len(self.paths)
        self.actors = [
            remote.options(num_cpus=cpus_per_shard, scheduling_strategy="SPREAD").remote(p, i, n)
            for i, p in enumerate(self.paths)
        ]
        infos = self.ray.get([a.info.remote() for a in self.actors])
        self._n = sum(int(i["products"]) for i in infos)
        self._config = config or Config.from_dict(infos[0]["config"])
        # Only the encoders of this Engine are used (it never opens the folder): a query is encoded
        # once on the coordinator and its vectors are sent to every shard.
        self._encoder = Engine(self.paths[0], self._config)

    @classmethod
    def open(cls, folder: str | Path, address: str | None = None, **kw: Any) -> ShardedEngine:
        """Every ``shard-*`` folder under ``folder`` (as written by ``split_index``)."""
        shards = sorted(p for p in Path(folder).glob("shard-*") if p.is_dir())
        if not shards:
            raise NotFoundError(f"no shard-* folders under {folder}; make them with `python -m shoplens.scale split`")
        return cls(shards, address, **kw)

    @property
    def config(self) -> Config:
        return self._config

    def __len__(self) -> int:
        return self._n

    def __enter__(self) -> ShardedEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the shard actors (the Ray connection stays for the caller to end)."""
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []
        self._encoder.close()

    def reload(self) -> None:
        """Every shard picks up its newest generation."""
        self._n = sum(self.ray.get([a.reload.remote() for a in self.actors]))

    # -- reading -----------------------------------------------------------------------------
    def search(
        self,
        text: str | Query = "",
        image: QueryImage | None = None,
        filters: Sequence[str] = (),
        k: int = 10,
        offset: int = 0,
        history: Sequence[str] = (),
        user: str | None = None,
    ) -> SearchResult:
        """Same arguments and result as :meth:`Engine.search`, over all shards."""
        q = Query.of(text, image, filters, k, offset, history, user)
        cfg = self._config.retrieve
        # validate() reads only the retrieve config, so no index state is needed here.
        q = HybridRetriever(cast(IndexState, None), cfg, self._encoder.encode_query_text, self._encoder.encode_query_image).validate(q)
        for f in q.filters:
            parse_filter(f)  # a malformed filter fails here, with its message, not inside a shard
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        text_vec = self._encoder.encode_query_text(q.text) if q.text else None
        timings["encode_text_ms"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        photo = self._encoder.encode_query_image(q.image) if q.image is not None else None
        timings["encode_image_ms"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        shipped = Query(q.text, None, q.filters, q.history, q.k, q.offset, q.user)
        parts: list[ShardCandidates] = self.ray.get([a.candidates.remote(shipped, text_vec, photo) for a in self.actors])
        timings["scatter_ms"] = (time.perf_counter() - t0) * 1e3
        timings["shard_max_ms"] = max((p.timings_ms.get("shard_ms", 0.0) for p in parts), default=0.0)
        t0 = time.perf_counter()
        runs, coverage, facet_items = merge_candidates(parts, cfg.depth)
        weights = dict(cfg.weights)
        if "bm25" in runs and cfg.adaptive_bm25:
            weights["bm25"] = weights.get("bm25", 1.0) * coverage
        # Fuse over global orders (ints), so RRF breaks ties as the single index does (by row).
        order_of = {pid: o for run in runs.values() for pid, _, o in run}
        id_of = {o: pid for pid, o in order_of.items()}
        fused = reciprocal_rank_fusion({n: [(o, s) for _, s, o in r] for n, r in runs.items()}, weights, cfg.rrf_k)
        timings["fusion_ms"] = (time.perf_counter() - t0) * 1e3
        page = fused[q.offset : q.offset + q.k]
        products = self._fetch([id_of[o] for o, _, _ in page])
        raw = {name: {pid: s for pid, s, _ in run} for name, run in runs.items()}
        hits = []
        for rank, (o, score, ranks) in enumerate(page, start=q.offset + 1):
            pid = id_of[o]
            signals: dict[str, float] = {}
            for name, r in ranks.items():
                signals[name] = round(raw[name][pid], 6)
                signals[f"{name}_rank"] = float(r)
            hits.append(Hit(products[pid], float(score), rank, signals))
        facets = facet_counts((facet_items[id_of[o]] for o, _, _ in fused), cfg.facet_max_values)
        return SearchResult(tuple(hits), len(fused), facets, timings)

    def similar(self, product_id: str, k: int = 10, filters: Sequence[str] = ()) -> SearchResult:
        """"More like this" over all shards: the product's vectors come from its shard."""
        pid = str(product_id)
        if not 1 <= k <= 1000:
            raise QueryError(f"k must be between 1 and 1000, got {k}")
        for f in filters:
            parse_filter(f)
        found = [v for v in self.ray.get([a.vectors_of.remote(pid) for a in self.actors]) if v is not None]
        if not found:
            raise NotFoundError(f"unknown product id {product_id!r}")
        fuse = self._config.fuse
        weights = (fuse.text_weight, fuse.image_weight)
        answers = self.ray.get([a.similar.remote(found[0], pid, k, tuple(filters), weights) for a in self.actors])
        top = merge_scored([run for run, _ in answers], k)
        products = self._fetch([p for p, _, _ in top])
        hits = tuple(Hit(products[p], s, i + 1, {"fused": s}) for i, (p, s, _) in enumerate(top))
        return SearchResult(hits, sum(n for _, n in answers), {}, {})

    def get(self, product_id: str) -> Product:
        got = self._fetch([str(product_id)], missing_ok=True)
        if str(product_id) not in got:
            raise NotFoundError(f"unknown product id {product_id!r}")
        return got[str(product_id)]

    def _fetch(self, ids: list[str], missing_ok: bool = False) -> dict[str, Product]:
        if not ids:
            return {}
        out: dict[str, Product] = {}
        for part in self.ray.get([a.get_many.remote(ids) for a in self.actors]):
            out.update(part)
        if not missing_ok and len(out) < len(set(ids)):
            raise NotFoundError(f"products vanished from the shards during the query: {sorted(set(ids) - set(out))[:5]}")
        return out
