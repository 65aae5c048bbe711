"""Readers for CSV, JSONL and Parquet catalogues, yielding (row number, record) pairs."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from ..errors import CatalogError

Record = dict[str, Any]
# A record that could not be parsed at all: (row number, None, reason).
RowOrError = tuple[int, Record | None, str]

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "ndjson":
        return "jsonl"
    if suffix in ("pq", "parq"):
        return "parquet"
    if suffix in FORMATS:
        return suffix
    raise CatalogError(f"{path}: unknown catalogue format {suffix!r}; use one of .csv, .tsv, .jsonl, .parquet")


def read_records(path: str | Path) -> Iterator[RowOrError]:
    """Yield every data row of a catalogue file, numbered from 1 (the CSV header is not a row)."""
    p = Path(path)
    if not p.is_file():
        raise CatalogError(f"catalogue file not found: {p}")
    fmt = detect_format(p)
    if fmt in ("csv", "tsv"):
        yield from _read_csv(p, "\t" if fmt == "tsv" else ",")
    elif fmt in ("jsonl", "json"):
        yield from _read_jsonl(p)
    else:
        yield from _read_parquet(p)


def _read_csv(path: Path, delimiter: str) -> Iterator[RowOrError]:
    try:
        # surrogateescape: a stray non-UTF-8 byte marks only its own row as bad (see _bad_utf8).
        fh = path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as e:
        raise CatalogError(f"cannot open {path}: {e}") from e
    with fh:
        # TSV has no quoting convention: a value starting with '"' must not swallow later rows.
        quoting: Literal[0, 1, 2, 3] = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        reader = csv.reader(fh, delimiter=delimiter, quoting=quoting)
        try:
            header = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as e:
            raise CatalogError(f"{path}: unreadable header: {e}") from e
        header = [h.strip() for h in header]
        row = 0
        while True:
            row += 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as e:
                yield row, None, f"malformed CSV: {e}"
                continue
            if not values or all(not v.strip() for v in values):
                continue
            if any(_bad_utf8(v) for v in values):
                yield row, None, "not valid UTF-8 text"
                continue
            if len(values) != len(header):
                yield row, None, f"has {len(values)} fields, the header has {len(header)}"
                continue
            yield row, dict(zip(header, values, strict=True)), ""


def _read_jsonl(path: Path) -> Iterator[RowOrError]:
    try:
        fh = path.open(encoding="utf-8-sig", errors="surrogateescape")
    except OSError as e:
        raise CatalogError(f"cannot open {path}: {e}") from e
    with fh:
        row = 0
        for line in fh:
            row += 1
            if not line.strip():
                continue
            if _bad_utf8(line):
                yield row, None, "not valid UTF-8 text"
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield row, None, f"malformed JSON: {e.msg} at column {e.colno}"
                continue
            if not isinstance(obj, dict):
                yield row, None, f"expected a JSON object, got {type(obj).__name__}"
                continue
            yield row, obj, ""


def _bad_utf8(text: str) -> bool:
    """True if decoding with surrogateescape had to escape a byte (the input was not UTF-8)."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _read_parquet(path: Path) -> Iterator[RowOrError]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        raise CatalogError(f"{path}: not a readable Parquet file: {e}") from e
    row = 0
    for batch in pf.iter_batches(batch_size=4096):
        for rec in batch.to_pylist():
            row += 1
            yield row, rec, ""
