""""Recommended for you" and "bought together" from the parts ranking already has: shopper
profiles (rank/personal.py) and the event log (rank/behaviour.py, serve/events.py)."""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..index.state import IndexState
from .personal import Profile, build_profile, preference_match

log = logging.getLogger(__name__)

HISTORY_LIMIT = 20  # most recent distinct products of a user that make their profile
ENGAGED = {"click": 1.0, "cart": 2.0, "purchase": 3.0}
BASKET = {"cart", "purchase"}


@dataclass(frozen=True)
class EventIndex:
    """Per pseudonymised user: the products they engaged with, oldest first; per product: who put
    it in a basket."""

    histories: dict[str, list[str]]
    baskets: dict[str, set[str]]  # user or session → products carted or bought
    basket_counts: Counter[str]  # product → how many baskets hold it

    @classmethod
    def load(cls, index: Path) -> EventIndex:
        path = index / "events" / "events.jsonl"
        histories: dict[str, list[str]] = defaultdict(list)
        baskets: dict[str, list[str]] = defaultdict(list)
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    ev = json.loads(line)
                    kind, product = ev.get("type"), ev.get("product")
                except (json.JSONDecodeError, AttributeError):
                    continue
                who = ev.get("session") or ev.get("user")
                if product is None or kind not in ENGAGED:
                    continue
                if ev.get("user"):
                    histories[str(ev["user"])].append(str(product))
                if who and kind in BASKET:
                    baskets[str(who)].append(str(product))
        sets = {who: set(items) for who, items in baskets.items()}
        counts: Counter[str] = Counter()
        for items in sets.values():
            counts.update(items)
        return cls(dict(histories), sets, counts)

    def history_of(self, user_hash: str) -> list[str]:
        """The user's most recent distinct products, oldest first (the order build_profile decays)."""
        seen: dict[str, None] = {}
        for pid in reversed(self.histories.get(user_hash, [])):
            if pid not in seen:
                seen[pid] = None
            if len(seen) >= HISTORY_LIMIT:
                break
        return list(reversed(seen))

    def co_baskets(self, product_id: str) -> Counter[str]:
        """How many baskets (users or sessions) hold each other product together with this one."""
        out: Counter[str] = Counter()
        for items in self.baskets.values():
            if product_id in items:
                out.update(items - {product_id})
        return out


def profile_scores(st: IndexState, profile: Profile) -> np.ndarray:
    """Every product's likeness to a profile: mean of text and photo likeness (whichever the
    profile has), plus its fit with the profile's consistent attribute values."""
    scores = np.zeros(st.n, np.float32)
    parts = 0
    if profile.text is not None:
        scores += (np.asarray(st.text_vectors) @ profile.text) * st.has_text
        parts += 1
    pim = st.product_image_vectors
    if profile.image is not None and pim.shape[1]:
        scores += pim @ profile.image
        parts += 1
    scores /= max(parts, 1)
    match, clash = preference_match(st, profile, {}, np.arange(st.n))
    return scores + 0.1 * (match - clash)


def recommend_rows(st: IndexState, history: Sequence[str], k: int) -> list[tuple[int, float]]:
    """Products for a shopper with this history (their own history left out)."""
    profile = build_profile(st, history)
    if profile is None:
        return []
    scores = profile_scores(st, profile)
    for pid in history:
        row = st.id_to_row.get(pid)
        if row is not None:
            scores[row] = -np.inf
    top = np.argsort(-scores, kind="stable")[:k]
    return [(int(r), float(scores[r])) for r in top if np.isfinite(scores[r])]


def together_rows(st: IndexState, events: EventIndex, product_id: str, k: int) -> list[tuple[int, float]]:
    """Products bought together with this one, by co-occurrence in baskets normalised by each
    product's own basket count (cosine), most frequent first; empty without basket data."""
    co = events.co_baskets(product_id)
    if not co:
        return []
    counts = events.basket_counts
    own = counts.get(product_id, 1)
    scored = [(pid, n / np.sqrt(own * counts[pid])) for pid, n in co.items() if pid in st.id_to_row]
    scored.sort(key=lambda t: (-t[1], t[0]))
    return [(st.id_to_row[pid], float(s)) for pid, s in scored[:k]]
