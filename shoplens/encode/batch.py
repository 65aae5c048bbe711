"""Batched, cached encoding of many texts or photos, with a progress bar and per-item failures."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..config import IngestConfig
from ..errors import ImageError
from ..fuse.colour import NAME as COLOUR_NAME
from ..fuse.colour import colour_histogram
from ..ingest.images import decode_image, load_image_bytes
from .base import ImageEncoder, TextEncoder
from .cache import EmbeddingCache, content_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageBatchResult:
    vectors: np.ndarray  # one row per *successful* ref, in input order
    ok: list[int]  # indices into the refs that encoded
    failed: dict[int, str]  # index → reason
    encoded: int  # how many were actually run through the model (cache misses)
    # Per-photo side outputs aligned with ``vectors``: "colour" (pixel histogram) and, when the
    # encoder is a classifier, "probs" (its class probabilities, for zero-shot tags).
    aux: dict[str, np.ndarray] = field(default_factory=dict)


def encode_texts(
    encoder: TextEncoder,
    texts: Sequence[str],
    cache: EmbeddingCache | None = None,
    batch_size: int = 256,
    progress: bool = False,
    desc: str = "encoding text",
) -> tuple[np.ndarray, int]:
    """Vectors for all texts (cache hits reused) and the number actually encoded."""
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
    bar = tqdm(total=len(uniq), desc=desc, unit="text", disable=None if (progress and uniq) else True)
    for start in range(0, len(uniq), batch_size):
        chunk = uniq[start : start + batch_size]
        vecs = encoder.encode([texts[todo[k][0]] for k in chunk])
        for k, v in zip(chunk, vecs, strict=True):
            out[todo[k]] = v
        if cache:
            cache.put_many(encoder.name, zip(chunk, vecs, strict=True))
        bar.update(len(chunk))
    bar.close()
    return out, len(uniq)


def encode_images(
    encoder: ImageEncoder,
    refs: Sequence[str],
    cache: EmbeddingCache | None = None,
    batch_size: int = 32,
    ingest: IngestConfig | None = None,
    progress: bool = False,
    loader: Callable[[str], bytes] | None = None,
    workers: int = 4,
) -> ImageBatchResult:
    """Read, hash, decode (in threads, overlapping the model) and encode photos; failures reported."""
    cfg = ingest or IngestConfig()
    load = loader or (lambda r: load_image_bytes(r, cfg))
    vecs: dict[int, np.ndarray] = {}
    aux: dict[str, dict[int, np.ndarray]] = {"colour": {}}
    has_probs = hasattr(encoder, "run_with_probs")
    if has_probs:
        aux["probs"] = {}
    failed: dict[int, str] = {}
    encoded = 0
    bar = tqdm(total=len(refs), desc="encoding images", unit="img", disable=None if (progress and refs) else True)

    def read(i: int) -> tuple[int, str | None, Image.Image | None, str]:
        try:
            data = load(refs[i])
            key = content_key(data)
            return i, key, decode_image(data, cfg), ""
        except ImageError as e:
            return i, None, None, str(e)

    starts = list(range(0, len(refs), batch_size))
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def submit(start: int) -> list[Future[tuple[int, str | None, Image.Image | None, str]]]:
            return [pool.submit(read, i) for i in range(start, min(start + batch_size, len(refs)))]

        pending = submit(starts[0]) if starts else []
        for n in range(len(starts)):
            loaded = [f.result() for f in pending]
            # Start reading and decoding the next batch while the model runs on this one.
            pending = submit(starts[n + 1]) if n + 1 < len(starts) else []
            keys = [k for _, k, _, _ in loaded if k]
            hits = cache.get_many(encoder.name, keys) if cache else {}
            probs_name = f"{encoder.name}#top-classes"
            phits = cache.get_many(probs_name, keys) if cache and has_probs else {}
            chits = cache.get_many(COLOUR_NAME, keys) if cache else {}
            todo: list[tuple[int, str, Image.Image]] = []
            for i, key, img, err in loaded:
                if key is None or img is None:
                    failed[i] = err
                    continue
                if key in chits:
                    aux["colour"][i] = chits[key]
                else:
                    aux["colour"][i] = colour_histogram(img)
                    if cache:
                        cache.put_many(COLOUR_NAME, [(key, aux["colour"][i])])
                if key in hits and (not has_probs or key in phits):
                    vecs[i] = hits[key]
                    if has_probs:
                        aux["probs"][i] = phits[key]
                else:
                    todo.append((i, key, img))
            if todo:
                imgs = [img for _, _, img in todo]
                if has_probs:
                    out, probs = encoder.run_with_probs(imgs)  # type: ignore[attr-defined]
                else:
                    out, probs = encoder.encode(imgs), None
                encoded += len(todo)
                for n, ((i, _, _), v) in enumerate(zip(todo, out, strict=True)):
                    vecs[i] = v
                    if probs is not None:
                        aux["probs"][i] = probs[n]
                if cache:
                    cache.put_many(encoder.name, [(k, v) for (_, k, _), v in zip(todo, out, strict=True)])
                    if probs is not None:
                        cache.put_many(probs_name, [(k, p) for (_, k, _), p in zip(todo, probs, strict=True)])
            bar.update(len(loaded))
    bar.close()
    ok = sorted(vecs)
    matrix = np.stack([vecs[i] for i in ok]).astype(np.float32) if ok else np.zeros((0, encoder.dim), np.float32)
    for i, why in failed.items():
        log.warning("image %s skipped: %s", refs[i], why)
    aux_arrays = {
        name: (np.stack([vals[i] for i in ok]).astype(np.float32) if ok else np.zeros((0, 0), np.float32))
        for name, vals in aux.items()
    }
    return ImageBatchResult(matrix, ok, failed, encoded, aux_arrays)
