"""What shoppers did: per-product impressions, clicks, carts and purchases from the event log, smoothed rates."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

EVENT_TYPES = ("impression", "click", "cart", "purchase")
# Position-bias correction (Joachims et al., 2017): a click at position p counts 1/propensity(p),
# propensity(p) = (1/p)^η with η = 1 unless the log says otherwise.
ETA = 1.0


@dataclass(frozen=True)
class Behaviour:
    """Arrays aligned with the index's products."""

    impressions: np.ndarray
    clicks: np.ndarray  # position-debiased
    carts: np.ndarray
    purchases: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Behaviour:
        z = np.zeros(n, np.float32)
        return cls(z, z.copy(), z.copy(), z.copy())

    def features(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Smoothed rates (Laplace-style prior toward the catalogue mean, 10 pseudo-impressions)."""
        imp = self.impressions[rows]
        prior_ctr = float(self.clicks.sum() / max(self.impressions.sum(), 1.0))
        prior_conv = float(self.purchases.sum() / max(self.impressions.sum(), 1.0))
        a = 10.0
        return {
            "popularity": np.log1p(self.clicks[rows] + 3 * self.carts[rows] + 10 * self.purchases[rows]),
            "ctr": (self.clicks[rows] + a * prior_ctr) / (imp + a),
            "conversion": (self.purchases[rows] + a * prior_conv) / (imp + a),
        }


def load_behaviour(index: Path, id_to_row: dict[str, int]) -> Behaviour:
    """Aggregate ``INDEX/events/events.jsonl``; unknown products and malformed lines are skipped."""
    n = len(id_to_row)
    b = Behaviour.empty(n)
    path = index / "events" / "events.jsonl"
    if not path.is_file():
        return b
    bad = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            ev = json.loads(line)
            row = id_to_row.get(str(ev.get("product", ev.get("product_id"))))
            kind = ev.get("type")
        except (json.JSONDecodeError, AttributeError):
            bad += 1
            continue
        if row is None or kind not in EVENT_TYPES:
            continue
        pos = ev.get("position")
        if kind == "impression":
            b.impressions[row] += 1
        elif kind == "click":
            weight = float(pos) ** ETA if isinstance(pos, int | float) and pos >= 1 else 1.0
            b.clicks[row] += min(weight, 20.0)
        elif kind == "cart":
            b.carts[row] += 1
        else:
            b.purchases[row] += 1
    if bad:
        log.warning("%s: %d malformed event lines skipped", path, bad)
    return b
