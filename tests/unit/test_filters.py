"""Attribute filters and facets (shoplens.retrieve.filters): parsing, masks over products, facet counts."""

from __future__ import annotations

import numpy as np
import pytest

from shoplens.errors import QueryError
from shoplens.retrieve.filters import Filter, facet_counts, facet_items, filter_mask, parse_filter
from shoplens.types import Product

# --- parse_filter ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "op", "values"),
    [
        ("gender=Women", "gender", "=", ("Women",)),
        ("  gender = Women  ", "gender", "=", ("Women",)),
        ("gender!=Men", "gender", "!=", ("Men",)),
        ("price<50", "price", "<", ("50",)),
        ("price<=50", "price", "<=", ("50",)),
        ("price>9.5", "price", ">", ("9.5",)),
        ("price >= 10", "price", ">=", ("10",)),
        ("brand='Acme Co'", "brand", "=", ("Acme Co",)),
        ('brand="Acme"', "brand", "=", ("Acme",)),
        ("title=Thin in style", "title", "=", ("Thin in style",)),  # 'in' inside a value is just text
        ("category in [Shoes, Bags]", "category", "in", ("Shoes", "Bags")),
        ("category IN [Shoes]", "category", "in", ("Shoes",)),
        ("category in ['Shoes', \"Bags\", ]", "category", "in", ("Shoes", "Bags")),
        ("size not in [S, M]", "size", "not in", ("S", "M")),
        ("size NOT  IN [XL]", "size", "not in", ("XL",)),
        ("meta.colour-name=red", "meta.colour-name", "=", ("red",)),
    ],
)
def test_parse_filter(text: str, field: str, op: str, values: tuple[str, ...]) -> None:
    assert parse_filter(text) == Filter(field, op, values)


def test_filter_str_round_trips_through_parse() -> None:
    for text in ("price<=50", "gender!=Men", "category in [Shoes, Bags]", "size not in [S]"):
        f = parse_filter(text)
        assert str(f) == text
        assert parse_filter(str(f)) == f


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("gender", "cannot parse filter 'gender'"),
        ("=Women", "cannot parse filter"),
        ("price ~ 5", "cannot parse filter"),
        ("", "cannot parse filter"),
        ("gender=", "has no value"),
        ("gender=''", "has no value"),
        ("category in []", "has no value"),
        ("category in [ , ]", "has no value"),
        ("category in Shoes, Bags", "go in brackets"),
        ("category not in Shoes", "go in brackets"),
        ("x=" + "a" * 1000, "at most 1000 characters"),
    ],
)
def test_parse_filter_rejects_bad_filters_clearly(text: str, needle: str) -> None:
    with pytest.raises(QueryError) as exc:
        parse_filter(text)
    assert needle in str(exc.value)


def test_parse_filter_rejects_non_strings() -> None:
    with pytest.raises(QueryError, match="must be a string"):
        parse_filter(42)  # type: ignore[arg-type]


def test_numeric_filter_with_non_numeric_bound_raises_query_error() -> None:
    f = parse_filter("price<cheap")
    with pytest.raises(QueryError, match="'cheap' is not a number"):
        f.predicate()
    with pytest.raises(QueryError, match="price<cheap"):
        filter_mask([Product("a", title="t", price=1.0)], [f])


# --- filter_mask -------------------------------------------------------------------------------

PRODUCTS = [
    Product("a", title="t", price=10.0, category="Shoes",
            attributes={"year": "2012", "gender": "Women", "in_stock": True}),
    Product("b", title="t", price=55.5, category="bags", attributes={"year": 2015, "gender": "men"}),
    Product("c", title="t"),  # no price, no category, no attributes at all
    Product("d", title="t", price=50.0, category=" SHOES ", attributes={"year": "n/a"}),
]


def mask_of(products: list[Product], *filters: str) -> list[bool]:
    m = filter_mask(products, [parse_filter(f) for f in filters])
    assert m is not None and m.dtype == np.bool_ and m.shape == (len(products),)
    return m.tolist()


def mask(*filters: str) -> list[bool]:
    return mask_of(PRODUCTS, *filters)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # numeric comparisons; c has no price and never passes one
        ("price<50", [True, False, False, False]),
        ("price<=50", [True, False, False, True]),
        ("price>50", [False, True, False, False]),
        ("price>=10", [True, True, False, True]),
        # numbers stored as strings ("2012") compare as numbers; "n/a" and missing never pass
        ("year>=2013", [False, True, False, False]),
        ("year<2013", [True, False, False, False]),
        ("year<=2012.0", [True, False, False, False]),
        # equality is case-insensitive and ignores surrounding spaces in the stored value
        ("category=shoes", [True, False, False, True]),
        ("category=SHOES", [True, False, False, True]),
        ("gender=WOMEN", [True, False, False, False]),
        ("year=2015", [False, True, False, False]),  # int attribute vs text value
        ("price=50", [False, False, False, True]),  # 50.0 matches "50"
        ("in_stock=true", [True, False, False, False]),
        # != and not in keep products that lack the field (c has no category)
        ("category!=shoes", [False, True, True, False]),
        ("category in [SHOES, Bags]", [True, True, False, True]),
        ("category not in [shoes]", [False, True, True, False]),
        ("gender in [men, women]", [True, True, False, False]),
        ("gender not in [men, women]", [False, False, True, True]),
        ("colour=red", [False, False, False, False]),  # a field nobody has
    ],
)
def test_filter_mask(text: str, expected: list[bool]) -> None:
    assert mask(text) == expected


def test_filter_mask_numeric_comparison_ignores_booleans() -> None:
    # True is not the number 1 for a filter
    assert mask("in_stock>=1") == [False, False, False, False]


def test_filter_mask_combines_filters_with_and() -> None:
    assert mask("category=shoes", "price<20") == [True, False, False, False]
    assert mask("category=shoes", "price>=20") == [False, False, False, True]
    assert mask("category=shoes", "gender=men") == [False, False, False, False]


def test_filter_mask_no_filters_is_none_and_empty_catalogue() -> None:
    assert filter_mask(PRODUCTS, []) is None
    m = filter_mask([], [parse_filter("price<5")])
    assert m is not None and m.shape == (0,)


def test_filter_equality_on_numbers_compares_values() -> None:
    # regression: equality used to compare string forms, so price=19.90 missed a stored 19.9
    products = [Product("a", title="t", price=19.9), Product("b", title="t", price=50.0)]
    assert mask_of(products, "price=19.90") == [True, False]
    assert mask_of(products, "price=50.0") == [False, True]
    assert mask_of(products, "price in [50.00, 7]") == [False, True]
    assert mask_of(products, "price!=19.9") == [False, True]


# --- facets ------------------------------------------------------------------------------------


def test_facet_items_keeps_short_categorical_values() -> None:
    p = Product(
        "a",
        title="Red shoe",
        category="Shoes",
        brand="",  # blank: not a facet
        attributes={
            "gender": "Women",
            "rating": 4.5,  # floats are measurements, not facets
            "year": 2012,
            "notes": "x" * 61,  # longer than 60 characters
            "short": "y" * 60,
            "in_stock": True,
            "image": "a.jpg",  # never a facet
        },
    )
    assert facet_items(p) == [
        ("category", "Shoes"),
        ("gender", "Women"),
        ("year", "2012"),
        ("short", "y" * 60),
        ("in_stock", "True"),
    ]
    assert facet_items(Product("b", title="t")) == []


def test_facet_counts_counts_and_orders_by_frequency() -> None:
    products = [
        Product("1", title="t", category="Shoes", brand="Acme", attributes={"gender": "Women"}),
        Product("2", title="t", category="Bags", brand="Acme"),
        Product("3", title="t", category="Shoes", attributes={"gender": "Men"}),
        Product("4", title="t", category="Shoes", brand="Zed"),
    ]
    counts = facet_counts(facet_items(p) for p in products)
    assert counts == {
        "category": {"Shoes": 3, "Bags": 1},
        "brand": {"Acme": 2, "Zed": 1},
        "gender": {"Women": 1, "Men": 1},
    }
    assert list(counts["category"]) == ["Shoes", "Bags"]  # most common first
    assert facet_counts([]) == {}


def test_facet_counts_limits() -> None:
    items = [[("colour", c)] for c in ["red", "red", "red", "blue", "blue", "green"]]
    items += [[("sku", f"s{i}")] for i in range(5)]
    # max_values keeps the 2 most common values; max_distinct drops sku (5 distinct values > 4)
    assert facet_counts(items, max_values=2, max_distinct=4) == {"colour": {"red": 3, "blue": 2}}
    assert facet_counts(items, max_values=1, max_distinct=5) == {"colour": {"red": 3}, "sku": {"s0": 1}}
