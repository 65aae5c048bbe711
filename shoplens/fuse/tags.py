"""Zero-shot visual tags: the ImageNet classifier's top classes, as words for photo-only products."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np


@lru_cache(maxsize=1)
def imagenet_lemmas() -> list[list[str]]:
    """For each of the 1,000 ImageNet classes (index order), its WordNet lemmas."""
    text = (resources.files("shoplens") / "data" / "imagenet_classes.tsv").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        _synset, _, lemmas = line.partition("\t")
        out.append([w.strip() for w in lemmas.split(",") if w.strip()])
    return out


def tags_text(packed: np.ndarray, min_prob: float = 0.05, max_classes: int = 3, synonyms: int = 2) -> str:
    """Words for one photo from its packed top classes ``[ids..., probabilities...]``."""
    lemmas = imagenet_lemmas()
    k = len(packed) // 2
    ids, probs = packed[:k].astype(int), packed[k:]
    words: list[str] = []
    for cls, p in list(zip(ids, probs, strict=True))[:max_classes]:
        if p < min_prob or not 0 <= cls < len(lemmas):
            continue
        for w in lemmas[cls][:synonyms]:
            if w not in words:
                words.append(w)
    return " ".join(words)
