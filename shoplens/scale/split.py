"""Split one index into N shard folders, each a normal shoplens index; nothing is re-encoded."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, IndexError_
from ..index import atomic
from ..index.lexical import LexicalIndex
from ..index.state import IndexState

log = logging.getLogger(__name__)

SHARD_FILE = "shard.json"  # in each shard's root: which shard it is and each product's global order
# IndexState fields and how a shard takes them; fields not named here are passed through whole
# (config, model names, a trained alignment model) and derived caches are rebuilt.
_PER_PRODUCT = ("text_vectors", "has_text", "tag_vectors", "added")
_PER_PHOTO = ("image_vectors", "image_refs", "image_aux")
_REBUILT = ("products", "image_owner", "lexical", "path", "id_to_row")


def shard_of(product_id: str, n_shards: int) -> int:
    """The shard a product id belongs to (stable across runs and machines: CRC-32 of the id)."""
    if n_shards < 1:
        raise ConfigError(f"the number of shards must be >= 1, got {n_shards}")
    return zlib.crc32(product_id.encode("utf-8")) % n_shards


def _take(value: Any, idx: np.ndarray) -> Any:
    if value is None:  # an optional array the index does not have
        return None
    if isinstance(value, dict):
        return {k: _take(v, idx) for k, v in value.items()}
    if isinstance(value, list):
        return [value[int(i)] for i in idx]
    return np.asarray(value)[idx]


def slice_state(st: IndexState, rows: np.ndarray, lexical: LexicalIndex) -> IndexState:
    """The part of ``st`` holding product ``rows`` (in that order), with its photos."""
    rows = np.asarray(rows, np.int64)
    remap = np.full(st.n, -1, np.int64)
    remap[rows] = np.arange(len(rows))
    owner = np.asarray(st.image_owner)
    photos = np.flatnonzero(remap[owner] >= 0) if len(owner) else np.zeros(0, np.int64)
    kwargs: dict[str, Any] = {
        "products": [st.products[int(r)] for r in rows],
        "image_owner": remap[owner[photos]],
        "lexical": lexical,
    }
    for f in dataclasses.fields(st):
        if f.name.startswith("_") or f.name in _REBUILT:
            continue
        value = getattr(st, f.name)
        if f.name in _PER_PRODUCT:
            kwargs[f.name] = _take(value, rows)
        elif f.name in _PER_PHOTO:
            kwargs[f.name] = _take(value, photos)
        elif isinstance(value, np.ndarray) and value.ndim and len(value) in (st.n, len(owner)):
            raise IndexError_(f"split_index does not know how to shard IndexState.{f.name}; update scale/split.py")
        else:
            kwargs[f.name] = value
    return IndexState(**kwargs)


def write_shard(st: IndexState, rows: np.ndarray, folder: Path) -> Path:
    """Write products ``rows`` of ``st`` as a new generation of the index at ``folder``."""
    scratch, final = atomic.new_generation_dir(folder)
    try:
        lexical = LexicalIndex(scratch / "bm25")
        lexical.upsert([st.products[int(r)] for r in rows])
        shard = slice_state(st, rows, lexical)
        shard.save(scratch)
        del lexical, shard
        return atomic.publish(folder, scratch, final, st.config.index.keep_generations)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def split_index(source: str | Path, out: str | Path, n_shards: int) -> list[Path]:
    """Write ``out/shard-000`` … one index per shard (products assigned by :func:`shard_of`).

    Each shard's root gets ``shard.json`` with the products' order in the source index, which the
    sharded engine uses to break score ties exactly as the single index does.
    """
    from ..engine import Engine

    st = Engine.open(source).state
    assign = np.array([shard_of(p.id, n_shards) for p in st.products], np.int64)
    out = Path(out)
    paths = []
    for s in range(n_shards):
        rows = np.flatnonzero(assign == s)
        folder = out / f"shard-{s:03d}"
        if (folder / atomic.CURRENT).is_file():
            raise IndexError_(f"{folder} already holds an index; choose an empty --out folder")
        write_shard(st, rows, folder)
        meta = {"shard": s, "of": n_shards, "source": str(source),
                "ordinals": {st.products[int(r)].id: int(r) for r in rows}}
        atomic.write_atomic(folder / SHARD_FILE, json.dumps(meta, ensure_ascii=False).encode("utf-8"))
        log.info("shard %d/%d: %d products in %s", s + 1, n_shards, len(rows), folder)
        paths.append(folder)
    return paths


def read_ordinals(folder: Path) -> dict[str, int]:
    """Each product's order in the source index (empty for a shard not made by split_index)."""
    try:
        return {str(k): int(v) for k, v in json.loads((folder / SHARD_FILE).read_text("utf-8"))["ordinals"].items()}
    except (OSError, ValueError, KeyError, AttributeError):
        return {}
