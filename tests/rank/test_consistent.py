"""Understood values that cannot both be meant: one reading of a query word contradicts another's
field that the catalogue ties to it (every "Tshirts" product is "Topwear")."""

from __future__ import annotations

import numpy as np

from shoplens.rank.understand import QueryUnderstanding, ValuePairs

ROWS = [
    *[
        [("category", "Apparel"), ("subcategory", "Topwear"), ("article_type", "Tshirts"), ("colour", c), ("gender", g)]
        for c in ("Red", "Blue", "Grey", "White", "Gold")
        for g in ("Men", "Women")
    ],
    [("category", "Apparel"), ("subcategory", "Topwear"), ("article_type", "Shirts"), ("colour", "Red"), ("gender", "Men")],
    [("category", "Sporting Goods"), ("subcategory", "Sports Equipment"), ("article_type", "Balls"), ("colour", "White"), ("gender", "Unisex")],
    [("category", "Accessories"), ("subcategory", "Socks"), ("article_type", "Socks"), ("colour", "Grey"), ("gender", "Men")],
    [("category", "Footwear"), ("subcategory", "Shoes"), ("article_type", "Heels"), ("colour", "Gold"), ("gender", "Women")],
]


def encode(texts: list[str]) -> np.ndarray:
    return np.ones((len(texts), 4), np.float32) / 2.0


def test_value_pairs_from_columns_and_from_items_agree() -> None:
    from_items = ValuePairs.of_items(ROWS)

    def column(field: str) -> tuple[np.ndarray, list[str]]:
        labels = sorted({dict(r)[field] for r in ROWS})
        return np.array([labels.index(dict(r)[field]) for r in ROWS]), labels

    from_columns = ValuePairs(column)
    for pairs in (from_items, from_columns):
        assert pairs.together(("article_type", "Tshirts"), ("colour", "Blue"))
        assert not pairs.together(("article_type", "Shirts"), ("colour", "Blue"))
        assert not pairs.together(("article_type", "Tshirts"), ("subcategory", "Shoes"))
        assert not pairs.together(("article_type", "Nope"), ("colour", "Red"))
        # Each product type goes with one subcategory; a colour goes with several types.
        assert pairs.determines("article_type", "subcategory")
        assert not pairs.determines("colour", "article_type")
        assert not pairs.determines("article_type", "gender")  # Tshirts: Men and Women
        assert pairs.conflict(("article_type", "Tshirts"), ("subcategory", "Sports Equipment"))
        # No blue shirt in the shop, but a colour does not fix the type: both still count.
        assert not pairs.conflict(("article_type", "Shirts"), ("colour", "Blue"))
        assert pairs.conflict(("colour", "Red"), ("colour", "Blue"))


def test_consistent_keeps_readings_that_fit_together() -> None:
    qu = QueryUnderstanding([], ROWS, encode)
    # The weaker reading of another word that contradicts the product type goes.
    got = qu.consistent({"article_type": ("Tshirts", 0.9), "subcategory": ("Sports Equipment", 0.75), "colour": ("Red", 1.0)})
    assert got == {"article_type": ("Tshirts", 0.9), "colour": ("Red", 1.0)}
    # A value in the catalogue's own words stays, however sure the readings against it.
    got = qu.consistent({"article_type": ("Shirts", 1.0), "subcategory": ("Shoes", 0.85), "category": ("Footwear", 0.75)})
    assert got == {"article_type": ("Shirts", 1.0)}
    # Readings that agree add up: subcategory and type Socks (0.8 + 0.75) beat Footwear (0.85)...
    got = qu.consistent({"category": ("Footwear", 0.85), "subcategory": ("Socks", 0.8), "article_type": ("Socks", 0.75)})
    assert got == {"subcategory": ("Socks", 0.8), "article_type": ("Socks", 0.75)}
    # ...and of two lone readings the surer stays.
    got = qu.consistent({"subcategory": ("Shoes", 0.85), "article_type": ("Socks", 0.75), "colour": ("Grey", 1.0)})
    assert got == {"subcategory": ("Shoes", 0.85), "colour": ("Grey", 1.0)}
    # Of two values in the catalogue's words that clash, the product type (it fixes the subcategory).
    got = qu.consistent({"subcategory": ("Socks", 1.0), "article_type": ("Heels", 1.0)})
    assert got == {"article_type": ("Heels", 1.0)}
    # A combination the shop lacks (blue shirts) is not a contradiction: both still count.
    both = {"article_type": ("Shirts", 0.8), "colour": ("Blue", 1.0), "gender": ("Women", 0.9)}
    assert qu.consistent(both) == both


class GolfTeeEncoder:
    """Every text its own direction, except "tee": 0.75 of the way to "Sports Equipment" (a golf tee)."""

    def __init__(self) -> None:
        self.dims: dict[str, int] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 64), np.float32)
        for i, t in enumerate(texts):
            if t == "tee":
                out[i, self.dims.setdefault("Sports Equipment", len(self.dims))] = 0.75
                out[i, self.dims.setdefault(t, len(self.dims))] = np.sqrt(1 - 0.75**2)
            else:
                out[i, self.dims.setdefault(t, len(self.dims))] = 1.0
        return out


def test_understanding_drops_a_contradicting_reading() -> None:
    qu = QueryUnderstanding([], ROWS, GolfTeeEncoder())
    u = qu.understand("red tee shirt")
    # WordNet reads "tee shirt" as a T-shirt (0.9); "tee" alone is near "Sports Equipment" (0.75),
    # which no T-shirt of the shop is: that reading goes.
    assert u.attributes["article_type"] == ("Tshirts", 0.9)
    assert u.attributes["colour"] == ("Red", 1.0)
    assert "subcategory" not in u.attributes
    qu.consistent = lambda found: found  # type: ignore[method-assign]
    assert qu.understand("red tee shirt").attributes["subcategory"] == ("Sports Equipment", 0.75)


def test_lexical_reading_takes_the_head_of_an_english_compound() -> None:
    rows = [[("article_type", t), ("colour", c)] for t in ("Dresses", "Shirts", "Jackets", "Jeans") for c in ("Blue", "Navy Blue")]
    qu = QueryUnderstanding([], rows, encode)
    assert qu.understand("pink dress shirt for a woman").attributes["article_type"] == ("Shirts", 1.0)
    assert qu.understand("shirt dress").attributes["article_type"] == ("Dresses", 1.0)
    assert qu.understand("jeans jacket in navy blue").attributes["article_type"] == ("Jackets", 1.0)
    # Within one field the value ending last wins, then the longer: "Navy Blue" over "Blue".
    assert qu.understand("navy blue jeans").attributes["colour"] == ("Navy Blue", 1.0)
