"""Guards at the door: the API key (compared in constant time) and request body size limits."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .settings import ServeSettings

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the key in SHOPLENS_API_KEY")

UPLOAD_PATHS = ("/search/image",)


def key_matches(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison, so response timing reveals nothing about the key."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def settings_of(request: Request) -> ServeSettings:
    settings: ServeSettings = request.app.state.settings
    return settings


async def require_write_key(
    request: Request, key: Annotated[str | None, Depends(api_key_header)] = None
) -> None:
    """Write endpoints: a configured key is required, and must match."""
    settings = settings_of(request)
    if not settings.api_key:
        raise HTTPException(403, "writes are disabled: start the server with SHOPLENS_API_KEY set")
    if not key_matches(key, settings.api_key):
        raise HTTPException(401, "missing or wrong API key (header X-API-Key)", {"WWW-Authenticate": "ApiKey"})


async def require_read_key(
    request: Request, key: Annotated[str | None, Depends(api_key_header)] = None
) -> None:
    """Read endpoints: open unless the server was started with ``protect_reads``."""
    settings = settings_of(request)
    if settings.protect_reads and not key_matches(key, settings.api_key):
        raise HTTPException(401, "missing or wrong API key (header X-API-Key)", {"WWW-Authenticate": "ApiKey"})


WriteKey = Depends(require_write_key)
ReadKey = Depends(require_read_key)


class BodyLimitMiddleware:
    """Refuse request bodies over the limit with 413, by Content-Length and while streaming (chunked)."""

    def __init__(self, app: ASGIApp, max_json_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_json = max_json_bytes
        self.max_upload = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload if scope.get("path") in UPLOAD_PATHS else self.max_json
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _reject(send, limit)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # HTTPException passes through FastAPI's body parsing unchanged (anything else is a 400).
                    raise HTTPException(413, f"request body over the {limit:,}-byte limit")
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _reject(send: Send, limit: int) -> None:
    body = (
        '{"error":{"type":"PayloadTooLarge","status":413,'
        f'"message":"request body over the {limit:,}-byte limit"}}}}'
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
