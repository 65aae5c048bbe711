"""BM25 over product text with Chinese word segmentation: rjieba pre-tokenises, tantivy scores."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..types import Product

log = logging.getLogger(__name__)

# Fields that hold words a shopper types; numbers and free-form ids add noise to BM25.
_WORD = re.compile(r"\w", re.UNICODE)
NAME_BOOST, BODY_BOOST = 2.0, 1.0


def segment(text: str) -> list[str]:
    """Lower-cased words; Chinese runs split into words by jieba, punctuation dropped."""
    import rjieba

    return [t for t in (tok.strip() for tok in rjieba.cut(text.lower())) if t and _WORD.search(t)]


def product_name_text(p: Product) -> str:
    """The short, high-precision text of a product: title, brand, category and attribute values."""
    parts = [p.title, p.brand, p.category]
    for v in p.attributes.values():
        if isinstance(v, str) and len(v) <= 60 and not v.replace(".", "").isdigit():
            parts.append(v)
    return " ".join(x for x in parts if x)


def product_body_text(p: Product) -> str:
    return " ".join(x for x in (p.description, p.reviews) if x)


class LexicalIndex:
    """A tantivy index on disk (or in RAM when ``path`` is None), keyed by product id."""

    def __init__(self, path: str | Path | None = None) -> None:
        import tantivy

        sb = tantivy.SchemaBuilder()
        sb.add_text_field("pid", stored=True, tokenizer_name="raw")
        sb.add_text_field("name", tokenizer_name="en_stem")
        sb.add_text_field("body", tokenizer_name="en_stem")
        schema = sb.build()
        if path is None:
            self._index = tantivy.Index(schema)
        else:
            Path(path).mkdir(parents=True, exist_ok=True)
            self._index = tantivy.Index(schema, path=str(path), reuse=True)
        self._tantivy = tantivy
        # Word → how many products' names contain it. A generation's index is fixed once built, so
        # counts are kept until the next write (counting a common word scans its postings: ~ms at 1M).
        self._vocab: dict[str, int] = {}
        self._vocab_lock = threading.Lock()

    def upsert(
        self, products: Iterable[Product], delete_ids: Sequence[str] = (), derived: dict[str, str] | None = None
    ) -> None:
        """Replace the documents of these products, delete others, and commit once.

        ``derived`` adds image-derived words (zero-shot tags) to the body of photo-only products."""
        derived = derived or {}
        writer = self._index.writer(heap_size=64_000_000, num_threads=1)
        try:
            for pid in delete_ids:
                writer.delete_documents_by_term("pid", pid)
            for p in products:
                writer.delete_documents_by_term("pid", p.id)
                writer.add_document(
                    self._tantivy.Document(
                        pid=p.id,
                        name=" ".join(segment(product_name_text(p))),
                        body=" ".join(segment(f"{product_body_text(p)} {derived.get(p.id, '')}")),
                    )
                )
            writer.commit()
            writer.wait_merging_threads()
        except BaseException:
            writer.rollback()
            raise
        self._index.reload()
        with self._vocab_lock:
            self._vocab = {}

    def search(self, terms: Sequence[tuple[str, float]], k: int) -> list[tuple[str, float]]:
        """BM25 top-k for weighted query words (already segmented): ``[(product id, score)]``."""
        clauses = []
        for tok, weight in terms:
            word = re.sub(r"[^\w]", " ", tok).strip()
            if not word:
                continue
            for w in word.split():
                clauses.append(f"{w}^{weight:.3f}" if weight != 1.0 else w)
        if not clauses or k <= 0:
            return []
        query = self._index.parse_query(
            " ".join(clauses), ["name", "body"], field_boosts={"name": NAME_BOOST, "body": BODY_BOOST}
        )
        searcher = self._index.searcher()
        # count=False: counting every match would visit all postings of common words and disable
        # tantivy's block-max WAND pruning; the top-k (and their order) are the same either way.
        result = searcher.search(query, k, count=False)
        return [(searcher.doc(addr)["pid"][0], float(score)) for score, addr in result.hits]

    def vocabulary_probe(self, word: str) -> int:
        """How many products contain this (segmented) word in their name text (kept per word)."""
        got = self._vocab.get(word)
        if got is not None:
            return got
        searcher = self._index.searcher()
        q = self._index.parse_query(re.sub(r"[^\w]", " ", word) or "_", ["name"])
        result: Any = searcher.search(q, 1, count=True)
        got = int(result.count or 0)
        with self._vocab_lock:
            if len(self._vocab) >= 100_000:  # bounded: shoppers type an open-ended vocabulary
                self._vocab.clear()
            self._vocab[word] = got
        return got

    def num_docs(self) -> int:
        return int(self._index.searcher().num_docs)
