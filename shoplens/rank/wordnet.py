"""English WordNet nouns (Princeton WordNet 3.0) for query understanding: a query word the
catalogue never uses ("underpants", "billfold", "rucksack") meets the catalogue's attribute value
through WordNet's synonym sets and is-a links ("underpants" ⊃ "briefs", "wristwatch" ⊂ "watch").

The small multilingual sentence encoder knows few product-type synonyms, and a bilingual dictionary
pivot proved too noisy; WordNet's noun hierarchy is a general lexical resource (nothing here is
specific to one catalogue). The data ships with shoplens as a compact extract of the noun database
(``shoplens/data/wordnet/nouns.tsv.gz``: per synset its lexicographer file, its hypernyms and its
lemmas with their sense numbers; instances, glosses and other relations dropped), made by
``python -m shoplens.rank.wordnet DICT_DIR OUT`` from a WordNet 3.0 ``dict`` folder. WordNet
licence: ``shoplens/data/wordnet/LICENSE``.
"""

from __future__ import annotations

import gzip
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

DATA = ("data", "wordnet", "nouns.tsv.gz")
FORMAT = "shoplens-wordnet-nouns 1"
_KEY = re.compile(r"[^0-9a-z]+")
# WordNet's own plural rules for nouns (morphy), most specific first; irregular "men" → "man" too.
_NOUN_SUFFIXES = (("men", "man"), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("ies", "y"), ("s", ""))


def key(text: str) -> str:
    """Lemma key: lower case, letters and digits only ("T-shirt", "tee_shirt", "Tshirts" → "tshirt", …)."""
    return _KEY.sub("", text.lower())


def base_forms(words: Sequence[str]) -> list[str]:
    """Keys under which a phrase may be a WordNet lemma: as written, then with its last word made
    singular by WordNet's noun rules."""
    words = [w.lower() for w in words if w]
    if not words:
        return []
    out = [key("".join(words))]
    last = words[-1]
    for suffix, repl in _NOUN_SUFFIXES:
        stem = last[: -len(suffix)] + repl
        if last.endswith(suffix) and len(stem) >= 2:
            out.append(key("".join(words[:-1]) + stem))
    return [k for k in dict.fromkeys(out) if k]


@dataclass
class WordNet:
    """Noun synsets: lexicographer file, hypernyms, and a lemma key → synsets (first senses first) map."""

    lexfile: list[int]
    hypernyms: list[tuple[int, ...]]
    lemmas: dict[str, list[int]]
    words: list[tuple[str, ...]] = field(default_factory=list)  # per synset, its lemmas (lower case)
    _hyponyms: dict[int, list[int]] | None = field(default=None, repr=False)

    def hyponyms(self, synset: int) -> list[int]:
        if self._hyponyms is None:
            inv: dict[int, list[int]] = {}
            for s, hyps in enumerate(self.hypernyms):
                for h in hyps:
                    inv.setdefault(h, []).append(s)
            self._hyponyms = inv
        return self._hyponyms.get(synset, [])

    def related(self, words: Sequence[str], senses: int = 2) -> list[str]:
        """Lemmas (as phrases) of the first ``senses`` meanings of a phrase, of their direct
        hypernyms and of their direct hyponyms, nearest first ("underpants" → "briefs", "boxers",
        "undergarment", …); the phrase's own forms are left out."""
        own = set(base_forms(words))
        out: list[str] = []
        for s in self.synsets(words)[:senses]:
            for t in [s, *self.hypernyms[s], *self.hyponyms(s)]:
                for w in self.words[t] if t < len(self.words) else ():
                    phrase = w.replace("_", " ")
                    if key(phrase) not in own and phrase not in out:
                        out.append(phrase)
        return out

    def synsets(self, words: Sequence[str]) -> list[int]:
        out: list[int] = []
        for k in base_forms(words):
            out += [s for s in self.lemmas.get(k, ()) if s not in out]
        return out

    def ancestors(self, synset: int, depth: int) -> dict[int, int]:
        """Hypernyms up to ``depth`` is-a steps above ``synset`` → their distance (itself at 0)."""
        out = {synset: 0}
        frontier = [synset]
        for d in range(1, depth + 1):
            nxt = []
            for s in frontier:
                for h in self.hypernyms[s]:
                    if h not in out:
                        out[h] = d
                        nxt.append(h)
            frontier = nxt
        return out

    @classmethod
    def parse(cls, lines: Iterable[str]) -> WordNet:
        it = iter(lines)
        if next(it, "").strip() != FORMAT:
            raise ValueError("not a shoplens WordNet extract")
        lexfile: list[int] = []
        hypernyms: list[tuple[int, ...]] = []
        words: list[tuple[str, ...]] = []
        senses: dict[str, list[tuple[int, int]]] = {}
        for n, line in enumerate(it):
            lex, hyp, lems = line.rstrip("\n").split("\t")
            lexfile.append(int(lex))
            hypernyms.append(tuple(int(h) for h in hyp.split(",")) if hyp else ())
            names = []
            for lemma in lems.split("|"):
                word, _, rank = lemma.partition("#")
                names.append(word.lower())
                senses.setdefault(key(word), []).append((int(rank) if rank else 1, n))
            words.append(tuple(names))
        lemmas = {k: [s for _r, s in sorted(v)] for k, v in senses.items()}
        return cls(lexfile, hypernyms, lemmas, words)


@lru_cache(maxsize=1)
def load_wordnet() -> WordNet | None:
    """The packaged extract (parsed once per process; about half a second), or None without it."""
    try:
        data = resources.files("shoplens").joinpath(*DATA).read_bytes()
    except OSError:
        return None
    return WordNet.parse(gzip.decompress(data).decode("utf-8").splitlines())


def extract(dict_dir: Path) -> list[str]:
    """The compact extract's lines from a WordNet 3.0 ``dict`` folder (``data.noun``, or the
    ``data.noun1`` + ``data.noun2`` halves some packages ship, and ``index.noun``)."""
    parts = sorted(dict_dir.glob("data.noun*"))
    if not parts:
        raise FileNotFoundError(f"{dict_dir}: no data.noun")
    offsets: dict[str, int] = {}
    rows: list[tuple[str, list[str], list[str]]] = []  # lexfile, hypernym offsets, lemmas
    for part in parts:
        for line in part.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line or line.startswith(" "):
                continue
            fields = line.split(" | ")[0].split()
            offset, lex, n_words = fields[0], fields[1], int(fields[3], 16)
            words = [fields[4 + 2 * i] for i in range(n_words)]
            p = 4 + 2 * n_words
            n_ptr = int(fields[p])
            ptrs = [fields[p + 1 + 4 * i : p + 5 + 4 * i] for i in range(n_ptr)]
            if any(sym == "@i" for sym, *_ in ptrs):
                continue  # instances (people, places) are not product vocabulary
            offsets[offset] = len(rows)
            rows.append((lex, [o for sym, o, pos, _st in ptrs if sym == "@" and pos == "n"], [w.split("(")[0] for w in words]))
    rank: dict[tuple[str, int], int] = {}
    index = dict_dir / "index.noun"
    if index.is_file():
        for line in index.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(" "):
                continue
            f = line.split()
            lemma, n_synsets, n_ptr = f[0], int(f[2]), int(f[3])
            for r, off in enumerate(f[6 + n_ptr : 6 + n_ptr + n_synsets], start=1):
                if off in offsets:
                    rank[(key(lemma), offsets[off])] = r
    out = [FORMAT]
    for n, (lex, hyps, words) in enumerate(rows):
        lems = []
        for w in words:
            r = rank.get((key(w), n), 1)
            lems.append(w if r == 1 else f"{w}#{r}")
        hyp = ",".join(str(offsets[o]) for o in hyps if o in offsets)
        out.append(f"{int(lex)}\t{hyp}\t{'|'.join(lems)}")
    return out


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m shoplens.rank.wordnet WORDNET_DICT_DIR OUT.tsv.gz")
    lines = extract(Path(args[0]))
    Path(args[1]).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), 9, mtime=0))
    print(f"{len(lines) - 1} noun synsets → {args[1]}")


if __name__ == "__main__":
    main()
