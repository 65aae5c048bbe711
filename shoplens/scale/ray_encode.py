"""Distributed batch encoding with Ray Data: workers encode, the local embedding cache is filled."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..config import Config, embedding_cache_path
from ..encode.batch import encode_images, encode_texts
from ..encode.cache import EmbeddingCache
from ..encode.registry import build_image_encoder, build_text_encoder
from ..errors import ConfigError
from ..index.build import plain_side_config
from ..ingest.catalog import load_catalog
from ._ray import connect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RayEncodeReport:
    """What the cluster encoded: unique texts and photos sent, cache entries written back, time."""

    texts: int
    photos: int
    entries: int
    seconds: float


class _Recorder:
    """Stands in for the embedding cache on a worker: nothing is cached there, everything that the
    engine's own batch encoders would cache (vectors and side outputs) is recorded and sent back."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, bytes]] = []

    def get_many(self, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        return {}

    def put_many(self, model: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        self.items.extend((model, k, np.asarray(v, np.float32).tobytes()) for k, v in items)


class EncodeBatch:
    """A Ray Data callable class: one copy of the models per worker actor, reused for every batch."""

    # Each actor reserves one CPU (``num_cpus=1``): its encoders get one thread and one batch at
    # a time, so N actors on an N-core node do not run N × N threads.
    CPUS = 1

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = Config.from_dict(config).replace(encode={"threads": self.CPUS})
        self._text: Any = None
        self._image: Any = None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        enc, rec = self.config.encode, _Recorder()
        cache = cast(EmbeddingCache, rec)
        kinds, items = batch["kind"].tolist(), batch["item"].tolist()
        texts = [str(x) for k, x in zip(kinds, items, strict=True) if k == "text"]
        refs = [str(x) for k, x in zip(kinds, items, strict=True) if k == "image"]
        if texts:
            self._text = self._text or build_text_encoder(enc)
            encode_texts(self._text, texts, cache, enc.text_batch_size, False, workers=self.CPUS)
        if refs:
            self._image = self._image or build_image_encoder(enc)
            res = encode_images(
                self._image, refs, cache, enc.image_batch_size, self.config.ingest, False, workers=self.CPUS
            )
            for i, why in res.failed.items():  # the local build reports these rows; log here too
                log.warning("photo %s not encoded on the cluster: %s", refs[i], why)
        return {
            "model": np.array([m for m, _, _ in rec.items], dtype=object),
            "key": np.array([k for _, k, _ in rec.items], dtype=object),
            "vec": np.array([v for _, _, v in rec.items], dtype=object),
        }


def catalog_work(catalog: str | Path, mapping: Mapping[str, str] | None, config: Config) -> tuple[list[str], list[str]]:
    """The unique dense texts and photo references of a catalogue, as the index build sees them."""
    from ..engine import dense_text

    pairs, _skipped, _rows = load_catalog(catalog, mapping)
    texts = {t for _, p in pairs if (t := dense_text(p, config.encode.dense_text))}
    refs = {ref for _, p in pairs for ref in p.images}
    return sorted(texts), sorted(refs)


def encode_catalog(
    catalog: str | Path,
    config: Config,
    address: str | None = None,
    mapping: Mapping[str, str] | None = None,
    workers: int | None = None,
) -> RayEncodeReport:
    """Encode a catalogue's texts and photos on a Ray cluster and store every vector in this
    machine's embedding cache (``encode.cache_dir``); then ``Engine.add_catalog`` finds them all.

    Texts not yet cached are sent; photos are sent by reference (path or URL), so every worker
    must be able to read them (a shared filesystem, object storage mounted alike, or URLs).
    """
    if not config.encode.cache:
        raise ConfigError("encode.cache must be on for --ray: the cluster's vectors reach the index through it")
    t0 = time.perf_counter()
    texts, refs = catalog_work(catalog, mapping, config)
    # The side(s) photos are encoded at, as a first build of this catalogue will decide them (an
    # existing index that decided otherwise encodes the photos again at its own sides).
    config = plain_side_config(config, None, refs)
    cache = EmbeddingCache(embedding_cache_path(config.encode.resolved_cache_dir()))
    try:
        text_name = build_text_encoder(config.encode).name if texts else ""
        if texts:
            from ..encode.cache import content_key

            known = cache.get_many(text_name, [content_key(t) for t in texts])
            texts = [t for t in texts if content_key(t) not in known]
        ray = connect(address)
        rows = [{"kind": "text", "item": t} for t in texts] + [{"kind": "image", "item": r} for r in refs]
        entries = 0
        if rows:
            n_workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            blocks = min(len(rows), max(n_workers, min(len(rows) // 64, n_workers * 4)))
            ds = ray.data.from_items(rows, override_num_blocks=blocks)
            out = ds.map_batches(
                EncodeBatch,
                fn_constructor_args=(config.to_dict(),),
                batch_size=max(config.encode.image_batch_size, 64),
                batch_format="numpy",
                concurrency=n_workers,
                num_cpus=EncodeBatch.CPUS,
            )
            for batch in out.iter_batches(batch_format="numpy", batch_size=4096):
                entries += _store(cache, batch)
        report = RayEncodeReport(len(texts), len(refs), entries, time.perf_counter() - t0)
        log.info("ray encoding: %s", report)
        return report
    finally:
        cache.close()


def _store(cache: EmbeddingCache, batch: Mapping[str, np.ndarray]) -> int:
    grouped: dict[str, list[tuple[str, np.ndarray]]] = {}
    for model, key, blob in zip(batch["model"], batch["key"], batch["vec"], strict=True):
        grouped.setdefault(str(model), []).append((str(key), np.frombuffer(blob, dtype=np.float32)))
    for model, items in grouped.items():
        cache.put_many(model, items)
    return sum(len(v) for v in grouped.values())
