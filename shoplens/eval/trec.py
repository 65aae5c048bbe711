"""Read and write TREC run files (``qid Q0 docid rank score tag``) and graded qrels (``qid 0 docid grade``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import CatalogError


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise CatalogError(f"{path}: line {n}: expected 'qid 0 docid grade', got {line!r}")
        try:
            grade = int(parts[3])
        except ValueError:
            raise CatalogError(f"{path}: line {n}: grade {parts[3]!r} is not an integer") from None
        out.setdefault(parts[0], {})[parts[2]] = grade
    return out


def read_run(path: str | Path) -> dict[str, list[str]]:
    """Ranked doc ids per query, ordered by score (descending), ties by the file's rank column."""
    rows: dict[str, list[tuple[float, int, str]]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 6:
            raise CatalogError(f"{path}: line {n}: expected 'qid Q0 docid rank score tag', got {line!r}")
        try:
            rank, score = int(parts[3]), float(parts[4])
        except ValueError:
            raise CatalogError(f"{path}: line {n}: bad rank or score in {line!r}") from None
        rows.setdefault(parts[0], []).append((-score, rank, parts[2]))
    return {qid: [d for _, _, d in sorted(items)] for qid, items in rows.items()}


def format_run(results: Mapping[str, Iterable[tuple[str, float]]], tag: str = "shoplens") -> str:
    lines = []
    for qid, hits in results.items():
        for rank, (docid, score) in enumerate(hits, start=1):
            lines.append(f"{qid} Q0 {docid} {rank} {score:.6f} {tag}")
    return "\n".join(lines) + ("\n" if lines else "")
