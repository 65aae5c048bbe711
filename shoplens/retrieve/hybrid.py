"""Hybrid retrieval over one index state: BM25 + dense text + image, fused by weighted RRF."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..config import RetrieveConfig
from ..errors import NotFoundError, QueryError
from ..index.lexical import segment
from ..index.state import IndexState
from ..rank.glossary import has_cjk
from ..rank.wordnet import base_forms
from ..types import Hit, Query, QueryImage, SearchResult
from .filters import facet_counts, facet_counts_rows, filter_mask, parse_filter
from .fusion import reciprocal_rank_fusion

if TYPE_CHECKING:
    from ..fuse.attention import AttentionFusion
    from ..rank.rerank import Reranker

log = logging.getLogger(__name__)

Encode = Callable[[str], np.ndarray]

# Runs each text query's dense side beside its BM25 side (threads start on demand; idle ones cost
# nothing). Sized for many concurrent queries: a task never waits for another task.
_DENSE_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="shoplens-dense")


@dataclass(frozen=True)
class QueryPhoto:
    """A query photo, encoded: its unit feature vector and its colour histogram."""

    vector: np.ndarray
    colour: np.ndarray | None = None


EncodePhoto = Callable[["QueryImage"], QueryPhoto]


WORDNET_EXPANSION = True
MAX_RELATED = 12  # WordNet neighbours looked at per unknown query word
RELATED_WEIGHT = 0.5  # BM25 weight of a word found through WordNet (the query's own words: 1)


def query_coverage(tokens: list[str], st: IndexState, expanded: set[str] | None = None) -> float:
    """Share of the query's words that occur in at least one product's name text (0 for none);
    a word the catalogue reaches through WordNet (``expanded``) counts half."""
    if not tokens:
        return 0.0
    found = sum(1.0 if st.lexical.vocabulary_probe(t) > 0 else 0.5 if expanded and t in expanded else 0.0 for t in tokens)
    return found / len(tokens)


class HybridRetriever:
    """Stateless over an :class:`IndexState`; encoders are passed in as functions."""

    def __init__(
        self,
        state: IndexState,
        cfg: RetrieveConfig,
        encode_text: Encode,
        encode_image: EncodePhoto,
        reranker: Reranker | None = None,
    ):
        self.state = state
        self.cfg = cfg
        self.encode_text = encode_text
        self.encode_image = encode_image
        self.coverage = 1.0
        self.text_vector: np.ndarray | None = None
        self.reranker = reranker
        self._expanded: set[str] = set()  # query words that BM25 reached through WordNet

    # -- query validation -------------------------------------------------------------------
    def validate(self, q: Query) -> Query:
        text = (q.text or "").strip()
        if len(text) > self.cfg.max_query_chars:
            raise QueryError(f"query text is {len(text)} characters; the limit is {self.cfg.max_query_chars}")
        if not text and q.image is None:
            raise QueryError("empty query: give query text, a photo, or both")
        if not 1 <= q.k <= 1000:
            raise QueryError(f"k must be between 1 and 1000, got {q.k}")
        if q.offset < 0 or q.offset > 10_000:
            raise QueryError(f"offset must be between 0 and 10000, got {q.offset}")
        return Query(text, q.image, q.filters, q.history, q.k, q.offset, q.user, q.explain)

    def filter_mask(self, filters: tuple[str, ...]) -> np.ndarray | None:
        """The products passing the filters; masks are cached per index generation (shoppers
        repeat the same facet filters), at most 256 of them."""
        if not filters:
            return None
        key = tuple(sorted(filters))
        cache: dict[tuple[str, ...], np.ndarray] = self.state._derived.setdefault("filter_masks", {})
        mask = cache.get(key)
        if mask is None:
            mask = filter_mask(self.state.products, [parse_filter(f) for f in filters], self.state.columns)
            assert mask is not None
            if len(cache) >= 256:
                cache.pop(next(iter(cache)))
            cache[key] = mask
        return mask

    # -- candidate generation ---------------------------------------------------------------
    def lexical_tokens(self, tokens: list[str]) -> list[str]:
        """BM25 words of the query: Chinese words the catalogue lacks are replaced by their
        dictionary meaning in English (cross-language lexical match; see rank/glossary.py)."""
        if self.reranker is None or not any(has_cjk(t) for t in tokens):
            return tokens
        glossary = self.reranker.glossary()
        if glossary is None:
            return tokens
        out: list[str] = []
        for g in glossary.translate(tokens):
            if g.english and self.state.lexical.vocabulary_probe(g.word) == 0:
                out.extend(segment(g.english[0]))
            else:
                out.append(g.word)
        return out

    def value_words(self) -> set[str]:
        """The words of the catalogue's attribute values, as written and singular ("dresses", "dress"),
        cached per index generation."""
        got = self.state._derived.get("value_words")
        if got is None:
            values = {v for items in self.state.facet_items for _f, v in items}
            got = {k for v in values for w in segment(v.lower()) if w.isalpha() for k in base_forms([w])}
            self.state._derived["value_words"] = got
        return got

    def related_terms(self, tokens: list[str]) -> list[tuple[str, float]]:
        """BM25 words for English query words the catalogue never uses: those of their WordNet
        synonyms, direct hypernyms and hyponyms that name catalogue attribute values ("underpants" →
        "briefs", "boxers"; "female" → "person" does not), at a lower weight (see rank/wordnet.py)."""
        self._expanded = set()
        if not WORDNET_EXPANSION or any(has_cjk(t) for t in tokens):
            return []
        from ..rank.wordnet import load_wordnet

        probe = self.state.lexical.vocabulary_probe
        unknown = [t for t in tokens if t.isalpha() and len(t) > 2 and probe(t) == 0]
        if not unknown:
            return []
        wn = load_wordnet()
        if wn is None:
            return []
        names = self.value_words()
        out: list[tuple[str, float]] = []
        for t in unknown:
            for phrase in wn.related([t])[:MAX_RELATED]:
                # One-word lemmas only: the words of "jockey shorts" alone would name other things.
                if " " in phrase or not names.intersection(base_forms([phrase])):
                    continue
                if probe(phrase) > 0 and (phrase, RELATED_WEIGHT) not in out:
                    self._expanded.add(t)
                    out.append((phrase, RELATED_WEIGHT))
        return out

    def candidates(
        self, q: Query, allowed: np.ndarray | None, timings: dict[str, float]
    ) -> dict[str, list[tuple[int, float]]]:
        st, depth = self.state, self.cfg.depth
        runs: dict[str, list[tuple[int, float]]] = {}
        if q.text:
            # The dense side (encode the query, search the vectors) runs on a worker thread while
            # this one runs BM25: both release the GIL, so a query waits for the slower of the two
            # instead of their sum (at 1M products each is ~10 ms on one core).
            dense = _DENSE_POOL.submit(self._dense_text, q.text, allowed)
            t0 = time.perf_counter()
            words = segment(q.text)
            tokens = self.lexical_tokens(words)
            # English words only (a Chinese query's words were already replaced by dictionary meanings).
            terms = [(t, 1.0) for t in tokens] + (self.related_terms(tokens) if tokens == words else [])
            bm25 = st.lexical.search(terms, depth * 3 if allowed is not None else depth)
            rows = [(st.id_to_row[pid], s) for pid, s in bm25 if pid in st.id_to_row]
            if allowed is not None:
                rows = [(r, s) for r, s in rows if allowed[r]]
            runs["bm25"] = rows[:depth]
            self.coverage = query_coverage(tokens, st, self._expanded)
            timings["bm25_ms"] = (time.perf_counter() - t0) * 1e3
            qv, dense_runs, dense_timings = dense.result()
            self.text_vector = qv
            runs.update(dense_runs)
            timings.update(dense_timings)
        if q.image is not None:
            t0 = time.perf_counter()
            photo = self.encode_image(q.image)
            timings["encode_image_ms"] = (time.perf_counter() - t0) * 1e3
            t0 = time.perf_counter()
            runs["image"] = st.image_index.search(photo.vector, depth, allowed)
            if st.photo_index is not None and st.align is not None and st.align.photo is not None:
                runs["photo"] = st.photo_index.search(st.align.photo.apply(photo.vector), depth, allowed)
            if st.shared_space and not q.text:
                runs["xmodal"] = st.text_only_index.search(photo.vector, depth, allowed)
            elif st.align is not None and st.align.text_image is not None and not q.text:
                # The photo reaches text-only listings through the text–image head.
                colour = photo.colour[None, :] if photo.colour is not None else None
                x = st.align.image_inputs(photo.vector[None, :], colour)
                runs["xmodal"] = st.text_only_index.search(st.align.project(x)[0], depth, allowed)
            timings["dense_image_ms"] = (time.perf_counter() - t0) * 1e3
        return runs

    def _dense_text(
        self, text: str, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, dict[str, list[tuple[int, float]]], dict[str, float]]:
        """Encode the query text and search the text vectors (and photo-only products through the
        bridge): ``(vector, runs, timings)``."""
        st, depth = self.state, self.cfg.depth
        runs: dict[str, list[tuple[int, float]]] = {}
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        qv = self.encode_text(text)
        timings["encode_text_ms"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        runs["text"] = st.text_index.search(qv, depth, allowed)
        timings["dense_text_ms"] = (time.perf_counter() - t0) * 1e3
        xmodal = st.xmodal_index
        if xmodal is not None:  # the text reaches products through their photos
            t0 = time.perf_counter()
            runs["xmodal"] = xmodal.search(qv, depth, allowed)
            timings["xmodal_ms"] = (time.perf_counter() - t0) * 1e3
        return qv, runs, timings

    def search(self, query: Query) -> SearchResult:
        q = self.validate(query)
        timings: dict[str, float] = {}
        allowed = self.filter_mask(q.filters)
        runs = self.candidates(q, allowed, timings)
        t0 = time.perf_counter()
        fused = self.fuse(runs, q, self.coverage)
        timings["fusion_ms"] = (time.perf_counter() - t0) * 1e3
        features: dict[int, np.ndarray] = {}
        understood = None
        prefers: dict[str, tuple[str, float]] = {}
        if self.reranker is not None:
            t0 = time.perf_counter()
            outcome = self.reranker.rerank(self.state, q, self.text_vector, self.coverage, fused, runs)
            fused, features, understood, prefers = outcome.fused, outcome.features, outcome.understood, outcome.preferences
            timings["rerank_ms"] = (time.perf_counter() - t0) * 1e3
        result = self._page(fused, runs, q, timings, features)
        if understood is not None or prefers:
            info: dict[str, object] = {}
            if understood is not None:
                info["attributes"] = {f: v for f, (v, _c) in understood.attributes.items()}
                if understood.price_max is not None or understood.price_min is not None:
                    info["price"] = {"min": understood.price_min, "max": understood.price_max}
            if prefers:
                # What the shopper's history said on the fields the query left open (value, share).
                info["history_prefers"] = {f: {"value": v, "share": round(sh, 3)} for f, (v, sh) in prefers.items()}
            result = SearchResult(result.hits, result.total, result.facets, result.timings_ms, info)
        return result

    def fuse(
        self, runs: dict[str, list[tuple[int, float]]], q: Query, coverage: float
    ) -> list[tuple[int, float, dict[str, int]]]:
        """Weighted RRF of the direct runs, then the bridged (missing-modality) run interleaved.

        Shared by search and by ranker training, so the ranker learns on the order it re-ranks."""
        weights = dict(self.cfg.weights)
        if "bm25" in runs and self.cfg.adaptive_bm25:
            # Words the catalogue never uses (paraphrases, another language) make BM25 unreliable:
            # scale its vote by the share of query words found in the catalogue's vocabulary.
            weights["bm25"] = weights.get("bm25", 1.0) * coverage
        direct = {name: run for name, run in runs.items() if name != "xmodal"}
        fused = reciprocal_rank_fusion(direct, weights, self.cfg.rrf_k)
        bridge = runs.get("xmodal")
        if bridge:
            fused = self._merge_bridge(fused, bridge, direct, weights, q)
        return fused

    def _merge_bridge(
        self,
        fused: list[tuple[int, float, dict[str, int]]],
        bridge: list[tuple[int, float]],
        runs: dict[str, list[tuple[int, float]]],
        weights: dict[str, float],
        q: Query,
    ) -> list[tuple[int, float, dict[str, int]]]:
        """Interleave products reached only through the bridge (the missing modality) in proportion.

        A product at rank r among the n_b bridged products is scored as a direct match would be at
        rank r·n_d/n_b among the n_d directly reachable ones, in every run the bridged product could
        not take part in: a random photo-only half of a catalogue interleaves one for one, a few
        photo-only listings in a big catalogue proportionally fewer.
        """
        st = self.state
        if q.text:
            n_direct, n_bridge = int(st.has_text.sum()), int((st.has_image & ~st.has_text).sum())
        else:
            n_direct, n_bridge = int(st.has_image.sum()), int((st.has_text & ~st.has_image).sum())
        ratio = n_direct / max(n_bridge, 1)
        total = sum(weights.get(name, 1.0) for name in runs) * self.cfg.bridge_weight
        k = self.cfg.rrf_k
        extra = [(doc, total / (k + rank * ratio), {"xmodal": rank}) for rank, (doc, _s) in enumerate(bridge, start=1)]
        merged = fused + extra
        merged.sort(key=lambda x: (-x[1], x[0]))
        return merged

    def _page(
        self,
        fused: list[tuple[int, float, dict[str, int]]],
        runs: dict[str, list[tuple[int, float]]],
        q: Query,
        timings: dict[str, float],
        features: dict[int, np.ndarray] | None = None,
    ) -> SearchResult:
        st = self.state
        raw = {name: dict(run) for name, run in runs.items()}
        page = fused[q.offset : q.offset + q.k]
        explanations: list[dict[str, float]] = [{} for _ in page]
        if q.explain and self.reranker is not None and features:
            have = [i for i, (d, _, _) in enumerate(page) if d in features]
            for i, e in zip(have, self.reranker.explain([features[page[i][0]] for i in have]), strict=True):
                explanations[i] = e
        hits = []
        for rank, (doc, score, ranks) in enumerate(page, start=q.offset + 1):
            signals: dict[str, float] = {}
            for name, r in ranks.items():
                signals[name] = round(raw[name][doc], 6)
                signals[f"{name}_rank"] = float(r)
            hits.append(Hit(st.products[doc], float(score), rank, signals, explanations[rank - q.offset - 1]))
        facets = facet_counts_rows(st.columns, [d for d, _, _ in fused], self.cfg.facet_max_values)
        if facets is None:
            items = st.facet_items
            facets = facet_counts((items[d] for d, _, _ in fused), self.cfg.facet_max_values)
        return SearchResult(tuple(hits), len(fused), facets, timings)

    # -- more like this ---------------------------------------------------------------------
    def similar(self, product_id: str, k: int = 10, filters: tuple[str, ...] = ()) -> SearchResult:
        """Products nearest to this one, excluding itself: attention fusion (per-product text/image
        shares, fuse/attention.py) or the cosine in the fused space ``x = [w_t·c; w_i·f]``."""
        st = self.state
        if product_id not in st.id_to_row:
            raise NotFoundError(f"unknown product id {product_id!r}")
        if not 1 <= k <= 1000:
            raise QueryError(f"k must be between 1 and 1000, got {k}")
        row = st.id_to_row[product_id]
        attention = self.attention() if st.config.fuse.mode == "attention" else None
        if attention is not None:
            pim = st.product_image_vectors
            alpha = attention.alpha(st.text_vectors[row], pim[row], bool(st.has_text[row]), bool(st.has_image[row]))
            scores = attention_similarity(st, row, alpha)
        else:
            scores = fused_similarity(st, row, self.cfg_fuse_weights())
        scores[row] = -np.inf
        allowed = self.filter_mask(filters)
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        n = int(np.isfinite(scores).sum())
        order = np.argsort(-scores, kind="stable")[: min(k, n)]
        hits = tuple(
            Hit(st.products[int(r)], float(scores[r]), i + 1, {"fused": float(scores[r])})
            for i, r in enumerate(order)
        )
        return SearchResult(hits, n, {}, {})

    def attention(self) -> AttentionFusion | None:
        """The attention-fusion gate, learned once per index generation (at its first use)."""
        st = self.state
        if "fuse_attention" not in st._derived:
            from ..fuse.attention import fit_attention

            st._derived["fuse_attention"] = fit_attention(
                st.text_vectors, st.product_image_vectors, st.has_text, st.has_image, st.facet_items
            )
        gate: AttentionFusion | None = st._derived["fuse_attention"]
        return gate

    def cfg_fuse_weights(self) -> tuple[float, float]:
        f = self.state.config.fuse
        return f.text_weight, f.image_weight


def attention_similarity(st: IndexState, row: int, alpha: float) -> np.ndarray:
    """``α·c·c' + (1 − α)·f·f'`` with the product's own text share α (attention fusion)."""
    text_part = (st.text_vectors @ st.text_vectors[row]) * st.has_text * bool(st.has_text[row])
    pim = st.product_image_vectors
    image_part = (pim @ pim[row]) if pim.shape[1] else np.zeros(st.n, np.float32)
    return np.asarray(alpha * text_part + (1.0 - alpha) * image_part, np.float32)


def fused_similarity(st: IndexState, row: int, weights: tuple[float, float]) -> np.ndarray:
    """Cosine between product ``row`` and every product in the concatenated space ``[w_t·c; w_i·f]``.

    Each block is unit-norm or zero, so ``|x|² = w_t²·has_text + w_i²·has_image`` and the cosine
    is ``(w_t²·c·c' + w_i²·f·f') / (|x|·|x'|)`` without materialising the concatenation.
    """
    wt2, wi2 = weights[0] ** 2, weights[1] ** 2
    has_t = st.has_text.astype(np.float32)
    has_i = st.has_image.astype(np.float32)
    text_part = (st.text_vectors @ st.text_vectors[row]) * has_t * has_t[row]
    pim = st.product_image_vectors
    image_part = (pim @ pim[row]) if pim.shape[1] else np.zeros(st.n, np.float32)
    norms = np.sqrt(wt2 * has_t + wi2 * has_i)
    denom = norms * norms[row]
    out = np.divide(wt2 * text_part + wi2 * image_part, denom, out=np.zeros(st.n, np.float32), where=denom > 0)
    return out.astype(np.float32)
