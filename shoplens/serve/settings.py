"""One typed settings object for the web service, validated at start-up and passed to ``create_app``."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

ENV_SETTINGS = "SHOPLENS_SERVE_SETTINGS"  # JSON handed from the CLI to each uvicorn worker process


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServeSettings:
    """Everything the service needs to know; secrets come from the environment, never from flags."""

    index: str
    api_key: str | None = None  # writes need it; None = writes refused
    protect_reads: bool = False  # reads need the API key too
    image_root: str | None = None  # PUT /products may name photos relative to this folder
    allow_image_urls: bool = True  # PUT /products may name http(s) photo URLs
    search_workers: int = 0  # threads running searches and encoders; 0 = usable cores
    search_queue: int = 0  # requests that may wait for a worker; 0 = 4 × workers
    queue_timeout_s: float = 5.0  # a request that waited this long for a worker gets 503
    write_queue: int = 2  # writes that may wait behind the running one
    max_json_bytes: int = 32 * 1024 * 1024  # request body limit for JSON (PUT /products batches)
    max_upload_bytes: int = 12 * 1024 * 1024  # request body limit for photo uploads
    max_batch: int = 10_000  # products per PUT
    max_page_size: int = 100
    event_key: str | None = None  # HMAC key for user ids in events; None = a random key file
    warmup: bool = True  # load the encoders at start-up, not on the first query

    def __post_init__(self) -> None:
        for name in ("search_workers", "search_queue", "write_queue", "max_batch"):
            if getattr(self, name) < 0:
                raise ConfigError(f"serve setting {name} must be ≥ 0, got {getattr(self, name)}")
        for name in ("max_json_bytes", "max_upload_bytes", "max_page_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve setting {name} must be ≥ 1, got {getattr(self, name)}")
        if self.queue_timeout_s <= 0:
            raise ConfigError(f"serve setting queue_timeout_s must be > 0, got {self.queue_timeout_s}")
        if self.api_key is not None and len(self.api_key) < 8:
            raise ConfigError("SHOPLENS_API_KEY must be at least 8 characters")
        if self.protect_reads and not self.api_key:
            raise ConfigError("protect_reads needs an API key (set SHOPLENS_API_KEY)")

    @property
    def index_path(self) -> Path:
        return Path(self.index)

    @property
    def workers(self) -> int:
        return self.search_workers or usable_cores()

    @property
    def queue(self) -> int:
        return self.search_queue or 4 * self.workers

    @classmethod
    def from_env(cls, index: str | Path, **overrides: Any) -> ServeSettings:
        """Settings for ``index`` with secrets read from ``SHOPLENS_API_KEY`` / ``SHOPLENS_EVENT_KEY``."""
        values: dict[str, Any] = {
            "api_key": os.environ.get("SHOPLENS_API_KEY") or None,
            "event_key": os.environ.get("SHOPLENS_EVENT_KEY") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(index=str(index), **values)

    def to_json(self) -> str:
        """The settings without secrets (workers read those from the environment themselves)."""
        d = dataclasses.asdict(self)
        d.pop("api_key")
        d.pop("event_key")
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"bad serve settings: {e}") from e
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"unknown serve settings: {sorted(unknown)}")
        return cls.from_env(**raw)
