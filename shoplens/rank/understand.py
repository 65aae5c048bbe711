"""Query understanding: attribute values and price phrases recognised through the catalogue's own
vocabulary, lexically and in the multilingual embedding space ("红色" meets "Red")."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..index.lexical import segment
from ..types import Product
from .glossary import Glossary, has_cjk
from .wordnet import WordNet, base_forms, load_wordnet

_PRICE_MAX = re.compile(
    r"(?:under|below|less than|cheaper than|up to|max(?:imum)?|<)\s*[$€£¥]?\s*(\d+(?:\.\d+)?)|"
    r"(\d+(?:\.\d+)?)\s*(?:元|块|美元|镑|欧元)?\s*(?:以下|以内|之内)|(?:低于|不超过|少于)\s*(\d+(?:\.\d+)?)",
    re.IGNORECASE,
)
_PRICE_MIN = re.compile(
    r"(?:over|above|more than|at least|min(?:imum)?|>)\s*[$€£¥]?\s*(\d+(?:\.\d+)?)|"
    r"(\d+(?:\.\d+)?)\s*(?:元|块|美元|镑|欧元)?\s*以上|(?:高于|超过|不低于)\s*(\d+(?:\.\d+)?)",
    re.IGNORECASE,
)
# Fields whose values describe the product itself (ids, years and free text are not vocabulary).
MAX_VALUES_PER_FIELD = 300
GLOSSES_USED = 2  # dictionary meanings per Chinese word taken as query phrases
GLOSS_CONFIDENCE = 0.9  # a value named by a dictionary meaning (less sure than the query's own words)
# A part of a Chinese compound the dictionary lacks is weaker evidence than a whole word: its
# embedding match must be clearer ("女" → "Women" at 0.82 counts; "鞋", any shoe, → "Formal Shoes" at 0.71 not).
PART_MIN_SIM = 0.75
# WordNet links from a query phrase to a value (rank/wordnet.py): the same synset, the value an
# is-a ancestor of the phrase ("wristwatch" → "Watches"), or a descendant ("underpants" → "Briefs").
WN_SYNONYM = 0.9
WN_STEP = 0.05  # less per is-a step
WN_BROADER = 0.05  # less again when the query is the broader word (one of its kinds is meant)
WN_SENSE = 0.05  # less per sense of the query word before the one linked, as much as an is-a step
# (first senses are the common ones)
WN_DEPTH = 2  # is-a steps followed either way
WN_MIN = 0.7  # weaker links are dropped (as embedding matches below 0.70 are)
WN_MAX_WORDS = 3  # longest query phrase looked up
WN_ELLIPSIS = 0.05  # less for a compound whose head the query left out ("bermudas": Bermuda shorts)
WN_FIELD_SHARE = 0.5  # a field's WordNet senses: lexicographer files at least this share of its top one
DETERMINES_SHARE = 0.95  # a field fixes another when this share of products has a value with one partner
DETERMINES_MIN = 10  # …over at least this many products (a tiny shop's fields fix nothing)
MAX_CONSISTENT_SEARCH = 12  # understood values searched for the best conflict-free set (2^n sets)


# English personal pronouns name the audience in shopping queries ("a watch for him", "a gift for
# her"): they are read as the nouns they stand for, which the usual lexical, WordNet and embedding
# matching then links to the catalogue's own audience values. A closed class of English grammar
# (like a stop-word list), not a table of any catalogue's words.
_PRONOUN_NOUNS = {"she": "woman", "her": "woman", "hers": "woman", "he": "man", "him": "man", "his": "man"}
# English prepositions and conjunctions that end a noun phrase ("bermuda for men", "tee in red"):
# the word before one is the phrase's head noun. A closed class of English grammar.
_CLOSING_WORDS = frozenset(["for", "in", "with", "of", "to", "from", "by", "on", "at", "under", "over", "and", "or", "without"])
_PRONOUN = re.compile(r"\b(?:" + "|".join(_PRONOUN_NOUNS) + r")\b", re.IGNORECASE)


def pronouns_as_nouns(text: str) -> str:
    """``text`` with English personal pronouns replaced by the person nouns they stand for."""
    return _PRONOUN.sub(lambda m: _PRONOUN_NOUNS[m.group(0).lower()], text)


@dataclass(frozen=True)
class _WordNetValues:
    """Per catalogue value, its WordNet senses in the field's dominant lexicographer files (so
    "Flats" means shoes, not apartments, when the field's other values are artifacts)."""

    wordnet: WordNet
    lexfiles: dict[str, set[int]]  # field → its lexicographer files
    exact: dict[int, list[tuple[str, str, int]]]  # value sense → (field, value, sense position)
    below: dict[int, list[tuple[str, str, int, int]]]  # a value sense's ancestor → (field, value, position, steps)
    vocabulary: dict[str, set[str]]  # field → the (stemmed) words of its values
    counts: dict[str, dict[str, int]]  # field → value → products having it
    heads: dict[str, list[str]]  # field → the words of its values as written (lower case)

    @classmethod
    def build(
        cls, wordnet: WordNet, entries: Sequence[tuple[str, str, tuple[str, ...]]], counts: dict[str, dict[str, int]]
    ) -> _WordNetValues:
        senses: dict[tuple[str, str], list[int]] = {}
        per_field: dict[str, dict[int, float]] = {}
        for field, value, _w in entries:
            ss = wordnet.synsets(value.split())
            if ss:
                senses[(field, value)] = ss
                files = {wordnet.lexfile[s] for s in ss}
                for lf in files:
                    per_field.setdefault(field, {})[lf] = per_field.setdefault(field, {}).get(lf, 0.0) + 1.0 / len(files)
        lexfiles = {f: {lf for lf, c in counts.items() if c >= WN_FIELD_SHARE * max(counts.values())} for f, counts in per_field.items()}
        exact: dict[int, list[tuple[str, str, int]]] = {}
        below: dict[int, list[tuple[str, str, int, int]]] = {}
        for (field, value), ss in senses.items():
            # Sense positions among the field's senses ("top" the garment is not its 8th meaning here).
            for pos, s in enumerate(x for x in ss if wordnet.lexfile[x] in lexfiles[field]):
                exact.setdefault(s, []).append((field, value, pos))
                for a, d in wordnet.ancestors(s, WN_DEPTH).items():
                    if d:
                        below.setdefault(a, []).append((field, value, pos, d))
        vocabulary: dict[str, set[str]] = {}
        heads: dict[str, list[str]] = {}
        for field, value, words in entries:
            vocabulary.setdefault(field, set()).update(words)
            heads.setdefault(field, [])
            heads[field] += [w for w in value.lower().split() if w.isalpha() and w not in heads[field]]
        return cls(wordnet, lexfiles, exact, below, vocabulary, counts, heads)

    def match(
        self, phrases: Sequence[Sequence[str]], used: set[str] | frozenset[str] = frozenset()
    ) -> dict[str, tuple[str, float, int, bool]]:
        """Per field, the value the phrases name most surely: (value, confidence, words in the
        phrase, whether the phrase is a synonym of the value); longer phrases first ("tee shirt"
        over "shirt"). Where the query is broader than several values equally ("underpants": "Briefs", "Boxers"), the catalogue's commonest one,
        less surely. A phrase in the field's own words, or made of ``used`` words (those that
        already named another field's value), links by synonymy only ("shoes" is not "Sandals",
        "white" is not "Trousers")."""
        best: dict[str, dict[str, tuple[float, int, bool]]] = {}

        def offer(field: str, value: str, conf: float, n_words: int, synonym: bool) -> None:
            if conf < WN_MIN:
                return
            cur = best.setdefault(field, {}).get(value)
            if cur is None or (conf, n_words) > cur[:2]:
                best[field][value] = (conf, n_words, synonym)

        wn = self.wordnet
        for words in phrases:
            stems = {_stem(w) for w in words}
            own = set(self.vocabulary) if stems <= used else {f for f, vocab in self.vocabulary.items() if stems <= vocab}
            seen: dict[str, int] = {}  # per field, the phrase's senses in its lexicographer files so far
            for s in wn.synsets(words):
                lf = wn.lexfile[s]
                qpos = {f: seen.get(f, 0) for f, files in self.lexfiles.items() if lf in files}
                for f in qpos:
                    seen[f] = qpos[f] + 1
                for a, d in wn.ancestors(s, WN_DEPTH).items():
                    for field, value, vpos in self.exact.get(a, ()):
                        if field in qpos and (d == 0 or field not in own):
                            offer(field, value, WN_SYNONYM - WN_STEP * d - WN_SENSE * (qpos[field] + vpos), len(words), d == 0)
                for field, value, vpos, d in self.below.get(s, ()):
                    if field in qpos and field not in own:
                        conf = WN_SYNONYM - WN_BROADER - WN_STEP * d - WN_SENSE * (qpos[field] + vpos)
                        offer(field, value, conf, len(words), False)
        out: dict[str, tuple[str, float, int, bool]] = {}
        for field, values in best.items():
            n = self.counts.get(field, {})
            ranked = sorted(values.items(), key=lambda kv: (kv[1][1], kv[1][0], n.get(kv[0], 0)), reverse=True)
            value, (conf, n_words, synonym) = ranked[0]
            if len(ranked) > 1 and ranked[1][1][:2] == ranked[0][1][:2]:
                conf -= WN_BROADER  # as sure of another value: the commoner one, less surely
            out[field] = (value, round(conf, 3), n_words, synonym)
        return out

    def elliptical(self, heads: Sequence[str], fields: Sequence[str], used: set[str] | frozenset[str] = frozenset()) -> dict[str, tuple[str, float]]:
        """Readings of compounds whose head noun the query left out ("bermudas": Bermuda shorts,
        "stilettos": stiletto heels): each query word in a head position (``heads``) that is none
        of a field's words, before each word of the field's values, as a WordNet lemma; it links
        like a phrase of the query, ``WN_ELLIPSIS`` less surely. Per field, the surest value."""
        wn = self.wordnet
        best: dict[str, tuple[str, float]] = {}
        for field in fields:
            if field not in self.lexfiles:
                continue
            for word in heads:
                if _stem(word) in used or _stem(word) in self.vocabulary.get(field, ()):
                    continue
                for wk in base_forms([word]):
                    for head in self.heads.get(field, ()):
                        for hk in base_forms([head]):
                            own = [x for x in wn.lemmas.get(wk + hk, ()) if wn.lexfile[x] in self.lexfiles[field]]
                            for pos, s in enumerate(own):
                                for a, d in wn.ancestors(s, WN_DEPTH).items():
                                    for f, value, vpos in self.exact.get(a, ()):
                                        conf = round(WN_SYNONYM - WN_ELLIPSIS - WN_STEP * d - WN_SENSE * (pos + vpos), 3)
                                        if f == field and conf >= WN_MIN and conf > best.get(field, ("", 0.0))[1]:
                                            best[field] = (value, conf)
        return best


class ValuePairs:
    """Which attribute values products have together, from the facet columns (each
    product's value of a field as a code, -1 for none): a pair of fields is tabulated at its first
    use with one vectorised pass (np.unique over code pairs), so a 1M-product catalogue pays
    milliseconds per field pair, once."""

    def __init__(self, column: Callable[[str], tuple[np.ndarray, Sequence[str]]]):
        self._fetch = column
        self._columns: dict[str, tuple[np.ndarray, Sequence[str]]] = {}
        self._pairs: dict[tuple[str, str], tuple[np.ndarray, dict[str, int], dict[str, int], int]] = {}
        self._determines: dict[tuple[str, str], bool] = {}

    @classmethod
    def of_items(cls, facet_items: Sequence[list[tuple[str, str]]]) -> ValuePairs:
        """From per-product (field, value) lists (small catalogues and tests)."""

        rows = [dict(items) for items in facet_items]

        def column(field: str) -> tuple[np.ndarray, list[str]]:
            labels: dict[str, int] = {}
            codes = np.array([labels.setdefault(r[field], len(labels)) if field in r else -1 for r in rows], np.int64)
            return codes, list(labels)

        return cls(column)

    def _column(self, field: str) -> tuple[np.ndarray, Sequence[str]]:
        """A field's codes (-1 for none) and labels, fetched once (the arrays themselves, no copy)."""
        got = self._columns.get(field)
        if got is None:
            codes, labels = self._fetch(field)
            got = self._columns[field] = (np.asarray(codes), labels)
        return got

    def _table(self, fa: str, fb: str) -> tuple[np.ndarray, dict[str, int], dict[str, int], int]:
        """Fields ``fa`` < ``fb``: the sorted codes ``ia * width + ib`` of the value pairs products have."""
        table = self._pairs.get((fa, fb))
        if table is None:
            codes_a, labels_a = self._column(fa)
            codes_b, labels_b = self._column(fb)
            both = (codes_a >= 0) & (codes_b >= 0)
            width = len(labels_b) + 1
            ids = np.unique(codes_a[both].astype(np.int64) * width + codes_b[both])
            table = self._pairs[(fa, fb)] = (ids, {v: i for i, v in enumerate(labels_a)}, {v: i for i, v in enumerate(labels_b)}, width)
        return table

    def together(self, a: tuple[str, str], b: tuple[str, str]) -> bool:
        """Whether some product has value ``a[1]`` of field ``a[0]`` and value ``b[1]`` of ``b[0]``."""
        if a[0] == b[0]:
            return a[1] == b[1]
        if a[0] > b[0]:
            a, b = b, a
        ids, index_a, index_b, width = self._table(a[0], b[0])
        ia, ib = index_a.get(a[1]), index_b.get(b[1])
        if ia is None or ib is None:
            return False
        pos = int(np.searchsorted(ids, ia * width + ib))
        return pos < len(ids) and int(ids[pos]) == ia * width + ib

    def determines(self, fa: str, fb: str) -> bool:
        """Whether field ``fa`` fixes field ``fb``: at least ``DETERMINES_SHARE`` of the products
        having both (counting values of two or more products) have an ``fa`` value that goes with a
        single ``fb`` value (a product type fixes its subcategory; no product type fixes the colour)."""
        key = (fa, fb)
        got = self._determines.get(key)
        if got is None:
            first = fa < fb
            ids, index_a, index_b, width = self._table(fa, fb) if first else self._table(fb, fa)
            own = ids // width if first else ids % width  # the fa code of each pair
            n_values = len(index_a) if first else len(index_b)
            partners = np.bincount(own, minlength=n_values)
            codes_a, _ = self._column(fa)
            codes_b, _ = self._column(fb)
            products = np.bincount(codes_a[(codes_a >= 0) & (codes_b >= 0)], minlength=n_values)
            # A value of one product has one partner whatever the fields mean: only values of two
            # or more products count, and at least DETERMINES_MIN products of them.
            several = products >= 2
            total = int(products[several].sum())
            single = int(products[several & (partners == 1)].sum())
            got = self._determines[key] = total >= DETERMINES_MIN and single >= DETERMINES_SHARE * total
        return got

    def conflict(self, a: tuple[str, str], b: tuple[str, str]) -> bool:
        """Two values that cannot both be meant: of one field and different, or of fields one of
        which fixes the other (``determines``) and no product has both (every "Tshirts" product is
        "Topwear", so "Tshirts" and "Sports Equipment" clash). A colour and a product type no
        product has together do not clash: the query asks for something the shop lacks, and both
        still matter."""
        if a[0] == b[0]:
            return a[1] != b[1]
        if not (self.determines(a[0], b[0]) or self.determines(b[0], a[0])):
            return False
        return not self.together(a, b)


@dataclass(frozen=True)
class Understood:
    """What a query says about attributes: {field: (value, confidence)} and a price range."""

    attributes: dict[str, tuple[str, float]]
    price_min: float | None = None
    price_max: float | None = None

    def filters(self) -> list[str]:
        out = [f"{f}={v}" for f, (v, _c) in self.attributes.items()]
        if self.price_max is not None:
            out.append(f"price<={self.price_max:g}")
        if self.price_min is not None:
            out.append(f"price>={self.price_min:g}")
        return out


def _stem(word: str) -> str:
    """Plural folding good enough for catalogue vocabularies (dresses → dress, jeans stays)."""
    for suffix, repl in (("sses", "ss"), ("ies", "y"), ("shes", "sh"), ("ches", "ch"), ("es", "e"), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word if word.endswith("ss") else word[: -len(suffix)] + repl  # "dress" stays
    return word


def stem_words(text: str) -> list[str]:
    return [_stem(w) for w in segment(text)]


_words = stem_words


class CachedEncoder:
    """Query words and word pairs repeat across queries ("women", "red"): keep their vectors in
    memory (least recently used out first) and encode only the new ones.

    Each new text is encoded on its own (≈ 0.9 ms), not in a batch with the others: the int8 text
    model quantises activations per batch, so a batched vector depended on its batch-mates, and
    through this cache a query's understanding depended on which queries had run before it.
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray], size: int = 20_000):
        self._encode = encode
        self._size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def __call__(self, texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if todo:
            for t in todo:
                self._vectors[t] = self._encode([t])[0]
            while len(self._vectors) > self._size:
                self._vectors.popitem(last=False)
        for t in texts:
            self._vectors.move_to_end(t)
        return np.stack([self._vectors[t] for t in texts])


class QueryUnderstanding:
    """Built once per index generation from the products' categorical attribute values."""

    def __init__(
        self,
        products: Sequence[Product],
        facet_items: Sequence[list[tuple[str, str]]],
        encode: Callable[[list[str]], np.ndarray],
        text_vectors: np.ndarray | None = None,
        has_text: np.ndarray | None = None,
        glossary: Callable[[], Glossary | None] | None = None,
        encode_query: Callable[[list[str]], np.ndarray] | None = None,
        pairs: ValuePairs | None = None,
    ):
        self._glossary = glossary
        self.pairs = pairs if pairs is not None else ValuePairs.of_items(facet_items)
        # Query-time encoding: straight to the model (not through the on-disk embedding cache).
        self._encode_query = CachedEncoder(encode_query or encode)
        values: dict[str, dict[str, int]] = {}
        for items in facet_items:
            for field, value in items:
                values.setdefault(field, {})
                values[field][value] = values[field].get(value, 0) + 1
        self.fields = {
            f: v for f, v in values.items() if 1 < len(v) <= MAX_VALUES_PER_FIELD and not all(x.isdigit() for x in v)
        }
        self.entries: list[tuple[str, str, tuple[str, ...]]] = []
        for field, counts in self.fields.items():
            for value in counts:
                words = tuple(_words(value))
                if words:
                    self.entries.append((field, value, words))
        texts = [value for _f, value, _w in self.entries]
        self.vectors = encode(texts) if texts else np.zeros((0, 1), np.float32)
        self._encode = encode
        self._wordnet: _WordNetValues | None = None  # built at the first query
        self._wordnet_built = False
        self.has_price = any(p.price is not None for p in products)
        # Prototypes: per field and value, the mean text vector of the products having it. A query
        # (in any language) is compared with whole products' text rather than with bare words.
        self.prototypes: dict[str, tuple[dict[str, int], np.ndarray]] = {}
        if text_vectors is not None and has_text is not None:
            for field in self.fields:
                members: dict[str, list[int]] = {}
                for row, items in enumerate(facet_items):
                    if has_text[row]:
                        for f, v in items:
                            if f == field:
                                members.setdefault(v, []).append(row)
                if len(members) > 1:
                    names = list(members)
                    mat = np.stack([np.asarray(text_vectors[members[v]]).mean(axis=0) for v in names])
                    norms = np.linalg.norm(mat, axis=1, keepdims=True)
                    self.prototypes[field] = ({v: i for i, v in enumerate(names)}, (mat / np.maximum(norms, 1e-12)).astype(np.float32))

    def prototype_gaps(self, query_vector: np.ndarray, items: Sequence[list[tuple[str, str]]]) -> tuple[np.ndarray, np.ndarray]:
        """Per product: summed and largest gap between the best-matching value of each field and the
        product's own value (0 when the product has the values the query is closest to)."""
        total = np.zeros(len(items), np.float32)
        worst = np.zeros(len(items), np.float32)
        for field, (index, mat) in self.prototypes.items():
            sims = mat @ query_vector
            best = float(sims.max())
            for i, product_items in enumerate(items):
                for f, v in product_items:
                    if f == field and v in index:
                        gap = best - float(sims[index[v]])
                        total[i] += gap
                        worst[i] = max(worst[i], gap)
        return total, worst

    def _glossary_for(self, words: list[str]) -> Glossary | None:
        """The dictionary, when the query has Chinese words and one is available."""
        return self._glossary() if self._glossary and any(has_cjk(w) for w in words) else None

    def translations(self, words: list[str]) -> list[str]:
        """English glosses of the query's Chinese words (dictionary lookup; empty without one)."""
        glossary = self._glossary_for(words)
        if glossary is None:
            return []
        return [e for g in glossary.translate(words) for e in g.english[:GLOSSES_USED]]

    def compound_parts(self, words: list[str]) -> list[str]:
        """The dictionary words that make up the query's Chinese words the dictionary lacks ("女款",
        women's style → "女", "款"): compared with the values on their own, a part can name one
        that the whole compound is too far from in the embedding space (empty without a dictionary)."""
        glossary = self._glossary_for(words)
        if glossary is None:
            return []
        return [p for w in words if has_cjk(w) and w not in glossary.entries for p in glossary.parts(w) if p != w]

    def wordnet(self) -> _WordNetValues | None:
        """The catalogue values' WordNet senses (None without the packaged WordNet)."""
        if not self._wordnet_built:
            wn = load_wordnet()
            self._wordnet = _WordNetValues.build(wn, self.entries, self.fields) if wn is not None else None
            self._wordnet_built = True
        return self._wordnet

    def confusable(self, field: str, value: str) -> tuple[str, float] | None:
        """The value of the same field whose name is nearest in the embedding space (what an
        embedding match of a paraphrase would most likely pick instead), with that similarity."""
        idx = [j for j, (f, _v, _w) in enumerate(self.entries) if f == field]
        own = [j for j in idx if self.entries[j][1] == value]
        if not own or len(idx) < 2:
            return None
        sims = self.vectors[idx] @ self.vectors[own[0]]
        order = [k for k in np.argsort(-sims) if idx[k] != own[0]]
        return (self.entries[idx[order[0]]][1], float(sims[order[0]])) if order else None

    def consistent(self, found: dict[str, tuple[str, float]]) -> dict[str, tuple[str, float]]:
        """The understood values that fit together (no two in conflict: ``ValuePairs.conflict``).
        Values named in the catalogue's own words (confidence 1) are kept first, a field that
        fixes more of the others first ("skin foundation and primer": the product type over the
        subcategory "Skin"). Of the other values, those clashing with a kept one go, and among the
        rest the conflict-free set of the largest summed confidence stays: readings that agree
        add up. "tee shirt": Tshirts at 0.9 from WordNet and "tee", a golf tee, as Sports
        Equipment at 0.75; every T-shirt of the catalogue is Topwear, so the weaker reading goes.
        "hosiery": Footwear at 0.85 (WordNet's is-a) loses to the subcategory and product type
        Socks (0.8 + 0.75), which agree with each other."""
        items = list(found.items())
        clash = {
            (i, j)
            for i in range(len(items))
            for j in range(i + 1, len(items))
            if self.pairs.conflict((items[i][0], items[i][1][0]), (items[j][0], items[j][1][0]))
        }
        if not clash:
            return found

        def clashes(i: int, chosen: list[int]) -> bool:
            return any((min(i, k), max(i, k)) in clash for k in chosen)

        fixes = [sum(self.pairs.determines(f, g) for g in found if g != f) for f, _ in items]
        kept: list[int] = []
        for i in sorted((i for i, (_f, (_v, c)) in enumerate(items) if c >= 1.0), key=lambda i: -fixes[i]):
            if not clashes(i, kept):
                kept.append(i)
        rest = [i for i, (_f, (_v, c)) in enumerate(items) if c < 1.0 and not clashes(i, kept)]
        if len(rest) <= MAX_CONSISTENT_SEARCH:
            best, chosen = -1.0, []
            for mask in range(1 << len(rest)):
                subset = [i for b, i in enumerate(rest) if mask >> b & 1]
                if any(clashes(i, subset) for i in subset):
                    continue
                total = sum(items[i][1][1] for i in subset)
                if total > best + 1e-9:
                    best, chosen = total, subset
        else:  # too many to search: surest first
            chosen = []
            for i in sorted(rest, key=lambda i: -items[i][1][1]):
                if not clashes(i, chosen):
                    chosen.append(i)
        names = {items[i][0] for i in kept + chosen}
        return {f: found[f] for f in found if f in names}

    def understand(self, text: str, min_sim: float = 0.70, lexical: bool = True) -> Understood:
        """Lexical matches first (all of a value's words in the query), then (English) WordNet links
        of the query's phrases, then embedding matches of the query's words and word pairs against
        the values, one best value per field."""
        found: dict[str, tuple[str, float]] = {}
        text = pronouns_as_nouns(text)
        qwords = _words(text)
        qset = set(qwords)
        # Of a field's values named in the query, the one ending last (the head of an English
        # compound: "dress shirt" is a shirt, "denim jacket" a jacket), then the longest ("Navy Blue"
        # beats "Blue").
        last = {w: i for i, w in enumerate(qwords)}
        lexical_rank: dict[str, tuple[int, int]] = {}
        for field, value, words in self.entries if lexical else ():
            if set(words) <= qset:
                rank = (max(last[w] for w in words), len(value))
                if field not in found or rank > lexical_rank[field]:
                    found[field] = (value, 1.0)
                    lexical_rank[field] = rank
        grams = list(dict.fromkeys(qwords + [" ".join(p) for p in zip(qwords, qwords[1:], strict=False)]))
        raw = segment(text)
        grams += [w for w in raw if w not in grams]
        parts = [w for w in self.compound_parts(raw) if w not in grams]
        glosses = self.translations(raw)
        if lexical and glosses:
            # A meaning that is a value's whole name, however spaced ("t shirt": "Tshirts"), before
            # one that merely contains a value's words ("t shirt" contains "Shirts").
            spelled = [(set(ws), "".join(ws)) for ws in (_words(e) for e in glosses)]
            for whole in (True, False):
                for gset, joined in spelled:
                    for field, value, words in self.entries:
                        if field not in found and (joined == "".join(words) if whole else set(words) <= gset):
                            found[field] = (value, GLOSS_CONFIDENCE)
        grams += [e for e in dict.fromkeys(glosses) if e not in grams]
        wn = self.wordnet()
        english = wn is not None and not any(has_cjk(w) for w in raw)
        tokens = [w.lower() for w in raw]
        if wn is not None and english:
            # Words a lexical match used ("white" named the colour) link by synonymy only.
            used = {w for f, (v, c) in found.items() if c >= 1.0 for w in _words(v)}
            phrases = [tokens[i : i + n] for n in range(1, WN_MAX_WORDS + 1) for i in range(len(tokens) - n + 1)]
            for field, (value, conf, n_words, synonym) in wn.match(phrases, used).items():
                prev = found.get(field)
                # A lexical match on part of a longer phrase gives way to the phrase's synonym ("tee
                # shirt" is a "T-shirt", not a "Shirt"; a "tank top", a kind of shirt, stays a "Top").
                if prev is None or (synonym and prev[0] != value and n_words > len(_words(prev[0]))):
                    found[field] = (value, conf)
        if (grams or parts) and len(self.entries):
            sims = self._encode_query(grams + parts) @ self.vectors.T  # grams × values
            sims[len(grams) :] -= PART_MIN_SIM - min_sim  # parts must clear PART_MIN_SIM
            best_value = sims.max(axis=0)
            for j in np.argsort(-best_value):
                s = float(best_value[j])
                if s < min_sim:
                    break
                field, value, _w = self.entries[j]
                if field not in found:
                    found[field] = (value, round(s, 3))
        if wn is not None and english:
            # Fields nothing else read: compounds whose head the query left out. Head positions:
            # the last word, and words before a preposition or conjunction ("bermuda for men").
            heads = [w for i, w in enumerate(tokens) if w.isalpha() and (i + 1 == len(tokens) or tokens[i + 1] in _CLOSING_WORDS)]
            used = {w for f, (v, c) in found.items() for w in _words(v)}
            for field, reading in wn.elliptical(heads, [f for f in self.fields if f not in found], used).items():
                found[field] = reading
        found = self.consistent(found)
        pmax = _first_number(_PRICE_MAX.search(text))
        pmin = _first_number(_PRICE_MIN.search(text))
        return Understood(found, pmin if self.has_price else None, pmax if self.has_price else None)


def _first_number(m: re.Match[str] | None) -> float | None:
    if m is None:
        return None
    for g in m.groups():
        if g:
            return float(g)
    return None
