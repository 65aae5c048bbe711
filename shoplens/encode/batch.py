"""Batched, cached encoding of many texts or photos, with a progress bar and per-item failures."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..config import IngestConfig
from ..errors import ImageError
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
            todo: list[tuple[int, str, Image.Image]] = []
            for i, key, img, err in loaded:
                if key is None or img is None:
                    failed[i] = err
                elif key in hits:
                    vecs[i] = hits[key]
                else:
                    todo.append((i, key, img))
            if todo:
                out = encoder.encode([img for _, _, img in todo])
                encoded += len(todo)
                for (i, _, _), v in zip(todo, out, strict=True):
                    vecs[i] = v
                if cache:
                    cache.put_many(encoder.name, [(k, v) for (_, k, _), v in zip(todo, out, strict=True)])
            bar.update(len(loaded))
    bar.close()
    ok = sorted(vecs)
    matrix = np.stack([vecs[i] for i in ok]).astype(np.float32) if ok else np.zeros((0, encoder.dim), np.float32)
    for i, why in failed.items():
        log.warning("image %s skipped: %s", refs[i], why)
    return ImageBatchResult(matrix, ok, failed, encoded)
