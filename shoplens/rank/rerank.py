"""Re-rank the fused candidates: learned ranker when trained, shopper history when given."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..index.state import IndexState
from ..retrieve.fusion import reciprocal_rank_fusion
from ..types import Query
from .behaviour import Behaviour, load_behaviour
from .features import FEATURES, QueryContext, candidate_features
from .glossary import Glossary, load_glossary
from .ltr import RANKER_DIR, Ranker
from .personal import build_profile, named_fields, open_preferences, preference_match
from .recommend import EventIndex
from .understand import QueryUnderstanding, Understood, ValuePairs

log = logging.getLogger(__name__)

Fused = list[tuple[int, float, dict[str, int]]]


@dataclass
class RerankOutcome:
    fused: Fused
    features: dict[int, np.ndarray] = field(default_factory=dict)  # doc → feature row
    understood: Understood | None = None
    # The shopper's history preferences that took part (field → (value, share)), for explanations.
    preferences: dict[str, tuple[str, float]] = field(default_factory=dict)


def _asked(ctx: QueryContext) -> dict[str, str]:
    return {f: v for f, (v, _c) in ctx.understood.attributes.items()} if ctx.understood is not None else {}


def preference_scores(st: IndexState, rows: np.ndarray, ctx: QueryContext) -> np.ndarray:
    """How well each candidate fits the shopper's consistent preferences on the fields the query
    leaves open (measured: mixing in history likeness of whole products pulled other product types
    up and lowered nDCG@10 on the fashion dev queries)."""
    match, clash = preference_match(st, ctx.profile, _asked(ctx), rows, ctx.compatible, strong=True, fields=ctx.pref_fields)
    return match - clash


class Reranker:
    """Holds the ranker, the query-understanding vocabulary and behaviour stats of one index."""

    def __init__(
        self,
        index_path: Path,
        encode: Callable[[list[str]], np.ndarray],
        depth: int = 100,
        history_weight: float = 1.0,
        cache_dir: Path | None = None,
        encode_query: Callable[[list[str]], np.ndarray] | None = None,
    ):
        self.index_path = index_path
        self.encode_query = encode_query
        self.cache_dir = cache_dir
        self.encode = encode
        self.depth = depth
        self.history_weight = history_weight
        self.ranker: Ranker | None = Ranker.load(index_path / RANKER_DIR)
        self._behaviour: tuple[int, Behaviour] | None = None
        self._events: EventIndex | None = None

    def reload(self) -> None:
        self.ranker = Ranker.load(self.index_path / RANKER_DIR)
        self._behaviour = None
        self._events = None

    def events(self) -> EventIndex:
        """Users' histories and baskets from the event log (reloaded after new events)."""
        if self._events is None:
            self._events = EventIndex.load(self.index_path)
        return self._events

    def user_history(self, user: str | None) -> list[str]:
        """The stored history of a shopper (their id pseudonymised with the index's event key)."""
        if not user:
            return []
        from ..serve.events import EventLog, pseudonymise

        events = self.events()
        if not events.histories:
            return []
        return events.history_of(pseudonymise(EventLog(self.index_path).key, user))

    def understanding(self, st: IndexState) -> QueryUnderstanding:
        qu = st._derived.get("understanding")
        if qu is None:
            qu = QueryUnderstanding(
                st.products,
                st.facet_items,
                self.encode,
                st.text_vectors,
                st.has_text,
                self.glossary,
                self.encode_query,
                ValuePairs(st.columns.facet_column),
            )
            st._derived["understanding"] = qu
        return qu

    def glossary(self) -> Glossary | None:
        """The Chinese–English dictionary, loaded at the first Chinese query."""
        return load_glossary(cache_dir=str(self.cache_dir) if self.cache_dir else None)

    def behaviour(self, st: IndexState) -> Behaviour:
        if self._behaviour is None or self._behaviour[0] != id(st):
            self._behaviour = (id(st), load_behaviour(self.index_path, st.id_to_row))
        return self._behaviour[1]

    def context(
        self, st: IndexState, q: Query, text_vector: np.ndarray | None, coverage: float, lexical: bool = True
    ) -> QueryContext:
        understood = self.understanding(st).understand(q.text, lexical=lexical) if q.text else None
        history = q.history or tuple(self.user_history(q.user))
        meta = self.ranker.meta if self.ranker is not None else {}
        # The fields a history may state preferences on: those the ranker's judged queries asked
        # for; without a ranker, those the catalogue's titles name (a ranker trained before
        # preference fields were recorded saw every field, and keeps them).
        fields = meta.get("preference_fields")
        pref_fields = frozenset(fields) if fields is not None else (named_fields(st) if self.ranker is None and history else None)
        return QueryContext(
            text_vector,
            coverage,
            understood,
            build_profile(st, history),
            self.depth,
            meta.get("compatible", {}),
            pref_fields,
        )

    def features(self, st: IndexState, fused: Fused, runs: dict[str, list[tuple[int, float]]], ctx: QueryContext) -> tuple[np.ndarray, np.ndarray]:
        top = fused[: self.depth]
        rows = np.array([d for d, _, _ in top], np.int64)
        x = candidate_features(st, rows, {d: s for d, s, _ in top}, runs, ctx, self.behaviour(st))
        if ctx.text_vector is not None:
            gaps = self.understanding(st).prototype_gaps(ctx.text_vector, [st.facet_items[int(r)] for r in rows])
            x[:, FEATURES.index("proto_gap_sum")], x[:, FEATURES.index("proto_gap_max")] = gaps
        return rows, x

    def rerank(
        self, st: IndexState, q: Query, text_vector: np.ndarray | None, coverage: float, fused: Fused, runs: dict[str, list[tuple[int, float]]]
    ) -> RerankOutcome:
        if not fused or (self.ranker is None and not q.history and not q.user and not q.explain):
            return RerankOutcome(fused, {}, None)  # nothing to re-rank: skip query understanding
        ctx = self.context(st, q, text_vector, coverage)
        if self.ranker is None and ctx.profile is None:
            return RerankOutcome(fused, {}, ctx.understood)
        rows, x = self.features(st, fused, runs, ctx)
        ranks = {d: r for d, _, r in fused[: self.depth]}
        scores = self.ranker.predict(x) if self.ranker is not None else np.array([s for _, s, _ in fused[: self.depth]])
        order = np.argsort(-scores, kind="stable")
        learned = self.ranker is not None and bool(self.ranker.meta.get("history_queries"))
        prefs = open_preferences(st, ctx.profile, _asked(ctx), not learned, ctx.pref_fields) if ctx.profile is not None else {}
        if ctx.profile is not None and not learned:
            # A ranker trained on history-augmented queries weighs the history features itself;
            # otherwise personal similarity (attribute preferences + text and image likeness to the history),
            # fused by rank with the relevance order so that history re-orders, never replaces.
            personal = preference_scores(st, rows, ctx)
            runs_p = {
                "relevance": [(int(rows[i]), float(scores[i])) for i in order],
                "history": [(int(rows[i]), float(personal[i])) for i in np.argsort(-personal, kind="stable")],
            }
            merged = reciprocal_rank_fusion(runs_p, {"relevance": 1.0, "history": self.history_weight}, 60.0)
            head = [(d, s, ranks[d]) for d, s, _ in merged]
        else:
            head = [(int(rows[i]), float(scores[i]), ranks[int(rows[i])]) for i in order]
        # Candidates below the re-ranking depth keep their fused order, after the re-ranked head.
        floor = min(s for _, s, _ in head) if head else 0.0
        tail = [(d, floor - 1e-3 * (i + 1), r) for i, (d, _s, r) in enumerate(fused[self.depth :])]
        feats = {int(rows[i]): x[i] for i in range(len(rows))}
        return RerankOutcome(head + tail, feats, ctx.understood, prefs)

    def explain(self, rows_features: list[np.ndarray]) -> list[dict[str, float]]:
        if self.ranker is None or not rows_features:
            return [dict(zip(FEATURES, (round(float(v), 4) for v in f), strict=True)) for f in rows_features]
        return self.ranker.explain(np.vstack(rows_features))
