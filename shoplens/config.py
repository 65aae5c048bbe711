"""One typed config object with a section per stage, built at the edge and passed down."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError


def default_cache_dir() -> Path:
    """Where encoders cache embeddings and exported models (``SHOPLENS_CACHE`` overrides)."""
    env = os.environ.get("SHOPLENS_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "shoplens"


def embedding_cache_path(cache_dir: Path) -> Path:
    """The embedding cache's SQLite file: ``SHOPLENS_EMBEDDINGS`` if set, else ``embeddings.sqlite``
    in the cache folder. The int8 text model quantises each batch with one scale, so a cached text
    vector is the one its first batch gave (cosine ≈ 0.9995 to the same text in another batch):
    ``shoplens regress`` points this at its work folder, so that pinned metrics do not depend on
    what the user's cache encoded before."""
    env = os.environ.get("SHOPLENS_EMBEDDINGS")
    return Path(env) if env else cache_dir / "embeddings.sqlite"


@dataclass(frozen=True)
class IngestConfig:
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_image_side: int = 12_000
    allow_urls: bool = True
    url_timeout_s: float = 10.0
    check_images: bool = True


@dataclass(frozen=True)
class EncodeConfig:
    # "use-onnx" (default), "use-numpy", "e5", "st:PATH_OR_NAME", "hf:NAME_OR_PATH", "fake"
    text_encoder: str = "use-onnx"
    # "efficientnet-lite0" (ONNX Runtime), "efficientnet-lite0-torch", "clip:PATH", "fake"
    image_encoder: str = "efficientnet-lite0"
    # 64: ~25% less CPU per title than 256 (smaller activations stay in cache). The int8 text model
    # quantises activations per batch, so the batch size moves vectors slightly (cosine ≈ 0.998);
    # dev nDCG@10 measured equal within 0.001 (benchmarks/RESULTS-encode.md).
    text_batch_size: int = 64
    image_batch_size: int = 32
    # Input sides of the EfficientNet-Lite0 photo encoder: ``image_size`` for the catalogue's photos
    # (it keys the photo cache), ``query_image_size`` for query photos. 224 is the side the network
    # was trained at; the same side on both costs the catalogue 224² pixels per photo. Indexes written
    # before query_image_size existed query at their own image_size.
    image_size: int = 224
    query_image_size: int = 224
    # Catalogue photos of a product on a plain background (a studio shot; encode/efficientnet.py
    # plain_border_share) are encoded at this side instead (0: off), in catalogues where at least
    # plain_min_share of the photos are such shots (index/build.py plain_side_config): ~40% less
    # CPU for those photos; measured on the fashion dev photos, photo-query nDCG@10 0.5759 → 0.5797.
    plain_image_size: int = 176
    plain_min_share: float = 0.8
    threads: int = 0  # 0 = all cores
    cache: bool = True
    cache_dir: str = ""  # "" = default_cache_dir()
    # What the dense text vector of a product is made of: "title", "name" (title + brand +
    # category + short attribute values) or "all" (name + description + reviews, truncated).
    dense_text: str = "name"
    progress: bool = True

    def __post_init__(self) -> None:
        check_image_size(self.image_size)
        check_image_size(self.query_image_size, "encode.query_image_size")
        if self.plain_image_size:
            check_image_size(self.plain_image_size, "encode.plain_image_size")

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()


IMAGE_SIZES = (96, 512)  # the photo input sides encode.image_size accepts, in pixels


def check_image_size(size: int, name: str = "encode.image_size") -> int:
    lo, hi = IMAGE_SIZES
    if not isinstance(size, int) or isinstance(size, bool) or not lo <= size <= hi:
        raise ConfigError(f"{name} must be an integer from {lo} to {hi} pixels, got {size!r}")
    return size


FUSE_MODES = ("concat", "attention")


@dataclass(frozen=True)
class FuseConfig:
    text_weight: float = 1.0
    image_weight: float = 1.0
    # "more like this": "attention" = per-product text/image shares learned from the catalogue's
    # facets (fuse/attention.py, ~1 s at the first use per index generation; measured better on the
    # fashion dev data), falling back to "concat" = cosine in [w_t·c; w_i·f] when it cannot learn.
    mode: str = "attention"

    def __post_init__(self) -> None:
        if self.mode not in FUSE_MODES:
            raise ConfigError(f"fuse.mode must be one of {', '.join(FUSE_MODES)}, got {self.mode!r}")


@dataclass(frozen=True)
class AlignConfig:
    """Learned text–image and photo–photo bridges (see fuse/align.py)."""

    enabled: bool = True
    min_pairs: int = 200  # products with text and a photo needed to train the text–image head
    # At most this many products (a seeded sample) train the heads and bridges: a linear head
    # needs no more, and a 1M catalogue would otherwise hold ~6 GB of inputs per copy and train
    # for hours.
    max_pairs: int = 50_000
    retrain_growth: float = 0.25  # retrain when the catalogue grew by this share since training
    colour_weight: float = 0.5
    epochs: int = 40
    # The InfoNCE head starts from the ridge map of its training split ("ridge": on the dev
    # catalogue its best held-out epoch is 4 instead of 9, at a higher held-out MRR) or at random.
    head_start: str = "ridge"
    patience: int = 6
    # Early-stopping patience counts epochs, capped so a big catalogue waits for about this many
    # training pairs without improvement rather than for ``patience`` whole (long) epochs;
    # catalogues up to ~2,000 pairs keep ``patience`` epochs.
    patience_pairs: int = 12_000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.1
    temperature: float = 0.05
    learn_temperature: bool = True
    holdout: float = 0.1
    seed: int = 0
    photo_min_products: int = 20  # products with ≥ 2 photos needed to train the photo head
    photo_dim: int = 128
    photo_epochs: int = 80
    photo_temperature: float = 0.1
    photo_weight_decay: float = 1e-3
    # Zero-shot ImageNet tags as text for photo-only products: the bridge before any head is
    # trained. With a trained head they are mixed in with this weight (0: measured to hurt).
    tags: bool = True
    tags_weight_with_head: float = 0.0

    def __post_init__(self) -> None:
        if self.head_start not in ("ridge", "random"):
            raise ConfigError(f"align.head_start must be ridge or random, got {self.head_start!r}")


@dataclass(frozen=True)
class IndexConfig:
    ann_threshold: int = 50_000  # exact search below this many vectors, HNSW above
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128
    keep_generations: int = 2
    # Compact vectors (index/quantize.py): "float32" (default), "float16", "int8" or "pq" (pq_m
    # bytes per vector; below ~10k vectors it falls back to int8). Compact scores are re-ranked
    # with the float32 vectors: rerank × k candidates are re-scored.
    vector_dtype: str = "float32"
    rerank: int = 4
    pq_m: int = 64
    ann_kind: str = "hnsw"  # "hnsw" or "ivf" (inverted lists) above ann_threshold
    ivf_nlist: int = 0  # 0 = 4·√N lists
    ivf_nprobe: int = 32
    # From 200,000 vectors (index/vectors.py AUTO_COMPACT_MIN) the float32 + hnsw defaults search
    # int8 IVF + float32 re-ranking: RAM/4, builds in minutes not hours at 1M (RESULTS-large.md); false: HNSW.
    auto_compact: bool = True


@dataclass(frozen=True)
class RetrieveConfig:
    depth: int = 200  # candidates taken from each retriever
    rrf_k: float = 60.0
    adaptive_bm25: bool = True  # scale BM25's weight by the query's vocabulary coverage
    bridge_weight: float = 1.0  # how bridged (missing-modality) products interleave with direct ones
    rerank_depth: int = 100  # fused candidates the learned ranker / personalisation re-orders
    history_weight: float = 1.0  # RRF weight of the shopper-history order against relevance
    weights: dict[str, float] = field(
        default_factory=lambda: {"bm25": 1.0, "text": 0.5, "image": 1.0, "xmodal": 0.5, "photo": 1.0}
    )
    # Cross-lingual query expansion: query words mapped to catalogue words in the embedding space.
    expand_terms: int = 2
    expand_min_sim: float = 0.55
    max_query_chars: int = 1000
    facet_max_values: int = 20


@dataclass(frozen=True)
class Config:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    fuse: FuseConfig = field(default_factory=FuseConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    retrieve: RetrieveConfig = field(default_factory=RetrieveConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        if not isinstance(d, dict):
            raise ConfigError(f"a config must be a mapping of sections, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown config section(s) {sorted(unknown)}; known: {sorted(known)}")
        sections: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = d.get(f.name, {}) or {}
            if not isinstance(raw, dict):
                raise ConfigError(f"config section {f.name!r} must be a mapping, got {type(raw).__name__}")
            section_cls = f.default_factory
            sections[f.name] = _build(section_cls, raw, f.name)
        return cls(**sections)

    def replace(self, **sections: Any) -> Config:
        """A copy with some fields of some sections changed: ``cfg.replace(encode={"text_encoder": "fake"})``."""
        d = self.to_dict()
        for name, changes in sections.items():
            if name not in d:
                raise ConfigError(f"unknown config section {name!r}")
            if not isinstance(changes, dict):
                raise ConfigError(f"changes to config section {name!r} must be a mapping")
            d[name].update(changes)
        return Config.from_dict(d)


def _build(section_cls: Any, raw: dict[str, Any], name: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(section_cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"unknown key(s) in config section {name!r}: {sorted(unknown)}")
    kwargs = {}
    defaults = section_cls()
    for key, value in raw.items():
        expected = type(getattr(defaults, key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(
                f"config {name}.{key} must be {expected.__name__}, got {type(value).__name__} ({value!r})"
            )
        if isinstance(value, dict):
            bad = {k: v for k, v in value.items() if isinstance(v, bool) or not isinstance(v, int | float)}
            if bad:
                raise ConfigError(f"config {name}.{key} values must be numbers, got {bad}")
            value = {k: float(v) for k, v in value.items()}
        if isinstance(value, float) and value != value:
            raise ConfigError(f"config {name}.{key} must be a number, got NaN")
        kwargs[key] = value
    return section_cls(**kwargs)
