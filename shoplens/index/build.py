"""Build the next generation of an index from the current one plus upserts and deletes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import AlignConfig, Config
from ..fuse.align import AlignModel
from ..fuse.bridge import prepare_alignment, product_image_inputs
from ..types import Product, SkippedRow
from . import atomic
from .lexical import LexicalIndex
from .state import IndexState

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    state: IndexState
    added: int = 0
    updated: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)
    warnings: list[SkippedRow] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each build stage


class StageClock:
    """Wall time of consecutive stages, logged together at the end of a build."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + now - self._last, 3)
        self._last = now


def _tags(
    engine: Engine,
    old: IndexState | None,
    products: list[Product],
    has_text: np.ndarray,
    image_owner: np.ndarray,
    image_aux: dict[str, np.ndarray],
    base: int,
) -> tuple[np.ndarray | None, dict[str, str]]:
    """Text vectors of zero-shot tags for photo-only products (None when every product has text)."""
    if not engine.config.align.tags or "probs" not in image_aux:
        return None, {}
    from ..fuse.tags import tags_text

    n = len(products)
    first_photo = np.full(n, -1, np.int64)
    owners, first = np.unique(np.asarray(image_owner), return_index=True)
    first_photo[owners] = first
    targets = np.flatnonzero(~np.asarray(has_text, bool) & (first_photo >= 0))
    texts = {int(r): tags_text(np.asarray(image_aux["probs"][first_photo[r]])) for r in targets}
    texts = {r: t for r, t in texts.items() if t}
    if not texts:  # every product has text (the usual case): no N × d array of zeros (2 GB at 1M)
        return None, {}
    out = np.zeros((n, engine.text_encoder.dim), np.float32)
    rows = list(texts)
    out[rows] = engine._encode_text_batch([texts[r] for r in rows])
    # Only products written in this generation need their tags in the BM25 index.
    return out, {products[r].id: t for r, t in texts.items() if r >= base}


def _alignment(
    engine: Engine,
    old: IndexState | None,
    products: list[Product],
    text_vectors: np.ndarray,
    has_text: np.ndarray,
    image_vectors: np.ndarray,
    image_owner: np.ndarray,
    image_aux: dict[str, np.ndarray],
) -> AlignModel | None:
    n = len(products)
    if image_vectors.shape[0] == 0 and engine.align_source is None:
        return old.align if old is not None else None
    has_image = np.bincount(image_owner, minlength=n)[:n] > 0 if len(image_owner) else np.zeros(n, bool)
    inputs = product_image_inputs(image_vectors, image_owner, image_aux.get("colour"))
    previous = old.align if old is not None else None

    def train() -> AlignModel | None:
        return prepare_alignment(
            engine.config.align,
            text_vectors,
            has_text,
            has_image,
            inputs,
            image_vectors,
            image_owner,
            previous,
            engine.align_source,
            engine.config.encode.progress,
        )

    enc = engine.config.encode
    if previous is not None or engine.align_source is not None or not enc.cache or not engine.config.align.enabled:
        return train()
    # A first build trains from its inputs alone: the same catalogue indexed again (into a new
    # folder, or after a settings change that leaves the vectors alone) reuses the trained heads.
    key = alignment_key(engine.config.align, text_vectors, has_text, image_vectors, image_owner, image_aux)
    return cached_alignment(enc.resolved_cache_dir() / "align", key, train)


ALIGN_CACHE_VERSION = 2  # bump when training changes what the same inputs give


def alignment_key(
    cfg: AlignConfig,
    text_vectors: np.ndarray,
    has_text: np.ndarray,
    image_vectors: np.ndarray,
    image_owner: np.ndarray,
    image_aux: dict[str, np.ndarray],
) -> str:
    """A fingerprint of everything a first alignment training reads."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps([ALIGN_CACHE_VERSION, dataclasses.asdict(cfg)], sort_keys=True).encode())
    for arr in (text_vectors, has_text, image_vectors, image_owner, image_aux.get("colour", np.zeros(0))):
        a = np.ascontiguousarray(arr)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def cached_alignment(folder: Path, key: str, train: Callable[[], AlignModel | None]) -> AlignModel | None:
    """The model stored under ``key``, else ``train()``'s, stored atomically (a half-written entry
    is never read: it is renamed into place complete)."""
    entry = folder / key
    if (entry / "align.json").is_file():
        try:
            stored = AlignModel.load(entry)
            log.info("alignment reused from the cache (%s)", entry)
            return stored
        except (OSError, ValueError, KeyError) as e:
            log.warning("alignment cache entry %s unreadable (%s): training again", entry, e)
            shutil.rmtree(entry, ignore_errors=True)
    model = train()
    if model is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=folder))
        model.save(tmp)
        try:
            os.replace(tmp, entry)
        except OSError:  # another build stored the same entry meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as e:
        log.warning("alignment not cached in %s: %s", folder, e)
    return model


def listing_time() -> float:
    """The date given to products a write adds (unix seconds; a function so tests can set it)."""
    return time.time()


def kept_added(old: IndexState) -> np.ndarray:
    """When the old generation's products were first added; for an index written before dates were
    recorded, its generation folder's modification time."""
    if old.added is not None:
        return np.asarray(old.added, np.float64)
    when = old.path.stat().st_mtime if old.path is not None else time.time()
    return np.full(old.n, when, np.float64)


def first_added(old: IndexState | None, new_products: list[Product], now: float) -> np.ndarray:
    """For each written product: its first-added time if it is already listed (an update keeps
    it), else ``now``."""
    out = np.full(len(new_products), now, np.float64)
    if old is not None and old.n:
        dates = kept_added(old)
        for n, p in enumerate(new_products):
            row = old.id_to_row.get(p.id)
            if row is not None:
                out[n] = dates[row]
    return out


def in_order(rows: np.ndarray) -> bool:
    """Rows 0, 1, 2, … (every old row kept where it was, as in an append)."""
    return not len(rows) or (int(rows[0]) == 0 and bool(np.all(np.diff(rows) == 1)))


def kept_rows(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``arr[rows]``, without a copy when every row is kept in order (e.g. an append to a
    memory-mapped matrix: the merge then reads it once, into the new array)."""
    if len(rows) == len(arr) and in_order(rows):
        return arr
    return np.asarray(arr)[rows]


_TAKE_CHUNK = 65_536  # rows gathered at a time from a (memory-mapped) matrix


def stacked(old: np.ndarray, rows: np.ndarray, new: np.ndarray, dim: int) -> np.ndarray:
    """``concatenate([old[rows], new])`` as float32, allocated once: the kept rows are gathered
    straight into the result (``old[rows]`` first would be one more copy, 5 GB for the photos of
    a 1M index whenever an update drops a row)."""
    n = len(rows)
    out = np.empty((n + len(new), dim), np.float32)
    if n:
        if n == len(old) and in_order(rows):  # an append: one sequential copy
            out[:n] = old
        else:
            for start in range(0, n, _TAKE_CHUNK):
                chunk = rows[start : start + _TAKE_CHUNK]
                out[start : start + len(chunk)] = old[chunk]
    if len(new):
        out[n:] = new
    return out


def merge_aux(
    old: dict[str, np.ndarray], new: dict[str, list[np.ndarray]], n_old: int, n_new: int
) -> dict[str, np.ndarray]:
    """Per-photo side arrays (colour, tags) for kept + new photos; a side output either side lacks
    is dropped rather than misaligned."""
    out: dict[str, np.ndarray] = {}
    for name in set(old) | set(new):
        o = old.get(name, np.zeros((0, 0), np.float32)) if n_old else None
        v = new.get(name, [])
        if (n_old and (o is None or len(o) != n_old)) or len(v) != n_new:
            continue
        parts = ([o] if n_old and o is not None else []) + ([np.stack(v)] if v else [])
        if parts:
            out[name] = np.concatenate(parts, dtype=np.float32)
    return out


PLAIN_SAMPLE = 200  # photos looked at to decide whether a catalogue is one of studio shots
# Fewer readable photos than this in a first write decide nothing: every photo at one side (a
# first write of a few products must not fix the side for the catalogue that follows).
PLAIN_MIN_PHOTOS = 50


def plain_side_config(config: Config, old: IndexState | None, refs: list[str]) -> Config:
    """``config`` as a write of ``refs`` should use it: ``encode.plain_image_size`` (products on a
    plain background encoded at a smaller side) is kept only for a catalogue of studio shots, i.e.
    at least ``encode.plain_min_share`` of a sample of its photos (``PLAIN_MIN_PHOTOS`` or more
    readable ones) with a plain border. Where studio
    photos sit beside shop photos of the same products, the photo head learns to match the two
    kinds, and different sides for them cost grocery shelf-photo queries 0.018 nDCG@10
    (benchmarks/RESULTS-encode.md). An index that already holds photos keeps the way they were
    encoded. The config returned is the one the index stores."""
    from ..encode.efficientnet import PLAIN_MIN_SHARE, plain_border_share
    from ..encode.registry import SIZED_IMAGE_ENCODERS
    from ..errors import ImageError
    from ..ingest.images import decode_image, load_image_bytes

    enc = config.encode
    if not enc.plain_image_size or enc.plain_image_size == enc.image_size or not refs:
        return config
    if enc.image_encoder.partition(":")[0] not in SIZED_IMAGE_ENCODERS:
        return config
    if old is not None and old.image_vectors.shape[0]:
        keep = bool(old.config.encode.plain_image_size) and old.config.encode.image_size == enc.image_size
        why = "the index's photos were encoded that way" if keep else "the index's photos were encoded without it"
    else:
        step = max(1, len(refs) // PLAIN_SAMPLE)
        plain = seen = 0
        for ref in refs[::step][:PLAIN_SAMPLE]:
            try:
                img = decode_image(load_image_bytes(ref, config.ingest), config.ingest)
            except ImageError:
                continue  # reported by the encoding pass
            seen += 1
            plain += plain_border_share(img) >= PLAIN_MIN_SHARE
        share = plain / seen if seen else 0.0
        keep = seen >= PLAIN_MIN_PHOTOS and share >= enc.plain_min_share
        why = f"{plain} of {seen} sampled photos show a plain background ({share:.0%}; needed {enc.plain_min_share:.0%}"
        why += f" of at least {PLAIN_MIN_PHOTOS} photos)"
    log.info("photos on a plain background at %d px: %s (%s)", enc.plain_image_size, "yes" if keep else "no", why)
    return config if keep else config.replace(encode={"plain_image_size": 0})


def decide_plain_side(engine: Engine, old: IndexState | None, refs: list[str]) -> None:
    """Switch ``engine`` to :func:`plain_side_config`'s decision for a write of ``refs``."""
    config = plain_side_config(engine.config, old, refs)
    if config is not engine.config:
        engine._use_config(config)


def reuse_ann(state: IndexState, old: IndexState, keep_rows: np.ndarray, photo_keep: np.ndarray) -> None:
    """Give ``state`` the old generation's ANN indexes brought up to date where they can serve,
    instead of building new ones when it is saved: IVF indexes with rows dropped, renumbered and
    added (``quantize.update_ivf``); float32 HNSW graphs when the write only appended
    (``quantize.extend_hnsw``; a graph cannot drop nodes). Same index settings only; the text
    index only when every product has text (its rows are then the product rows)."""
    from .quantize import CompactSpec, extend_hnsw, update_ivf

    if old.path is None or old.config.index != state.config.index:
        return
    parts = [(state.image_index, old.path / "image.hnsw", photo_keep, state.image_vectors, int(old.image_vectors.shape[0]))]
    if bool(np.all(old.has_text)) and bool(np.all(state.has_text)):
        parts.append((state.text_index, old.path / "text.hnsw", keep_rows, state.text_vectors, old.n))
    for index, path, keep, vectors, n_old in parts:
        if not index.uses_ann:
            continue
        new = vectors[len(keep) :]
        if index.cfg.ann_kind == "ivf":
            ann = update_ivf(path, keep, new, n_old, CompactSpec.from_config(index.cfg, ann=True))
        elif not index.compact and len(keep) == n_old and in_order(keep):
            ann = extend_hnsw(path, n_old, new, index.cfg.hnsw_ef_construction)
        else:
            continue
        if ann is not None:
            index._ann = ann


def build_generation(
    engine: Engine,
    old: IndexState | None,
    pairs: list[tuple[int, Product]],
    deletes: set[str],
    skipped: list[SkippedRow],
) -> BuildResult:
    """Encode what is new (cache first), merge with what is kept, write and publish atomically."""
    decide_plain_side(engine, old, [ref for _, p in pairs for ref in p.images])
    cfg = engine.config
    skipped = list(skipped)
    warnings: list[SkippedRow] = []
    clock = StageClock()

    # 1. Photos first: a row whose main photo cannot be decoded is skipped as a whole.
    refs: list[str] = []
    ref_of: list[tuple[int, int]] = []  # (index into pairs, photo position)
    for i, (_, p) in enumerate(pairs):
        for j, ref in enumerate(p.images):
            refs.append(ref)
            ref_of.append((i, j))
    batch = engine._encode_image_batch(refs) if refs else None
    img_vecs, ok, failed = (batch.vectors, batch.ok, batch.failed) if batch else (None, [], {})
    bad_rows: set[int] = set()
    good_photos: dict[int, list[tuple[str, np.ndarray]]] = {}
    photo_aux: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    vec_of = {idx: n for n, idx in enumerate(ok)}
    for idx, (i, j) in enumerate(ref_of):
        row, p = pairs[i]
        if idx in failed:
            field_name = "image" if j == 0 else "images"
            if j == 0:
                bad_rows.add(i)
                skipped.append(SkippedRow(row, field_name, failed[idx], p.id))
            else:
                warnings.append(SkippedRow(row, field_name, f"photo dropped: {failed[idx]}", p.id))
        else:
            assert img_vecs is not None and batch is not None
            good_photos.setdefault(i, []).append((refs[idx], img_vecs[vec_of[idx]]))
            photo_aux[(i, refs[idx])] = {name: arr[vec_of[idx]] for name, arr in batch.aux.items()}
    kept_pairs = [(i, row, p) for i, (row, p) in enumerate(pairs) if i not in bad_rows]
    new_products: list[Product] = []
    for i, _row, p in kept_pairs:
        photos = tuple(ref for ref, _ in good_photos.get(i, []))
        if photos != p.images:
            p = Product(p.id, p.title, p.description, p.reviews, photos, p.price, p.category, p.brand, p.attributes)
        new_products.append(p)
    clock.lap("photos")

    # 2. Text of the new products.
    mode = cfg.encode.dense_text
    from ..engine import dense_text

    texts = [dense_text(p, mode) for p in new_products]
    text_rows = [n for n, t in enumerate(texts) if t]
    tdim = engine.text_encoder.dim
    new_text = np.zeros((len(new_products), tdim), np.float32)
    if text_rows:
        new_text[text_rows] = engine._encode_text_batch([texts[n] for n in text_rows])
    new_has_text = np.zeros(len(new_products), bool)
    new_has_text[text_rows] = True
    clock.lap("text")

    # 3. Merge with the kept part of the old state.
    upsert_ids = {p.id for p in new_products}
    old_ids = set(old.id_to_row) if old else set()
    new_added = first_added(old, new_products, listing_time())
    drop = upsert_ids | deletes
    idim = engine.image_encoder.dim if refs else (old.image_vectors.shape[1] if old is not None else 0)
    if old is not None and old.n:
        keep_rows = np.array([r for r, p in enumerate(old.products) if p.id not in drop], np.int64)
        products = [old.products[r] for r in keep_rows] + new_products
        # One copy per array (the kept rows straight into the merged array): at 1M products an
        # update used to hold three copies of the 5 GB photo matrix at once.
        text_vectors = stacked(old.text_vectors, keep_rows, new_text, new_text.shape[1])
        has_text = np.concatenate([old.has_text[keep_rows], new_has_text])
        listed = np.concatenate([kept_added(old)[keep_rows], new_added])
        remap = np.full(old.n, -1, np.int64)
        remap[keep_rows] = np.arange(len(keep_rows))
        photo_keep = np.flatnonzero(remap[old.image_owner] >= 0)
        old_img = old.image_vectors
        old_owner = remap[old.image_owner[photo_keep]]
        old_refs = [old.image_refs[i] for i in photo_keep]
        old_aux = {name: kept_rows(arr, photo_keep) for name, arr in old.image_aux.items()}
        base = len(keep_rows)
    else:
        products, text_vectors, has_text, listed = new_products, new_text, new_has_text, new_added
        old_img, old_owner, old_refs, base = np.zeros((0, idim), np.float32), np.zeros(0, np.int64), [], 0
        old_aux = {}
        keep_rows = photo_keep = np.zeros(0, np.int64)
    add_img, add_owner, add_refs = [], [], []
    add_aux: dict[str, list[np.ndarray]] = {}
    for n, (i, _row, _p) in enumerate(kept_pairs):
        for ref, vec in good_photos.get(i, []):
            add_img.append(vec)
            add_owner.append(base + n)
            add_refs.append(ref)
            for name, val in photo_aux.get((i, ref), {}).items():
                add_aux.setdefault(name, []).append(val)
    image_aux = merge_aux(old_aux, add_aux, len(old_refs), len(add_refs))
    new_img = np.asarray(add_img, np.float32).reshape(len(add_img), idim)  # (0, 0) for a text-only catalogue
    image_vectors = stacked(old_img, photo_keep, new_img, idim)
    image_owner = np.concatenate([old_owner, np.asarray(add_owner, np.int64)])
    clock.lap("merge")

    # 4. Write the new generation: lexical index copied by hard links and updated in place.
    scratch, final = atomic.new_generation_dir(engine.path)
    try:
        if old is not None and old.path is not None and (old.path / "bm25").is_dir():
            atomic.link_tree(old.path / "bm25", scratch / "bm25")
        tag_vectors, tags_of = _tags(engine, old, products, has_text, image_owner, image_aux, base)
        clock.lap("tags")
        lexical = LexicalIndex(scratch / "bm25")
        # BM25 indexing (tantivy, one thread) runs beside the alignment (torch, one thread).
        with ThreadPoolExecutor(1) as pool:
            bm25 = pool.submit(lexical.upsert, new_products, sorted(deletes & old_ids), derived=tags_of)
            align = _alignment(engine, old, products, text_vectors, has_text, image_vectors, image_owner, image_aux)
            clock.lap("align")
            bm25.result()
        clock.lap("lexical (after align)")
        state = IndexState(
            config=cfg,
            products=products,
            text_vectors=text_vectors,
            has_text=has_text,
            image_vectors=image_vectors,
            image_owner=image_owner,
            image_refs=old_refs + add_refs,
            image_aux=image_aux,
            align=align,
            tag_vectors=tag_vectors,
            added=listed,
            lexical=lexical,
            text_model=engine.text_encoder.name,
            image_model=engine.image_encoder.name if refs else (old.image_model if old else ""),
        )
        if old is not None and old.n:
            reuse_ann(state, old, keep_rows, photo_keep)
        state.save(scratch)
        del lexical, state
        clock.lap("save")
        final = atomic.publish(engine.path, scratch, final, cfg.index.keep_generations)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    added = sum(1 for p in new_products if p.id not in old_ids)
    loaded = IndexState.load(final)
    clock.lap("publish")
    log.info("index %s now has %d products (%s)", engine.path, len(products), final.name)
    log.info("build stages (s): %s", ", ".join(f"{k}={v:.2f}" for k, v in clock.seconds.items()))
    return BuildResult(loaded, added, len(new_products) - added, skipped, warnings, clock.seconds)
