"""The facade users hold: build/add/delete, search, similar, save/load. CLI and API sit on top."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from .config import Config, embedding_cache_path
from .encode.base import ImageEncoder, TextEncoder
from .encode.batch import ImageBatchResult, encode_images, encode_texts
from .encode.cache import EmbeddingCache
from .encode.registry import SIZED_IMAGE_ENCODERS, build_image_encoder, build_text_encoder
from .errors import ConfigError, ImageError, NotFoundError, QueryError
from .fuse.colour import colour_histogram
from .index import atomic
from .index.lexical import LexicalIndex, product_body_text, product_name_text
from .index.state import IndexState
from .ingest.catalog import load_catalog
from .ingest.images import decode_image, load_image_bytes, to_rgb
from .rank.ltr import Ranker
from .rank.rerank import Reranker
from .retrieve.hybrid import HybridRetriever, QueryPhoto
from .threads import query_threads
from .types import Hit, IngestReport, Product, Query, QueryImage, SearchResult, SkippedRow

log = logging.getLogger(__name__)

MAX_DENSE_CHARS = 2000


def dense_text(p: Product, mode: str) -> str:
    """The text whose embedding represents a product (see ``EncodeConfig.dense_text``)."""
    if mode == "title":
        text = p.title or p.description
    elif mode == "name":
        text = product_name_text(p) or p.description
    elif mode == "all":
        text = f"{product_name_text(p)}. {product_body_text(p)}"
    else:
        raise ConfigError(f"encode.dense_text must be title, name or all, got {mode!r}")
    return text.strip()[:MAX_DENSE_CHARS]


class Engine:
    """A product index in a folder. Every write makes a new generation atomically; reads never block."""

    def __init__(self, path: str | Path, config: Config | None = None) -> None:
        self.path = Path(path)
        self._config = config or Config()
        self._state: IndexState | None = None
        self._text_encoder: TextEncoder | None = None
        self._image_encoder: ImageEncoder | None = None
        self._query_image_encoder: ImageEncoder | None = None
        self._cache: EmbeddingCache | None = None
        self._write_lock = threading.Lock()
        # A trained alignment model to import at the next write (``shoplens index --align DIR``).
        self.align_source: Path | None = None
        self._reranker: Reranker | None = None
        self._encoder_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, config: Config | None = None) -> Engine:
        """Open an existing index; its recorded config is used unless ``config`` overrides it."""
        engine = cls(path, config)
        engine.reload()
        if config is None and engine._state is not None:
            engine._config = engine._state.config
        return engine

    def reload(self) -> None:
        """Pick up the newest generation (another process may have written one)."""
        self._state = IndexState.load(atomic.current_generation(self.path))

    @property
    def config(self) -> Config:
        return self._config

    def _use_config(self, config: Config) -> None:
        """Switch to ``config`` (a write decided a setting); encoders are rebuilt from it when next used."""
        with self._encoder_lock:
            self._config = config
            self._image_encoder = self._query_image_encoder = None

    @property
    def state(self) -> IndexState:
        if self._state is None:
            raise NotFoundError(f"the index at {self.path} is empty; add a catalogue first")
        return self._state

    def __len__(self) -> int:
        return 0 if self._state is None else self._state.n

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    # -- encoders (lazy: opening an index to read products loads no model) --------------------
    @property
    def text_encoder(self) -> TextEncoder:
        with self._encoder_lock:
            if self._text_encoder is None:
                self._text_encoder = build_text_encoder(self._config.encode)
            return self._text_encoder

    @property
    def image_encoder(self) -> ImageEncoder:
        with self._encoder_lock:
            if self._image_encoder is None:
                self._image_encoder = build_image_encoder(self._config.encode)
            return self._image_encoder

    @property
    def query_image_encoder(self) -> ImageEncoder:
        """The encoder of query photos: the catalogue's network with every photo at
        ``encode.query_image_size`` (the catalogue's own encoder when that is what it does)."""
        enc = self._config.encode
        same = enc.query_image_size == enc.image_size and enc.plain_image_size in (0, enc.image_size)
        if same or enc.image_encoder.partition(":")[0] not in SIZED_IMAGE_ENCODERS:
            return self.image_encoder
        with self._encoder_lock:
            if self._query_image_encoder is None:
                self._query_image_encoder = build_image_encoder(enc, query=True)
            return self._query_image_encoder

    @property
    def cache(self) -> EmbeddingCache | None:
        if not self._config.encode.cache:
            return None
        if self._cache is None:
            self._cache = EmbeddingCache(embedding_cache_path(self._config.encode.resolved_cache_dir()))
        return self._cache

    def encode_query_text(self, text: str) -> np.ndarray:
        return self.text_encoder.encode([text])[0]

    def encode_query_image(self, image: QueryImage) -> QueryPhoto:
        """A query photo (path, URL, bytes or an opened PIL image) → its feature vector and colour histogram."""
        if isinstance(image, Image.Image):
            img = to_rgb(image)
        else:
            data = image if isinstance(image, bytes) else load_image_bytes(os.fspath(image), self._config.ingest)
            img = decode_image(data, self._config.ingest)
        return QueryPhoto(self.query_image_encoder.encode([img])[0], colour_histogram(img))

    # -- reading -----------------------------------------------------------------------------
    @property
    def reranker(self) -> Reranker:
        """Query understanding, behaviour features and the learned ranker (if one was trained)."""
        if self._reranker is None:
            cfg = self._config.retrieve
            self._reranker = Reranker(
                self.path,
                self._encode_text_batch,
                cfg.rerank_depth,
                cfg.history_weight,
                self.config.encode.resolved_cache_dir(),
                lambda texts: self.text_encoder.encode(texts),
            )
        return self._reranker

    def retriever(self) -> HybridRetriever:
        return HybridRetriever(
            self.state, self._config.retrieve, self.encode_query_text, self.encode_query_image, self.reranker
        )

    def train(
        self,
        queries: Sequence[tuple[str, Query]],
        qrels: Mapping[str, Mapping[str, int]],
        library: str = "lightgbm",
        source: str = "judgments",
    ) -> Ranker:
        """Train the LambdaMART ranker from judged queries; stores it in the index folder."""
        from .rank.ltr import RANKER_DIR, train_ranker
        from .rank.train import build_training_set

        data = build_training_set(self, queries, qrels)
        ranker = train_ranker(data, library=library, source=source)
        ranker.save(self.path / RANKER_DIR)
        self.reranker.reload()
        return ranker

    def add_events(self, events: Iterable[object]) -> tuple[int, list[str]]:
        """Validate and append shopper events (user ids pseudonymised); returns (stored, problems)."""
        from .rank.events import append_events

        stored, problems = append_events(self.path, events, set(self.state.id_to_row))
        self.reranker.reload()
        return stored, problems

    def search(
        self,
        text: str | Query = "",
        image: QueryImage | None = None,
        filters: Sequence[str] = (),
        k: int = 10,
        offset: int = 0,
        history: Sequence[str] = (),
        user: str | None = None,
        explain: bool = False,
    ) -> SearchResult:
        """Search by text, photo, or both; ``filters`` like ``["gender=Women", "price<50"]``."""
        q = Query.of(text, image, filters, k, offset, history, user, explain)
        with query_threads():
            return self.retriever().search(q)

    def similar(self, product_id: str, k: int = 10, filters: Sequence[str] = ()) -> SearchResult:
        """"More like this": nearest products by text and photo (attention fusion by default)."""
        with query_threads():
            return self.retriever().similar(str(product_id), k, tuple(filters))

    def recommend(self, history: Sequence[str] = (), user: str | None = None, k: int = 10) -> SearchResult:
        """"Recommended for you": products nearest the shopper's profile (the given history, else
        the user's stored events), their own history left out; empty without either."""
        from .rank.recommend import recommend_rows

        if not 1 <= k <= 1000:
            raise QueryError(f"k must be between 1 and 1000, got {k}")
        st = self.state
        hist = list(history) or self.reranker.user_history(user)
        unknown = [h for h in history if h not in st.id_to_row]
        if history and len(unknown) == len(history):
            raise NotFoundError(f"unknown product id(s) in history: {', '.join(map(repr, unknown[:5]))}")
        with query_threads():
            rows = recommend_rows(st, hist, k)
        hits = tuple(Hit(st.products[r], s, i + 1, {"profile": round(s, 6)}) for i, (r, s) in enumerate(rows))
        return SearchResult(hits, len(hits), {}, {})

    def bought_together(self, product_id: str, k: int = 10) -> SearchResult:
        """"Bought together": products sharing baskets with this one in the event log (carts and
        purchases by the same shopper or session); "more like this" when there is no such data."""
        from .rank.recommend import together_rows

        st = self.state
        if str(product_id) not in st.id_to_row:
            raise NotFoundError(f"unknown product id {product_id!r}")
        rows = together_rows(st, self.reranker.events(), str(product_id), k)
        if not rows:
            return self.similar(str(product_id), k)
        hits = tuple(Hit(st.products[r], s, i + 1, {"together": round(s, 6)}) for i, (r, s) in enumerate(rows))
        return SearchResult(hits, len(hits), {}, {})

    def get(self, product_id: str) -> Product:
        st = self.state
        row = st.id_to_row.get(str(product_id))
        if row is None:
            raise NotFoundError(f"unknown product id {product_id!r}")
        return st.products[row]

    def products(self) -> Iterator[Product]:
        yield from (self._state.products if self._state else [])

    # -- writing -----------------------------------------------------------------------------
    def add_catalog(
        self, catalog: str | Path, mapping: Mapping[str, str] | None = None, replace: bool = False
    ) -> IngestReport:
        """Import a CSV/JSONL/Parquet catalogue: new ids added, known ids updated.

        With ``replace=True`` products absent from the catalogue are deleted, except those whose
        row was skipped as invalid (their stored version is kept: nothing stored is lost).
        """
        pairs, skipped, rows = load_catalog(catalog, mapping)
        deletes: set[str] = set()
        if replace and self._state is not None:
            keep = {p.id for _, p in pairs} | {s.id for s in skipped if s.id}
            deletes = {p.id for p in self._state.products if p.id not in keep}
        return self._commit(pairs, deletes, skipped, rows)

    def upsert(self, products: Iterable[Product]) -> IngestReport:
        """Add or replace products (validated :class:`Product` values)."""
        pairs = [(i, p) for i, p in enumerate(products, start=1)]
        return self._commit(pairs, set(), [], len(pairs))

    def delete(self, ids: Iterable[str]) -> int:
        """Delete products by id; unknown ids raise NotFoundError and nothing is deleted."""
        ids = {str(i) for i in ids}
        st = self.state
        unknown = sorted(ids - set(st.id_to_row))
        if unknown:
            raise NotFoundError(f"unknown product id(s): {', '.join(unknown[:10])}")
        self._commit([], ids, [], 0)
        return len(ids)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One writer per index, across threads and processes."""
        self.path.mkdir(parents=True, exist_ok=True)
        with self._write_lock, (self.path / ".write.lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _commit(
        self,
        pairs: list[tuple[int, Product]],
        deletes: set[str],
        skipped: list[SkippedRow],
        rows: int,
    ) -> IngestReport:
        with self._exclusive():
            if (self.path / atomic.CURRENT).is_file():
                self.reload()
            from .index.build import build_generation

            result = build_generation(self, self._state, pairs, deletes, skipped)
            self._state = result.state
            return IngestReport(rows, result.added, result.updated, tuple(result.skipped), tuple(result.warnings))

    # kept small: the generation builder lives in index/build.py
    def _encode_text_batch(self, texts: list[str]) -> np.ndarray:
        enc = self._config.encode
        vecs, _ = encode_texts(self.text_encoder, texts, self.cache, enc.text_batch_size, enc.progress)
        return vecs

    def _encode_image_batch(self, refs: list[str]) -> ImageBatchResult:
        enc = self._config.encode
        return encode_images(
            self.image_encoder, refs, self.cache, enc.image_batch_size, self._config.ingest, enc.progress
        )


__all__ = ["Engine", "ImageError", "LexicalIndex"]
