"""The evaluation report: per-query and per-type scores, run comparisons and plots on one self-contained HTML page."""

from __future__ import annotations

import base64
import html
import io
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError

log = logging.getLogger(__name__)

COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


@dataclass(frozen=True)
class RunScores:
    """One evaluated run: a display name, its source file, mean metrics and metrics per query."""

    name: str
    path: str
    means: Mapping[str, float]
    per_query: Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class Comparison:
    """How one metric changed per query from a baseline run to another run (delta = other − baseline)."""

    baseline: str
    other: str
    deltas: Mapping[str, float]
    wins: int
    ties: int
    losses: int

    @property
    def mean_delta(self) -> float:
        return sum(self.deltas.values()) / len(self.deltas) if self.deltas else 0.0


# --- pure helpers ---------------------------------------------------------------------------------


def query_type(qid: str) -> str:
    """The qid's prefix before its first digit, without trailing separators: ``dattr000`` → ``dattr``."""
    prefix = re.split(r"\d", qid, maxsplit=1)[0].rstrip("-_.:/ ")
    return prefix or "other"


def group_by_type(qids: Sequence[str], types: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Query ids per type (from ``types`` where given, else from the qid prefix), both sorted."""
    groups: dict[str, list[str]] = {}
    for qid in qids:
        groups.setdefault((types or {}).get(qid) or query_type(qid), []).append(qid)
    return {t: sorted(groups[t]) for t in sorted(groups)}


def value(run: RunScores, qid: str, metric: str) -> float:
    """One query's ``metric`` in ``run``; 0.0 for a query the run did not score."""
    return run.per_query.get(qid, {}).get(metric, 0.0)


def mean_over(per_query: Mapping[str, Mapping[str, float]], qids: Sequence[str], metric: str) -> float:
    """Mean of ``metric`` over ``qids`` (a query missing from ``per_query`` counts 0); 0.0 when empty."""
    return sum(per_query.get(q, {}).get(metric, 0.0) for q in qids) / len(qids) if qids else 0.0


def compare(base: RunScores, other: RunScores, metric: str = "ndcg@10", tie: float = 1e-9) -> Comparison:
    """Per-query deltas of ``metric`` and wins / ties / losses of ``other`` against ``base``."""
    qids = sorted(set(base.per_query) | set(other.per_query))
    deltas = {q: value(other, q, metric) - value(base, q, metric) for q in qids}
    wins = sum(1 for d in deltas.values() if d > tie)
    losses = sum(1 for d in deltas.values() if d < -tie)
    return Comparison(base.name, other.name, deltas, wins, len(deltas) - wins - losses, losses)


# --- plots ----------------------------------------------------------------------------------------


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, imported here only (it is an optional dependency)."""
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("matplotlib", "report", "the evaluation report") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def plot_per_query(runs: Sequence[RunScores], groups: Mapping[str, list[str]], metric: str) -> str:
    """``metric`` per query: the first run as bars, later runs as dots; by type, best first within a type."""
    plt = _pyplot()
    order = [q for qids in groups.values() for q in sorted(qids, key=lambda q: -value(runs[0], q, metric))]
    fig, ax = plt.subplots(figsize=(min(max(8.0, 0.2 * len(order)), 12.0), 3.6))
    x = np.arange(len(order))
    for i, run in enumerate(runs):
        values = [value(run, q, metric) for q in order]
        if i == 0:
            ax.bar(x, values, 0.8 if len(order) <= 120 else 1.0, label=run.name, color=COLOURS[0], alpha=0.75)
        else:
            ax.scatter(x, values, s=12, label=run.name, color=COLOURS[i % 6], zorder=3)
    start = 0
    for t, qids in groups.items():
        if start:
            ax.axvline(start - 0.5, color="#888", lw=0.8, ls="--")
        ax.text(start + len(qids) / 2 - 0.5, 1.04, t, ha="center", va="bottom", fontsize=9)
        start += len(qids)
    if len(order) <= 60:
        ax.set_xticks(x, order, rotation=90, fontsize=7)
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{len(order)} queries by type, best first (by {runs[0].name})")
    ax.set(ylim=(0, 1.12), xlim=(-0.6, len(order) - 0.4), ylabel=metric)
    if len(runs) > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return _data_uri(fig)


def plot_per_type(runs: Sequence[RunScores], groups: Mapping[str, list[str]], metric: str) -> str:
    """Mean ``metric`` per query type (bars) with every query's value (dots) on top."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(groups) * max(len(runs), 1.5)), 3.4))
    width = 0.8 / len(runs)
    rng = np.random.default_rng(0)  # fixed jitter: the same data gives the same picture
    for i, run in enumerate(runs):
        for j, qids in enumerate(groups.values()):
            xc = j + (i - (len(runs) - 1) / 2) * width
            ax.bar(xc, mean_over(run.per_query, qids, metric), width * 0.9, color=COLOURS[i % 6], alpha=0.55,
                   label=run.name if j == 0 else None)
            vals = [value(run, q, metric) for q in qids]
            ax.scatter(xc + rng.uniform(-width / 4, width / 4, len(vals)), vals, s=9, color=COLOURS[i % 6], zorder=3)
    ax.set_xticks(range(len(groups)), [f"{t}\n(n={len(q)})" for t, q in groups.items()])
    ax.set(ylim=(0, 1.05), ylabel=f"{metric} (bar: mean)")
    if len(runs) > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return _data_uri(fig)


def plot_delta(cmp: Comparison, metric: str) -> str:
    """Per-query change of ``metric`` from the baseline, sorted: green = better, red = worse."""
    plt = _pyplot()
    items = sorted(cmp.deltas.items(), key=lambda kv: kv[1], reverse=True)
    fig, ax = plt.subplots(figsize=(min(max(7.0, 0.12 * len(items)), 12.0), 3.0))
    colours = ["#55a868" if d > 0 else "#c44e52" if d < 0 else "#aaaaaa" for _, d in items]
    ax.bar(range(len(items)), [d for _, d in items], color=colours)
    ax.axhline(0, color="#333", lw=0.8)
    ax.set(xticks=[], xlabel="queries, sorted by change", ylabel=f"Δ {metric}")
    ax.set_title(f"{cmp.other} vs {cmp.baseline}: {cmp.wins} wins, {cmp.ties} ties, {cmp.losses} losses", fontsize=10)
    return _data_uri(fig)


def plot_importance(importance: Mapping[str, float], top: int = 25) -> str:
    """Horizontal bars of the ``top`` features by absolute importance, largest on top."""
    plt = _pyplot()
    items = sorted(importance.items(), key=lambda kv: abs(kv[1]), reverse=True)[:top][::-1]
    fig, ax = plt.subplots(figsize=(7.0, max(2.0, 0.28 * len(items) + 0.8)))
    ax.barh([k for k, _ in items], [v for _, v in items], color=COLOURS[0])
    ax.set_xlabel("importance")
    ax.tick_params(axis="y", labelsize=8)
    return _data_uri(fig)


def plot_latency(latency: Mapping[str, Sequence[float]]) -> str:
    """Histogram of per-query latency (ms) per run, with each run's p50 and p95 marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 3.2))
    every = np.concatenate([np.asarray(v, dtype=float) for v in latency.values() if len(v)] or [np.zeros(1)])
    bins = np.linspace(0.0, float(np.percentile(every, 99.5)) * 1.05 or 1.0, 40)
    for i, (name, values) in enumerate(latency.items()):
        arr = np.clip(np.asarray(values, dtype=float), None, bins[-1])  # the slowest land in the last bin
        ax.hist(arr, bins=bins, alpha=0.55, color=COLOURS[i % 6], label=name)
        for p, ls in ((50, "-"), (95, "--")):
            if len(arr):
                ax.axvline(float(np.percentile(values, p)), color=COLOURS[i % 6], ls=ls, lw=1)
    ax.set(xlabel="ms per query (solid: p50, dashed: p95)", ylabel="queries")
    ax.legend(fontsize=8)
    return _data_uri(fig)


# --- HTML -----------------------------------------------------------------------------------------

CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1150px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}.meta{color:#666;font-size:12px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
td.txt,th.txt{text-align:left}th{background:#f5f5f5}.up{color:#2a7a3b}.down{color:#b03030}
img{max-width:100%;display:block;margin:8px 0}"""


def _cell(v: Any, delta: bool) -> str:
    if isinstance(v, str):
        return f'<td class="txt">{html.escape(v)}</td>'
    if delta:
        return f'<td class="{"up" if v > 0 else "down" if v < 0 else "same"}">{v:+.4f}</td>'
    return f"<td>{v:.4f}</td>" if isinstance(v, float) else f"<td>{v}</td>"


def _table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], delta_cols: Sequence[int] = (), table_id: str = ""
) -> str:
    txt = {i for i, v in enumerate(rows[0]) if isinstance(v, str)} if rows else {0}
    head = "".join(f'<th class="{"txt" if i in txt else "num"}">{html.escape(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(_cell(v, i in delta_cols) for i, v in enumerate(row)) + "</tr>\n" for row in rows)
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def _per_query_table(runs: Sequence[RunScores], groups: Mapping[str, list[str]], metric: str) -> str:
    """Every metric of one run, or ``metric`` of each run plus its change from the first run."""
    names = list(runs[0].means)
    if len(runs) == 1:
        rows = [[q, t, *(value(runs[0], q, n) for n in names)] for t, qs in groups.items() for q in qs]
        return _table(["qid", "type", *names], rows, table_id="per-query")
    rows = [[q, t, *(value(r, q, metric) for r in runs), *(value(r, q, metric) - value(runs[0], q, metric) for r in runs[1:])]
            for t, qs in groups.items() for q in qs]
    header = ["qid", "type", *(f"{r.name} {metric}" for r in runs), *(f"Δ {r.name}" for r in runs[1:])]
    return _table(header, rows, range(2 + len(runs), 1 + 2 * len(runs)), "per-query")


def render_report(
    runs: Sequence[RunScores],
    qrels: str = "",
    types: Mapping[str, str] | None = None,
    importance: Mapping[str, float] | None = None,
    latency: Mapping[str, Sequence[float]] | None = None,
    metric: str = "ndcg@10",
) -> str:
    """The whole report as one HTML string: tables, and plots embedded as base64 PNG data URIs."""
    if not runs:
        raise ValueError("render_report needs at least one run")
    from .. import __version__

    names = list(runs[0].means)
    groups = group_by_type(sorted({q for r in runs for q in r.per_query}), types)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = html.escape(", ".join(r.name for r in runs))
    n_queries = sum(len(qs) for qs in groups.values())
    parts = [
        f"<h1>shoplens evaluation: {title}</h1>",
        f'<p class="meta">qrels {html.escape(qrels)} · {n_queries} judged queries · shoplens {__version__} · {when}</p>',
        "<h2>Summary</h2>",
        _table(["run", "file", "queries", *names], [[r.name, r.path, len(r.per_query), *r.means.values()] for r in runs]),
    ]
    comparisons = [compare(runs[0], r, metric) for r in runs[1:]]
    if comparisons:
        rows = [[c.other, c.mean_delta, c.wins, c.ties, c.losses] for c in comparisons]
        parts += [f"<h2>Before / after: {metric} against {html.escape(runs[0].name)}</h2>",
                  _table(["run", f"Δ mean {metric}", "wins", "ties", "losses"], rows, delta_cols=[1])]
        parts += [_img(plot_delta(c, metric), f"per-query change of {c.other}") for c in comparisons]
    type_rows = [[t, len(qs), *(mean_over(r.per_query, qs, metric) for r in runs)] for t, qs in groups.items()]
    parts += [f"<h2>{metric} per query type</h2>", _table(["type", "queries", *(r.name for r in runs)], type_rows),
              _img(plot_per_type(runs, groups, metric), f"{metric} per query type"),
              f"<h2>{metric} per query</h2>", _img(plot_per_query(runs, groups, metric), f"{metric} per query")]
    if latency:
        pct = [[n, len(v), *(float(np.percentile(v, p)) if len(v) else 0.0 for p in (50, 95, 99))]
               for n, v in latency.items()]
        parts += ["<h2>Latency</h2>", _table(["run", "queries", "p50 ms", "p95 ms", "p99 ms"], pct),
                  _img(plot_latency(latency), "latency histogram")]
    if importance:
        parts += [f"<h2>Feature importance ({len(importance)} features)</h2>",
                  _img(plot_importance(importance), "feature importance")]
    parts += ["<h2>Per query</h2>", _per_query_table(runs, groups, metric)]
    head = f'<meta charset="utf-8"><title>shoplens evaluation: {title}</title><style>{CSS}</style>'
    return f'<!DOCTYPE html>\n<html lang="en"><head>{head}</head><body>\n' + "\n".join(parts) + "\n</body></html>\n"


def write_report(out_dir: str | Path, runs: Sequence[RunScores], **kwargs: Any) -> Path:
    """Write ``render_report``'s page to ``out_dir/index.html`` (the folder is created) and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    path.write_text(render_report(runs, **kwargs), encoding="utf-8")
    log.info("wrote the evaluation report %s", path)
    return path
