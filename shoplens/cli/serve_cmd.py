"""``shoplens serve``: the REST API and the shopper's web page over one index."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from ..errors import ConfigError, MissingDependencyError, NotFoundError
from ..index import atomic

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the REST API and the web page",
        description="Serve INDEX_DIR over HTTP. Writes need SHOPLENS_API_KEY set in the environment; "
        "events pseudonymise user ids with SHOPLENS_EVENT_KEY (or a random per-index key).",
    )
    p.add_argument("index", type=Path, metavar="INDEX_DIR")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="server processes (each loads the models)")
    p.add_argument("--search-workers", type=int, default=0, help="search threads per process (0 = cores / workers)")
    p.add_argument("--queue", type=int, default=0, help="searches that may wait before 503 (0 = 4 × threads)")
    p.add_argument("--image-root", type=Path, help="PUT /products may name photos relative to this folder")
    p.add_argument("--no-image-urls", action="store_true", help="refuse http(s) photo URLs in PUT /products")
    p.add_argument("--protect-reads", action="store_true", help="reads need the API key too")
    p.add_argument("--no-warmup", action="store_true", help="load the models on the first query instead")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError as e:
        raise MissingDependencyError("uvicorn", "serve", "shoplens serve") from e
    from ..serve.app import create_app
    from ..serve.settings import ENV_SETTINGS, ServeSettings, usable_cores

    if not (args.index / atomic.CURRENT).is_file():
        raise NotFoundError(f"{args.index} is not a shoplens index; build one with `shoplens index`")
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    threads = args.search_workers or max(1, usable_cores() // args.workers)
    settings = ServeSettings.from_env(
        args.index.resolve(),
        search_workers=threads,
        search_queue=args.queue,
        image_root=str(args.image_root.resolve()) if args.image_root else None,
        allow_image_urls=not args.no_image_urls,
        protect_reads=args.protect_reads,
        warmup=not args.no_warmup,
    )
    if settings.api_key is None:
        log.warning("SHOPLENS_API_KEY is not set: PUT and DELETE are refused")
    level = "info" if logging.getLogger().isEnabledFor(logging.INFO) else "warning"
    print(f"shoplens: serving {args.index} on http://{args.host}:{args.port}/ (API docs at /docs)", flush=True)
    if args.workers == 1:
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=level)
    else:  # each worker process builds its own app from the settings (secrets stay in the environment)
        os.environ[ENV_SETTINGS] = settings.to_json()
        uvicorn.run("shoplens.serve.app:app_from_env", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level=level)
    return 0
