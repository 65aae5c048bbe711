"""Turn judged queries into a learning-to-rank training set by running the engine's retrieval."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from ..errors import ShoplensError
from ..types import Query
from .ltr import TrainingSet

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger(__name__)


def build_training_set(
    engine: Engine, queries: Sequence[tuple[str, Query]], qrels: Mapping[str, Mapping[str, int]], augment: bool = True
) -> TrainingSet:
    """Candidates and features per judged query (the same retrieval the engine serves with)."""
    st = engine.state
    reranker = engine.reranker
    retriever = engine.retriever()
    xs, ys, groups, qids = [], [], [], []
    for qid, q in tqdm(queries, desc="features for training", unit="q", disable=None if engine.config.encode.progress else True):
        judged = qrels.get(qid)
        if not judged:
            continue
        try:
            vq = retriever.validate(q)
            runs = retriever.candidates(vq, None, {})
        except ShoplensError as e:
            log.warning("training query %s skipped: %s", qid, e)
            continue
        variants = [(runs, retriever.coverage, True)]
        if vq.text and augment:
            # The same query as if its words were unknown to the catalogue (another language, a
            # paraphrase): no BM25, attributes understood through embeddings only. Judged queries
            # are usually in the catalogue's words; this teaches the ranker what to trust otherwise.
            variants.append(({k: v for k, v in runs.items() if k != "bm25"}, 0.0, False))
        for var_runs, coverage, lexical in variants:
            fused = retriever.fuse(var_runs, vq, coverage)
            ctx = reranker.context(st, vq, retriever.text_vector if vq.text else None, coverage, lexical)
            rows, x = reranker.features(st, fused, var_runs, ctx)
            if len(rows) < 2:
                continue
            y = np.array([max(int(judged.get(st.products[r].id, 0)), 0) for r in rows], np.int32)
            xs.append(x)
            ys.append(y)
            groups.append(len(rows))
            qids.append(qid if lexical else f"{qid}#blind")
    if not groups:
        return TrainingSet(np.zeros((0, 0), np.float32), np.zeros(0, np.int32), [], [])
    return TrainingSet(np.vstack(xs), np.concatenate(ys), groups, qids)
