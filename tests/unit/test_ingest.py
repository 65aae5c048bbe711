"""Catalogue ingest (shoplens.ingest.catalog/readers): formats, column mapping, and the skipped-row report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from shoplens.errors import CatalogError, ConfigError
from shoplens.ingest import load_catalog, parse_mapping
from shoplens.types import Product, SkippedRow

HEADER = ["id", "title", "description", "reviews", "image", "images", "price", "category", "brand", "color"]


def jpeg(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path, "JPEG")
    return path


def write_delimited(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


def write_jsonl(path: Path, lines: list[object | str]) -> Path:
    """Objects are dumped as JSON; strings are written verbatim (for malformed lines)."""
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def resolved(path: Path) -> str:
    return str(path.resolve())


def by_id(products: list[tuple[int, Product]]) -> dict[str, Product]:
    return {p.id: p for _, p in products}


def where(skipped: list[SkippedRow]) -> list[tuple[int, str]]:
    return [(s.row, s.field) for s in skipped]


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """A catalogue folder with three small JPEGs under img/."""
    folder = tmp_path / "cat"
    for name, colour in (("a", (255, 0, 0)), ("b", (0, 255, 0)), ("c", (0, 0, 255))):
        jpeg(folder / "img" / f"{name}.jpg", colour)
    return folder


CANONICAL_ROWS = [
    HEADER,
    ["p1", "Red dress", "A long red dress", "Lovely", "img/a.jpg", "img/b.jpg|img/c.jpg", "19.90", "Dresses",
     "Acme", "red"],
    # the main image repeated in images is kept once; price with a currency sign and thousands separator
    ["p2", "Blue shoe", "", "", "img/b.jpg", "img/b.jpg | img/a.jpg", "$1,299.00", "Shoes", "", ""],
    ["p3", "Plain text", "", "", "", "", "", "", "", "blue"],
]


def check_canonical(products: list[tuple[int, Product]], folder: Path) -> None:
    assert [row for row, _ in products] == [1, 2, 3]
    p = by_id(products)
    img = {n: resolved(folder / "img" / f"{n}.jpg") for n in "abc"}
    assert p["p1"] == Product(
        id="p1",
        title="Red dress",
        description="A long red dress",
        reviews="Lovely",
        images=(img["a"], img["b"], img["c"]),
        price=19.9,
        category="Dresses",
        brand="Acme",
        attributes={"color": "red"},
    )
    assert p["p2"].images == (img["b"], img["a"])
    assert p["p2"].price == 1299.0
    assert p["p2"].attributes == {}  # blank extra column: no attribute
    assert p["p3"].images == () and p["p3"].price is None and p["p3"].attributes == {"color": "blue"}


@pytest.mark.parametrize(("suffix", "delimiter"), [("csv", ","), ("tsv", "\t")])
def test_delimited_catalogue_with_canonical_columns(photos: Path, suffix: str, delimiter: str) -> None:
    path = write_delimited(photos / f"catalog.{suffix}", CANONICAL_ROWS, delimiter)
    products, skipped, rows = load_catalog(path)
    assert skipped == [] and rows == 3
    check_canonical(products, photos)


def test_csv_with_bom_and_multiline_quoted_field(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text('\ufeffid,title,description\n1,One,"line one\nline two"\n2,Two,\n', encoding="utf-8")
    products, skipped, rows = load_catalog(path)
    assert skipped == [] and rows == 2
    assert by_id(products)["1"].description == "line one\nline two"
    assert [row for row, _ in products] == [1, 2]  # rows are records, not physical lines


def test_jsonl_catalogue(photos: Path) -> None:
    path = write_jsonl(
        photos / "catalog.jsonl",
        [
            {"id": "p1", "title": "Red dress", "description": "A long red dress",
             "reviews": ["Lovely", "", "Nice"], "image": "img/a.jpg", "images": ["img/b.jpg", "img/c.jpg"],
             "price": 19.9, "category": "Dresses", "brand": "Acme", "color": "red", "year": 2012,
             "sizes": ["S", "M"], "rating": 4.5, "pack": 3.0, "sale": False, "note": None},
            {"id": 42, "title": "Numeric id", "price": 5},
            {"id": 7.0, "title": "Integral float id"},
        ],
    )
    products, skipped, rows = load_catalog(path)
    assert skipped == [] and rows == 3
    p = by_id(products)
    assert set(p) == {"p1", "42", "7"}
    assert p["p1"].reviews == "Lovely\nNice"
    assert p["p1"].images == tuple(resolved(photos / "img" / f"{n}.jpg") for n in "abc")
    # extra keys become attributes: ints and bools kept, integral floats made ints, lists joined, None dropped
    assert p["p1"].attributes == {"color": "red", "year": 2012, "sizes": "S|M", "rating": 4.5, "pack": 3,
                                  "sale": False}
    assert p["42"].price == 5.0 and isinstance(p["42"].price, float)


def test_ndjson_suffix_is_jsonl(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.ndjson", [{"id": "1", "title": "t"}])
    products, skipped, _ = load_catalog(path)
    assert skipped == [] and by_id(products)["1"].title == "t"


def test_parquet_catalogue(photos: Path) -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "title": ["Red dress", "Blue shoe", None],
            "image": ["img/a.jpg", None, "img/c.jpg"],  # 3 has no text but a photo: kept
            "images": pa.array([["img/b.jpg"], [], None], pa.list_(pa.string())),
            "price": pa.array([19.9, None, 3.0], pa.float64()),
            "brand": ["Acme", "Zed", None],
            "year": pa.array([2012, None, 2020], pa.int64()),
        }
    )
    path = photos / "catalog.parquet"
    pq.write_table(table, path)
    products, skipped, rows = load_catalog(path)
    assert skipped == [] and rows == 3
    p = by_id(products)
    assert p["1"] == Product(
        id="1", title="Red dress", images=(resolved(photos / "img/a.jpg"), resolved(photos / "img/b.jpg")),
        price=19.9, brand="Acme", attributes={"year": 2012},
    )
    assert p["2"].images == () and p["2"].price is None and p["2"].attributes == {}
    assert p["3"].title == "" and p["3"].images == (resolved(photos / "img/c.jpg"),)


def test_parse_mapping() -> None:
    assert parse_mapping(["title=productDisplayName", " brand = brandName ", "id=a=b"]) == {
        "title": "productDisplayName",
        "brand": "brandName",
        "id": "a=b",  # split on the first '='
    }
    assert parse_mapping({"title": "name"}) == {"title": "name"}
    assert parse_mapping(None) == {}
    assert parse_mapping([]) == {}


@pytest.mark.parametrize(("item", "needle"), [("title", "canonical=source"), ("=name", "empty side"),
                                              ("title=", "empty side")])
def test_parse_mapping_rejects_bad_items(item: str, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_mapping([item])
    assert needle in str(exc.value)


def test_column_mapping_renames_and_keeps_other_columns_as_attributes(tmp_path: Path) -> None:
    path = write_delimited(
        tmp_path / "styles.csv",
        [
            ["productId", "productDisplayName", "baseColour", "masterCategory", "year"],
            ["15970", "Navy Blue Shirt", "Navy Blue", "Apparel", "2011"],
        ],
    )
    mapping = parse_mapping(["id=productId", "title=productDisplayName", "category=masterCategory"])
    products, skipped, _ = load_catalog(path, mapping)
    assert skipped == []
    assert by_id(products)["15970"] == Product(
        id="15970", title="Navy Blue Shirt", category="Apparel",
        attributes={"baseColour": "Navy Blue", "year": "2011"},
    )


def test_without_mapping_a_file_lacking_an_id_column_skips_every_row(tmp_path: Path) -> None:
    path = write_delimited(tmp_path / "c.csv", [["productId", "name"], ["1", "a"], ["2", "b"]])
    products, skipped, rows = load_catalog(path)
    assert products == [] and rows == 2
    assert where(skipped) == [(1, "id"), (2, "id")]


# --- bad rows ----------------------------------------------------------------------------------


def test_csv_bad_rows_are_reported_and_good_rows_load(tmp_path: Path) -> None:
    folder = tmp_path / "cat"
    jpeg(folder / "img" / "a.jpg")
    jpeg(tmp_path / "outside.jpg")  # exists, but outside the catalogue folder
    path = write_delimited(
        folder / "catalog.csv",
        [
            ["id", "title", "price", "image"],
            ["1", "Good one", "10", ""],  # row 1
            ["", "No id", "5", ""],  # row 2: missing id
            ["1", "Dup", "5", ""],  # row 3: duplicate of row 1
            ["3", "Bad price", "abc", ""],  # row 4
            ["4", "Negative price", "-1", ""],  # row 5
            ["5", "Too", "many", "fields", "x"],  # row 6: 5 fields, the header has 4
            ["6", "Escapes", "1", "../outside.jpg"],  # row 7: leaves the folder
            ["7", "Missing photo", "1", "img/nope.jpg"],  # row 8
            ["8", "", "", ""],  # row 9: neither text nor photo
            ["9", "Good two", "$1,299.00", "img/a.jpg"],  # row 10
            ["10", "", "", "img/a.jpg"],  # row 11: photo only is fine
            ["11", "File URL", "", "file:///etc/passwd"],  # row 12
            ["12", "Too few"],  # row 13
        ],
    )
    products, skipped, rows = load_catalog(path)
    assert rows == 13
    assert [(row, p.id) for row, p in products] == [(1, "1"), (10, "9"), (11, "10")]
    assert by_id(products)["9"].price == 1299.0
    assert where(skipped) == [
        (2, "id"), (3, "id"), (4, "price"), (5, "price"), (6, "*"), (7, "image"), (8, "image"), (9, "title"),
        (12, "image"), (13, "*"),
    ]
    reasons = {s.row: s for s in skipped}
    assert reasons[2].reason == "missing id" and not reasons[2].id
    assert reasons[3].id == "1" and "first seen in row 1" in reasons[3].reason
    assert reasons[4].id == "3" and "'abc'" in reasons[4].reason
    assert "≥ 0" in reasons[5].reason and "'-1'" in reasons[5].reason
    assert reasons[6].reason == "has 5 fields, the header has 4"
    assert "leaves the catalogue folder" in reasons[7].reason
    assert "not found" in reasons[8].reason
    assert "neither text" in reasons[9].reason
    assert "only http(s) URLs" in reasons[12].reason
    assert str(reasons[4]) == "row 4 (id 3): price: expected a number, got 'abc'"


def test_jsonl_bad_rows_are_reported_with_line_numbers(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "catalog.jsonl",
        [
            {"id": "1", "title": "good"},  # row 1
            {"id": {"nested": 1}, "title": "dict id"},  # row 2
            '{"id": "3", "title": "unterminated',  # row 3: malformed JSON
            "",  # row 4: blank, not a row but still a line
            '["an", "array"]',  # row 5
            {"id": "6", "title": "bad price", "price": "abc"},  # row 6
            {"id": "7", "title": "negative", "price": -1},  # row 7
            {"id": True, "title": "bool id"},  # row 8
            {"id": 1.5, "title": "fractional id"},  # row 9
            {"title": "no id"},  # row 10
            {"id": "11", "title": ["not", "text"]},  # row 11
            {"id": "12", "title": "ok", "image": 5},  # row 12
            {"id": "13", "title": "ok", "images": ["../../etc/x.jpg"]},  # row 13
            {"id": "14", "title": "good too", "extra": {"a": 1}},  # row 14: dict attribute unsupported
            {"id": "15", "title": "last good"},  # row 15
        ],
    )
    products, skipped, rows = load_catalog(path)
    assert [(row, p.id) for row, p in products] == [(1, "1"), (15, "15")]
    assert rows == 14  # the blank line is not counted
    assert where(skipped) == [
        (2, "id"), (3, "*"), (5, "*"), (6, "price"), (7, "price"), (8, "id"), (9, "id"), (10, "id"),
        (11, "title"), (12, "image"), (13, "images"), (14, "extra"),
    ]
    reasons = {s.row: s.reason for s in skipped}
    assert reasons[2] == "expected a string or number, got dict"
    assert reasons[3].startswith("malformed JSON")
    assert reasons[5] == "expected a JSON object, got list"
    assert reasons[8] == "expected a string or number, got bool"
    assert "leaves the catalogue folder" in reasons[13]


def test_large_csv_with_scattered_bad_rows(tmp_path: Path) -> None:
    n = 10_000
    rows: list[list[str]] = [["id", "title", "price", "brand"]]
    bad: dict[int, str] = {}
    for r in range(1, n + 1):
        if r % 100 == 37:  # 100 bad rows, four kinds in turn
            kind = (r // 100) % 4
            if kind == 0:
                rows.append([f"id{r}", f"title {r}", "abc", "b"])
                bad[r] = "price"
            elif kind == 1:
                rows.append(["", f"title {r}", "1", "b"])
                bad[r] = "id"
            elif kind == 2:
                rows.append([f"id{r}", f"title {r}", "1"])
                bad[r] = "*"
            else:
                rows.append(["id1", f"title {r}", "1", "b"])  # duplicate of row 1
                bad[r] = "id"
        else:
            rows.append([f"id{r}", f"title {r}", str(r % 50), "brand"])
    path = write_delimited(tmp_path / "big.csv", rows)
    products, skipped, read = load_catalog(path)
    assert read == n
    assert len(skipped) == 100 and len(products) == n - 100
    assert [(s.row, s.field) for s in skipped] == sorted(bad.items())
    assert [row for row, _ in products] == [r for r in range(1, n + 1) if r not in bad]
    last_row, last = products[-1]
    assert last_row == n and last.id == f"id{n}" and last.title == f"title {n}"


def test_check_paths_false_accepts_missing_photos(tmp_path: Path) -> None:
    path = write_delimited(tmp_path / "c.csv", [["id", "image"], ["1", "img/later.jpg"]])
    products, skipped, _ = load_catalog(path, check_paths=False)
    assert skipped == []
    assert by_id(products)["1"].images == (resolved(tmp_path / "img" / "later.jpg"),)
    _, skipped, _ = load_catalog(path)
    assert where(skipped) == [(1, "image")]


def test_http_urls_are_kept_as_is_without_fetching(tmp_path: Path) -> None:
    rows = [["id", "images"], ["1", "https://example.com/a.jpg|HTTP://x/b.png"]]
    path = write_delimited(tmp_path / "c.csv", rows)
    products, skipped, _ = load_catalog(path)
    assert skipped == []
    assert by_id(products)["1"].images == ("https://example.com/a.jpg", "HTTP://x/b.png")


# --- whole-file errors -------------------------------------------------------------------------


def test_unknown_format_is_a_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(CatalogError, match="unknown catalogue format 'xlsx'"):
        load_catalog(path)


def test_missing_file_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="catalogue file not found"):
        load_catalog(tmp_path / "nope.csv")


def test_garbage_parquet_is_a_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(CatalogError, match="not a readable Parquet file"):
        load_catalog(path)


def test_empty_and_header_only_csv(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    assert load_catalog(empty) == ([], [], 0)
    header_only = tmp_path / "header.csv"
    header_only.write_text("id,title\n\n\n", encoding="utf-8")
    assert load_catalog(header_only) == ([], [], 0)


# --- regressions: a bad byte or a stray quote costs only its own row ------------------------------


def test_csv_non_utf8_row_skips_only_that_row(tmp_path: Path) -> None:
    lines = [b"id,title"] + [b"%d,title number %d" % (i, i) for i in range(1, 2001)]
    lines[1500] = b"1500,bad \xff byte"  # data row 1500
    path = tmp_path / "c.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    products, skipped, _ = load_catalog(path)
    assert where(skipped) == [(1500, "*")]
    assert len(products) == 1999


def test_jsonl_non_utf8_line_skips_only_that_line(tmp_path: Path) -> None:
    lines = [b'{"id": %d, "title": "t%d"}' % (i, i) for i in range(1, 2001)]
    lines[1499] = b'{"id": 1500, "title": "bad \xff"}'  # line 1500
    path = tmp_path / "c.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    products, skipped, _ = load_catalog(path)
    assert where(skipped) == [(1500, "*")]
    assert len(products) == 1999


def test_tsv_stray_quote_does_not_swallow_following_rows(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv"
    text = 'id\ttitle\tbrand\n1\t"Quoted start\tacme\n2\tplain\tacme\n3\tthird\tacme\n'
    path.write_text(text, encoding="utf-8")
    products, _, rows = load_catalog(path)
    assert rows == 3
    assert {"2", "3"} <= set(by_id(products))
