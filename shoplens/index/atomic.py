"""Atomic generations: every write builds a new folder, then one ``os.replace`` makes it current."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import IndexError_

log = logging.getLogger(__name__)

CURRENT = "CURRENT"
_GEN = re.compile(r"^gen-(\d{6})$")


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that a crash leaves either the old or the new content, never a mix."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fsync_dir(path.parent)


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True), encoding="utf-8")


def current_generation(root: Path) -> Path:
    """The folder the ``CURRENT`` pointer names; a clear error if the index is missing or broken."""
    pointer = root / CURRENT
    if not pointer.is_file():
        raise IndexError_(f"{root} is not a shoplens index (no {CURRENT} file); build one with `shoplens index`")
    name = pointer.read_text(encoding="utf-8").strip()
    if not _GEN.match(name) or not (root / name).is_dir():
        raise IndexError_(f"{root}: {CURRENT} names a missing generation {name!r}")
    return root / name


def generations(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and _GEN.match(p.name))


def new_generation_dir(root: Path) -> tuple[Path, Path]:
    """A scratch folder to build in, and the final name it will be renamed to."""
    root.mkdir(parents=True, exist_ok=True)
    existing = [int(_GEN.match(p.name).group(1)) for p in generations(root)]  # type: ignore[union-attr]
    final = root / f"gen-{(max(existing) + 1 if existing else 1):06d}"
    scratch = Path(tempfile.mkdtemp(dir=root, prefix=".building-"))
    return scratch, final


def publish(root: Path, scratch: Path, final: Path, keep: int = 2) -> Path:
    """Rename the finished scratch folder into place and point ``CURRENT`` at it."""
    for f in scratch.rglob("*"):
        if f.is_file():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
    os.rename(scratch, final)
    fsync_dir(root)
    write_atomic(root / CURRENT, final.name.encode())
    _collect(root, final, keep)
    return final


def _collect(root: Path, current: Path, keep: int) -> None:
    """Remove old generations (keeping ``keep``) and scratch folders left by crashed writers."""
    for stale in root.glob(".building-*"):
        shutil.rmtree(stale, ignore_errors=True)
    gens = [g for g in generations(root) if g != current]
    for old in gens[: max(0, len(gens) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)


def link_tree(src: Path, dst: Path) -> None:
    """Copy a folder by hard links where possible (tantivy segment files are immutable)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        target = dst / f.name
        if f.is_dir():
            link_tree(f, target)
        elif f.name.endswith(".lock"):
            continue
        elif f.suffix == ".json":  # small metadata files: copy, so no writer can touch the old one
            shutil.copy2(f, target)
        else:
            try:
                os.link(f, target)
            except OSError:
                shutil.copy2(f, target)
