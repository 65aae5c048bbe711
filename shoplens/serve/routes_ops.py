"""Operations routes: shopper events, health, and Prometheus metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from .. import __version__
from .routes_search import ERRORS
from .runtime import Service, get_service
from .schemas import EventsRequest, EventsResponse, Health
from .security import ReadKey

router = APIRouter(tags=["operations"], responses=ERRORS)
Svc = Annotated[Service, Depends(get_service)]


@router.post("/events", response_model=EventsResponse, dependencies=[ReadKey], summary="Record shopper events")
async def post_events(svc: Svc, body: EventsRequest) -> EventsResponse:
    """Impressions, clicks, carts and purchases; user and session ids are stored only as HMAC pseudonyms."""
    n = await run_in_threadpool(svc.events.append, [e.model_dump() for e in body.events])
    return EventsResponse(accepted=n)


@router.get("/health", response_model=Health, summary="Liveness and the loaded index")
async def health(svc: Svc) -> Health:
    engine = await svc.fresh_engine()
    n = len(engine)
    return Health(
        status="ok" if n else "empty",
        products=n,
        generation=svc.handle.generation(),
        version=__version__,
        search_workers=svc.search_pool.workers,
    )


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (text format)")
async def metrics(svc: Svc) -> PlainTextResponse:
    engine = await svc.fresh_engine()
    state = svc.handle.state()
    photos = int(state.image_vectors.shape[0]) if state is not None else 0
    disk = await run_in_threadpool(_folder_bytes, state.path) if state is not None and state.path else 0
    gauges = {
        "shoplens_index_products": ("Products in the loaded index generation.", float(len(engine))),
        "shoplens_index_photos": ("Photos (image vectors) in the loaded index generation.", float(photos)),
        "shoplens_index_disk_bytes": ("Bytes on disk of the loaded index generation.", float(disk)),
        "shoplens_search_pool_workers": ("Threads that run searches and encoders.", float(svc.search_pool.workers)),
        "shoplens_search_pool_pending": ("Searches running or queued.", float(svc.search_pool.pending)),
        "shoplens_search_pool_capacity": ("Searches admitted before shedding with 503.", float(svc.search_pool.capacity)),
    }
    counters = {
        "shoplens_shed_requests_total": (
            "Requests refused with 503 because the server was at capacity.",
            float(svc.search_pool.rejected + svc.write_pool.rejected),
        ),
    }
    for kind, n in sorted(svc.events.counts.items()):
        counters[f'shoplens_events_total{{type="{kind}"}}'] = ("Shopper events recorded, by type.", float(n))
    text = svc.metrics.render(gauges, counters)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


def _folder_bytes(folder: Path) -> int:
    total = 0
    for f in folder.rglob("*"):
        try:
            total += f.stat().st_size if f.is_file() else 0
        except OSError:  # collected by a writer meanwhile
            continue
    return total
