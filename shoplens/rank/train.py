"""Turn judged queries into a learning-to-rank training set by running the engine's retrieval."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from ..errors import ShoplensError
from ..index.lexical import segment
from ..index.state import IndexState
from ..types import Query
from .ltr import TrainingSet
from .understand import QueryUnderstanding, Understood, stem_words

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger(__name__)


HISTORY_SIZE = 4
HISTORY_COPIES = 2  # personalised copies per judged query (different histories)
CONFUSION = 0.2  # share of attribute values the lexical-blind variant gets wrong, as paraphrases do
COMPATIBLE_SHARE = 0.5  # another value is "as good" when judges graded it fully this often…
COMPATIBLE_MIN = 3  # …over at least this many judged products


def value_compatibility(
    st: IndexState, qu: QueryUnderstanding, queries: Sequence[tuple[str, Query]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, dict[str, dict[str, float]]]:
    """Which other values the judges graded as fully relevant as the asked one: for a query asking
    field = a (recognised in its words), the judged products that have every other asked value and
    b ≠ a on that field; b is compatible with a when most of them got the query's top grade (a shop
    whose judges count "Unisex" for "Women" teaches it; nothing is assumed about the values)."""
    counts: dict[tuple[str, str, str], list[int]] = {}
    for qid, q in queries:
        judged = qrels.get(qid)
        if not judged or not q.text:
            continue
        top = max(judged.values())
        asked = {f: v for f, (v, c) in qu.understand(q.text).attributes.items() if c >= 1.0}
        for pid, grade in judged.items():
            row = st.id_to_row.get(pid)
            if row is None:
                continue
            items = dict(st.facet_items[row])
            for f, a in asked.items():
                b = items.get(f)
                if b is None or b == a or any(items.get(g) != v for g, v in asked.items() if g != f):
                    continue
                c = counts.setdefault((f, a, b), [0, 0])
                c[0] += 1
                c[1] += int(grade >= top)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (f, a, b), (n, good) in sorted(counts.items()):
        if n >= COMPATIBLE_MIN and good >= COMPATIBLE_SHARE * n:
            out.setdefault(f, {}).setdefault(a, {})[b] = round(good / n, 3)
    return out


PREFERENCE_FIELD_SHARE = 0.05  # a field shoppers ask for in at least this share of the judged queries


def preference_fields(qu: QueryUnderstanding, queries: Sequence[tuple[str, Query]], qrels: Mapping[str, Mapping[str, int]]) -> list[str]:
    """The fields a shopping history may state a preference on: those the judged queries ask for in
    their words (audience, colour, product type in a fashion shop), read by the same understanding.
    A field nobody asks for (the year a product was listed, its season) is not what a shopper's
    history says about them, and one product of 2013 would otherwise outweigh its audience."""
    asked: Counter[str] = Counter()
    n = 0
    for qid, q in queries:
        if not qrels.get(qid) or not q.text:
            continue
        n += 1
        asked.update({f for f, (_v, c) in qu.understand(q.text).attributes.items() if c >= 1.0})
    return sorted(f for f, k in asked.items() if k >= max(1.0, PREFERENCE_FIELD_SHARE * n))


def confuse(qu: QueryUnderstanding, understood: Understood, rng: np.random.Generator) -> Understood:
    """Understanding as a paraphrase or a translation would get it: without the catalogue's own
    words, an embedding match sometimes lands on a neighbouring value ("tee shirt" → "Shirts"), and
    is never fully sure. Judged queries in the catalogue's words always understand right; without
    this the ranker learns to trust attribute matches blindly."""
    out: dict[str, tuple[str, float]] = {}
    for field, (value, _conf) in understood.attributes.items():
        other = qu.confusable(field, value)
        if other is not None and rng.random() < CONFUSION:
            out[field] = (other[0], round(min(other[1], 0.95), 3))
        else:
            out[field] = (value, round(float(rng.uniform(0.7, 0.95)), 3))
    return replace(understood, attributes=out)


HistoryOption = tuple[list[str], list[int], tuple[str, str]]  # words kept, products with the value, (field, value)


def history_options(st: IndexState, q: Query, understood: Understood | None) -> list[HistoryOption]:
    """The values of a judged query that a history can stand for: per recognised value, the query's
    other words and the products that have the value and none of the query's other values. One pass
    over the catalogue per value, so a query's copies share it."""
    if understood is None or not q.text:
        return []
    words = segment(q.text)
    options = []
    for field, (value, conf) in understood.attributes.items():
        vwords = set(stem_words(value))
        kept = [w for w in words if stem_words(w)[0:1] and stem_words(w)[0] not in vwords]
        if conf < 1.0 or not kept or len(kept) == len(words):
            continue
        others = {(f, v) for f, (v, _c) in understood.attributes.items() if f != field}
        pool = [r for r, items in enumerate(st.facet_items) if (field, value) in items and not others & set(items)]
        if len(pool) >= HISTORY_SIZE:
            options.append((kept, pool, (field, value)))
    return options


def history_variant(
    st: IndexState,
    q: Query,
    understood: Understood | None,
    rng: np.random.Generator,
    realistic: bool = False,
    options: list[HistoryOption] | None = None,
) -> Query | None:
    """The judged query with one recognised attribute value taken out of its words and given by a
    shopping history instead ("men grey socks" → "grey socks" + four products for men of other
    kinds), so that the ranker learns what a history says. None when no value can be moved.

    ``realistic``: a history as shoppers leave them, of 1 to 6 products, where one of three or more
    may lack the value (a gift, a partner's purchase), so that the ranker learns how far a short or
    mixed history can be trusted. ``options``: history_options of the query, when already known."""
    if options is None:
        options = history_options(st, q, understood)
    if not options:
        return None
    kept, pool, moved = options[int(rng.integers(len(options)))]
    size = int(rng.integers(1, HISTORY_SIZE + 3)) if realistic else HISTORY_SIZE
    picked = [int(r) for r in rng.choice(pool, min(size, len(pool)), replace=False)]
    if realistic and len(picked) >= 3 and rng.random() < 0.5:
        # One product without the value, drawn by rejection (no pass over a large catalogue).
        for r in rng.integers(len(st.facet_items), size=64):
            if moved not in st.facet_items[int(r)]:
                picked[int(rng.integers(len(picked)))] = int(r)
                break
    history = tuple(st.products[r].id for r in picked)
    return Query(" ".join(kept), q.image, q.filters, history, q.k, q.offset, q.user)


def build_training_set(
    engine: Engine, queries: Sequence[tuple[str, Query]], qrels: Mapping[str, Mapping[str, int]], augment: bool = True, seed: int = 0
) -> TrainingSet:
    """Candidates and features per judged query (the same retrieval the engine serves with)."""
    st = engine.state
    reranker = engine.reranker
    retriever = engine.retriever()
    rng = np.random.default_rng(seed)
    compatible = value_compatibility(st, reranker.understanding(st), queries, qrels)
    if compatible:
        log.info("values judged as good as the asked ones: %s", compatible)
    pref_fields = preference_fields(reranker.understanding(st), queries, qrels)
    log.info("fields a history may prefer (asked by the judged queries): %s", pref_fields)
    xs, ys, groups, qids = [], [], [], []
    todo = list(queries)
    if augment:
        # Personalised copies of the judged queries (history instead of one of the query's words).
        for qid, q in list(todo):
            if qrels.get(qid) and q.text and not q.history:
                options = history_options(st, q, reranker.understanding(st).understand(q.text))
                for n in range(HISTORY_COPIES):
                    hq = history_variant(st, q, None, rng, realistic=n > 0, options=options)
                    if hq is not None:
                        todo.append((f"{qid}#history{n or ''}", hq))
    for qid, q in tqdm(todo, desc="features for training", unit="q", disable=None if engine.config.encode.progress else True):
        judged = qrels.get(qid.split("#")[0])
        if not judged:
            continue
        try:
            vq = retriever.validate(q)
            runs = retriever.candidates(vq, None, {})
        except ShoplensError as e:
            log.warning("training query %s skipped: %s", qid, e)
            continue
        variants = [(runs, retriever.coverage, True)]
        if vq.text and augment and not vq.history:
            # The same query as if its words were unknown to the catalogue (another language, a
            # paraphrase): no BM25, attributes understood through embeddings only. Judged queries
            # are usually in the catalogue's words; this teaches the ranker what to trust otherwise.
            variants.append(({k: v for k, v in runs.items() if k != "bm25"}, 0.0, False))
        for var_runs, coverage, lexical in variants:
            fused = retriever.fuse(var_runs, vq, coverage)
            ctx = reranker.context(st, vq, retriever.text_vector if vq.text else None, coverage, lexical)
            ctx = replace(ctx, compatible=compatible, pref_fields=frozenset(pref_fields))
            if not lexical and ctx.understood is not None:
                ctx = replace(ctx, understood=confuse(reranker.understanding(st), ctx.understood, rng))
            rows, x = reranker.features(st, fused, var_runs, ctx)
            if len(rows) < 2:
                continue
            y = np.array([max(int(judged.get(st.products[r].id, 0)), 0) for r in rows], np.int32)
            xs.append(x)
            ys.append(y)
            groups.append(len(rows))
            qids.append(qid if lexical else f"{qid}#blind")
    if not groups:
        return TrainingSet(np.zeros((0, 0), np.float32), np.zeros(0, np.int32), [], [], compatible, pref_fields)
    return TrainingSet(np.vstack(xs), np.concatenate(ys), groups, qids, compatible, pref_fields)
