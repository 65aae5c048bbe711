"""Batched, cached encoding of many texts or photos, with a progress bar and per-item failures.

Photos flow reader → cache → mapper → writer: reader threads read and hash the bytes; the cache is
asked by content hash *before* anything is decoded (a warm re-index decodes nothing); the misses
are decoded, colour-histogrammed and encoded in batches, one batch per core at once; the main
thread writes results and the cache.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ..config import IngestConfig
from ..errors import ImageError
from ..fuse.colour import NAME as COLOUR_NAME
from ..fuse.colour import colour_histogram
from ..ingest.images import decode_image, load_image_bytes
from .base import ImageEncoder, TextEncoder
from .cache import EmbeddingCache, content_key

log = logging.getLogger(__name__)

READ_THREADS = 4  # reading is I/O (files, URLs): threads that mostly wait


@dataclass(frozen=True)
class ImageBatchResult:
    vectors: np.ndarray  # one row per *successful* ref, in input order
    ok: list[int]  # indices into the refs that encoded
    failed: dict[int, str]  # index → reason
    encoded: int  # how many were actually run through the model (cache misses)
    # Per-photo side outputs aligned with ``vectors``: "colour" (pixel histogram) and, when the
    # encoder is a classifier, "probs" (its class probabilities, for zero-shot tags).
    aux: dict[str, np.ndarray] = field(default_factory=dict)


def available_cores() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def model_workers(encoder: object, threads: int = 0) -> int:
    """How many batches to run through ``encoder`` at once with ``threads`` cores (0 = all).

    Encoders that declare ``batch_threads`` (the threads one multi-item call uses) accept
    concurrent calls: they get one call per ``batch_threads`` cores. Others get one at a time.
    """
    per_call = int(getattr(encoder, "batch_threads", 0) or 0)
    if per_call <= 0:
        return 1
    return max(1, (threads or available_cores()) // per_call)


def encode_texts(
    encoder: TextEncoder,
    texts: Sequence[str],
    cache: EmbeddingCache | None = None,
    batch_size: int = 64,
    progress: bool = False,
    desc: str = "encoding text",
    workers: int = 0,
) -> tuple[np.ndarray, int]:
    """Vectors for all texts (cache hits reused) and the number actually encoded.

    ``workers`` batches run at once (0: :func:`model_workers`, one per core for encoders that
    allow it); the cache is written by the calling thread only.
    """
    out = np.zeros((len(texts), encoder.dim), np.float32)
    keys = [content_key(t) for t in texts]
    hits = cache.get_many(encoder.name, keys) if cache else {}
    todo: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        if k in hits:
            out[i] = hits[k]
        else:
            todo.setdefault(k, []).append(i)
    uniq = list(todo)
    # Sort by length so each batch holds texts of similar length (less padding work).
    uniq.sort(key=lambda k: len(texts[todo[k][0]]))
    chunks = [uniq[s : s + batch_size] for s in range(0, len(uniq), batch_size)]
    n_workers = min(workers or model_workers(encoder), max(1, len(chunks)))
    bar = tqdm(total=len(uniq), desc=desc, unit="text", disable=None if (progress and uniq) else True)

    def run(chunk: list[str]) -> tuple[list[str], np.ndarray]:
        return chunk, encoder.encode([texts[todo[k][0]] for k in chunk])

    def store(chunk: list[str], vecs: np.ndarray) -> None:
        for k, v in zip(chunk, vecs, strict=True):
            out[todo[k]] = v
        if cache:
            cache.put_many(encoder.name, zip(chunk, vecs, strict=True))
        bar.update(len(chunk))

    if n_workers <= 1:
        for chunk in chunks:
            store(*run(chunk))
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            for chunk, vecs in pool.map(run, chunks):
                store(chunk, vecs)
    bar.close()
    return out, len(uniq)


# One photo to decode: its content key, its bytes, whether it needs the model, whether it needs colour.
_Item = tuple[str, bytes, bool, bool]


@dataclass
class _Done:
    vecs: dict[str, np.ndarray] = field(default_factory=dict)
    probs: dict[str, np.ndarray] = field(default_factory=dict)
    colour: dict[str, np.ndarray] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    encoded: int = 0


def _compute(encoder: ImageEncoder, items: list[_Item], cfg: IngestConfig, has_probs: bool) -> _Done:
    """Decode one batch of photos, histogram their colours and run the model on those that need it."""
    done = _Done(keys=[key for key, *_ in items])
    model_keys, model_imgs = [], []
    for key, data, need_vec, need_colour in items:
        try:
            img = decode_image(data, cfg)
        except ImageError as e:
            done.failed[key] = str(e)
            continue
        if need_colour:
            done.colour[key] = colour_histogram(img)
        if need_vec:
            model_keys.append(key)
            model_imgs.append(img)
    if model_imgs:
        if has_probs:
            vecs, probs = encoder.run_with_probs(model_imgs)  # type: ignore[attr-defined]
            done.probs = dict(zip(model_keys, probs, strict=True))
        else:
            vecs = encoder.encode(model_imgs)
        done.vecs = dict(zip(model_keys, vecs, strict=True))
        done.encoded = len(model_imgs)
    return done


def encode_images(
    encoder: ImageEncoder,
    refs: Sequence[str],
    cache: EmbeddingCache | None = None,
    batch_size: int = 32,
    ingest: IngestConfig | None = None,
    progress: bool = False,
    loader: Callable[[str], bytes] | None = None,
    workers: int = 0,
) -> ImageBatchResult:
    """Read and hash every photo, take what the cache has, decode and encode the rest; failures reported.

    ``workers`` batches are decoded and encoded at once (0: :func:`model_workers`). A photo that
    appears several times (same bytes) is decoded and encoded once.
    """
    cfg = ingest or IngestConfig()
    load = loader or (lambda r: load_image_bytes(r, cfg))
    has_probs = hasattr(encoder, "run_with_probs")
    probs_name = f"{encoder.name}#top-classes"
    n_workers = workers or model_workers(encoder)
    vecs: dict[int, np.ndarray] = {}
    aux: dict[str, dict[int, np.ndarray]] = {"colour": {}}
    if has_probs:
        aux["probs"] = {}
    failed: dict[int, str] = {}
    waiting: dict[str, list[int]] = {}  # key → indices of refs waiting for its results
    encoded = 0
    bar = tqdm(total=len(refs), desc="encoding images", unit="img", disable=None if (progress and refs) else True)

    def read(i: int) -> tuple[int, str | None, bytes | None, str]:
        try:
            data = load(refs[i])
        except ImageError as e:
            return i, None, None, str(e)
        return i, content_key(data), data, ""

    def finish(done: _Done) -> None:
        nonlocal encoded
        encoded += done.encoded
        for key in done.keys:
            idx = waiting.pop(key)
            for i in idx:
                if key in done.failed:
                    failed[i] = done.failed[key]
                    vecs.pop(i, None)  # a cached vector does not save a photo that no longer decodes
                    for vals in aux.values():
                        vals.pop(i, None)
                    continue
                if key in done.vecs:
                    vecs[i] = done.vecs[key]
                    if has_probs:
                        aux["probs"][i] = done.probs[key]
                if key in done.colour:
                    aux["colour"][i] = done.colour[key]
            bar.update(len(idx))
        if cache:
            cache.put_many(encoder.name, done.vecs.items())
            if has_probs:
                cache.put_many(probs_name, done.probs.items())
            cache.put_many(COLOUR_NAME, done.colour.items())

    window = batch_size * (n_workers + 2)  # reads kept in flight ahead of the batch being looked up
    with ThreadPoolExecutor(READ_THREADS) as readers, ThreadPoolExecutor(n_workers) as mappers:
        reads: deque[Future[tuple[int, str | None, bytes | None, str]]] = deque()
        pending: deque[Future[_Done]] = deque()
        todo: list[_Item] = []
        nxt = 0
        while nxt < len(refs) or reads or todo:
            while nxt < len(refs) and len(reads) < window:
                reads.append(readers.submit(read, nxt))
                nxt += 1
            loaded = [reads.popleft().result() for _ in range(min(batch_size, len(reads)))]
            keys = [k for _, k, _, _ in loaded if k is not None]
            hits = cache.get_many(encoder.name, keys) if cache and keys else {}
            phits = cache.get_many(probs_name, keys) if cache and keys and has_probs else {}
            chits = cache.get_many(COLOUR_NAME, keys) if cache and keys else {}
            settled = 0
            for i, key, data, err in loaded:
                if key is None or data is None:
                    failed[i] = err
                    settled += 1
                    continue
                have_vec = key in hits and (not has_probs or key in phits)
                if have_vec:
                    vecs[i] = hits[key]
                    if has_probs:
                        aux["probs"][i] = phits[key]
                if key in chits:
                    aux["colour"][i] = chits[key]
                if have_vec and key in chits:
                    settled += 1
                elif key in waiting:  # the same photo earlier in this run: share its results
                    waiting[key].append(i)
                else:
                    waiting[key] = [i]
                    todo.append((key, data, not have_vec, key not in chits))
            bar.update(settled)
            last = nxt >= len(refs) and not reads
            while len(todo) >= batch_size or (last and todo):
                pending.append(mappers.submit(_compute, encoder, todo[:batch_size], cfg, has_probs))
                todo = todo[batch_size:]
            while pending and (len(pending) > n_workers or pending[0].done()):
                finish(pending.popleft().result())
        while pending:
            finish(pending.popleft().result())
    bar.close()
    ok = sorted(vecs)
    matrix = np.stack([vecs[i] for i in ok]).astype(np.float32) if ok else np.zeros((0, encoder.dim), np.float32)
    for i, why in sorted(failed.items()):
        log.warning("image %s skipped: %s", refs[i], why)
    aux_arrays = {
        name: (np.stack([vals[i] for i in ok]).astype(np.float32) if ok else np.zeros((0, 0), np.float32))
        for name, vals in aux.items()
    }
    return ImageBatchResult(matrix, ok, failed, encoded, aux_arrays)


__all__ = ["ImageBatchResult", "available_cores", "encode_images", "encode_texts", "model_workers"]
