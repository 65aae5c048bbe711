"""The FastAPI app factory: wires settings, the engine, worker pools, routes, the page and error handling."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..engine import Engine
from ..errors import ShoplensError
from . import routes_ops, routes_products, routes_search
from .docs import add_docs, local_swagger_assets
from .events import EventLog
from .metrics import Metrics, MetricsMiddleware
from .runtime import EngineHandle, OverloadedError, Service, WorkerPool
from .security import BodyLimitMiddleware
from .settings import ENV_SETTINGS, ServeSettings

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
# The page loads nothing from elsewhere; photos may be redirects to http(s) catalogue URLs.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob: https: http:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
DESCRIPTION = (
    "Multimodal product search: Chinese or English text, a photo, or both. Reads are open unless the "
    "server protects them; writes need the `X-API-Key` header (the key in `SHOPLENS_API_KEY`)."
)


def create_app(settings: ServeSettings, engine: Engine | None = None) -> FastAPI:
    """Build the service for one index; pass ``engine`` to share an already open one (tests, embedding)."""
    owns_engine = engine is None
    engine = engine if engine is not None else Engine.open(settings.index_path)
    handle = EngineHandle(engine)
    handle.warm()
    svc = Service(
        settings=settings,
        handle=handle,
        search_pool=WorkerPool("search", settings.workers, settings.queue, settings.queue_timeout_s),
        # One writer at a time (the engine serialises writes anyway); a short queue, then 503.
        write_pool=WorkerPool("write", 1, settings.write_queue, queue_timeout_s=600.0),
        events=EventLog(settings.index_path, settings.event_key),
        metrics=Metrics(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.warmup:
            await run_in_threadpool(warm_up, svc)
        log.info("serving %s (%d products, %d search workers)", settings.index, len(engine), svc.search_pool.workers)
        yield
        svc.search_pool.close()
        svc.write_pool.close()
        if owns_engine:
            engine.close()

    local_docs = local_swagger_assets() is not None
    app = FastAPI(title="shoplens", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None if local_docs else "/docs")
    if local_docs:
        add_docs(app)
    app.state.settings = settings
    app.state.service = svc
    # routes_search first: its /products/{id}/similar and /together must be tried before
    # routes_products' /products/{id}, whose id (a path parameter: ids may hold "/") would take them.
    for module in (routes_search, routes_products, routes_ops):
        app.include_router(module.router)
    add_error_handlers(app)
    add_page(app)
    # Outermost last: metrics see every request, including ones refused for their size.
    app.add_middleware(BodyLimitMiddleware, max_json_bytes=settings.max_json_bytes,
                       max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware, metrics=svc.metrics)
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes: settings from ``SHOPLENS_SERVE_SETTINGS``, secrets from env."""
    raw = os.environ.get(ENV_SETTINGS)
    if not raw:
        raise ShoplensError(f"{ENV_SETTINGS} is not set; start the server with `shoplens serve INDEX_DIR`")
    return create_app(ServeSettings.from_json(raw))


def warm_up(svc: Service) -> None:
    """Load both encoders now so the first shopper does not wait for model loading."""
    engine = svc.engine
    try:
        engine.encode_query_text("warm up")
        engine.query_image_encoder.encode([Image.new("RGB", (32, 32), (255, 255, 255))])
    except ShoplensError as e:  # a missing optional model must not stop text search from starting
        log.warning("warm-up incomplete: %s", e)


def error_response(status: int, kind: str, message: str, headers: dict[str, str] | None = None,
                   details: list[str] | None = None) -> JSONResponse:
    body: dict[str, object] = {"type": kind, "status": status, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    """One mapping from errors to responses: ShoplensError.http_status, clear messages, never a traceback."""

    @app.exception_handler(ShoplensError)
    async def shoplens_error(request: Request, exc: ShoplensError) -> Response:
        status = int(getattr(exc, "http_status", 500))
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, OverloadedError) else None
        if status >= 500 and status != 503 and status != 501:
            log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
            return error_response(status, "InternalError", "internal server error (see the server log)")
        return error_response(status, type(exc).__name__.rstrip("_"), str(exc), headers, getattr(exc, "details", None))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers) if exc.headers else None
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path[:200]}"
        return error_response(exc.status_code, "HTTPError", message, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = []
        for err in exc.errors()[:20]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "request"
            details.append(f"{where}: {err.get('msg', 'invalid')}")
        message = "invalid request: " + "; ".join(details[:3])
        return error_response(422, "ValidationError", message, details=details)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "InternalError", "internal server error (see the server log)")


def add_page(app: FastAPI) -> None:
    """The shopper's page at ``/`` and its static files (plain HTML/CSS/JS, no build step)."""

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
