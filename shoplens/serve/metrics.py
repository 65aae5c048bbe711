"""Request counts and latency histograms in the Prometheus text format, collected by an ASGI middleware."""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Seconds; upper bounds of the latency histogram buckets (+Inf is implied).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(v: float) -> str:
    """Exact: 6-digit ``%g`` would round big counters and byte sizes."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in kv.items()) + "}"


class Metrics:
    """Thread-safe counters and histograms for one process (each uvicorn worker keeps its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = {}
        self._hist: dict[str, list[int]] = {}
        self._sum: dict[str, float] = {}
        self.in_flight = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (method, route, str(status))
            self.requests[key] = self.requests.get(key, 0) + 1
            counts = self._hist.setdefault(route, [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sum[route] = self._sum.get(route, 0.0) + seconds

    def render(self, gauges: Mapping[str, tuple[str, float]], counters: Mapping[str, tuple[str, float]]) -> str:
        """The exposition text: request counter, latency histogram, then the given gauges and counters."""
        out = [
            "# HELP shoplens_http_requests_total HTTP requests by method, route template and status.",
            "# TYPE shoplens_http_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self.requests.items()):
                out.append(f"shoplens_http_requests_total{_labels(method=method, route=route, status=status)} {n}")
            out += [
                "# HELP shoplens_http_request_duration_seconds Time to answer a request, by route template.",
                "# TYPE shoplens_http_request_duration_seconds histogram",
            ]
            for route, counts in sorted(self._hist.items()):
                acc = 0
                for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                    acc += n
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    out.append(f"shoplens_http_request_duration_seconds_bucket{_labels(route=route, le=le)} {acc}")
                out.append(f"shoplens_http_request_duration_seconds_sum{_labels(route=route)} {self._sum[route]:.6f}")
                out.append(f"shoplens_http_request_duration_seconds_count{_labels(route=route)} {acc}")
            gauges = {"shoplens_http_requests_in_flight": ("Requests being answered now.", self.in_flight), **gauges}
        for kind, items in (("gauge", gauges), ("counter", counters)):
            for name, (help_text, value) in items.items():
                base = name.split("{", 1)[0]
                if not any(line.startswith(f"# HELP {base} ") for line in out):
                    out += [f"# HELP {base} {help_text}", f"# TYPE {base} {kind}"]
                out.append(f"{name} {_number(value)}")
        return "\n".join(out) + "\n"


class MetricsMiddleware:
    """Times every HTTP request and labels it with its route template (``/products/{product_id}``)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        self.metrics.in_flight += 1

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight -= 1
            self.metrics.observe(scope["method"], route_label(scope), status, time.perf_counter() - start)


def route_label(scope: Scope) -> str:
    """The matched route's template, so ids never become label values (bounded cardinality)."""
    route: Any = scope.get("route")
    # path_format: the template without converters ("/products/{product_id}", not "...:path}").
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "/static" if str(scope.get("path", "")).startswith("/static/") else "unmatched"
