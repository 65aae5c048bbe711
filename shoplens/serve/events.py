"""Shopper events (impressions, clicks, carts, purchases) appended to a JSONL log, user ids pseudonymised."""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENV_KEY = "SHOPLENS_EVENT_KEY"
EVENTS_DIR = "events"
LOG_NAME = "events.jsonl"
KEY_NAME = "key"


def pseudonymise(key: bytes, value: str) -> str:
    """HMAC-SHA256 of an identifier (RFC 2104): stable per key, not reversible without it."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def load_or_create_key(folder: Path) -> bytes:
    """A random per-index key, created once (0600) and shared by every worker process."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / KEY_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker may be writing it right now
            text = path.read_text(encoding="ascii").strip()
            if len(text) == 64:
                return bytes.fromhex(text)
            time.sleep(0.01)
        raise
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex())
        fh.flush()
        os.fsync(fh.fileno())
    return key


class EventLog:
    """Append-only ``INDEX/events/events.jsonl``; one locked write per batch, safe across processes."""

    def __init__(self, index: Path, key: str | None = None) -> None:
        self.folder = index / EVENTS_DIR
        self.path = self.folder / LOG_NAME
        self._key = key.encode("utf-8") if key else None
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    @property
    def key(self) -> bytes:
        """The given key, else ``SHOPLENS_EVENT_KEY``, else the index's random key file (same pseudonyms
        from the server and the CLI as long as they agree on the key)."""
        if self._key is None:
            env = os.environ.get(ENV_KEY)
            self._key = env.encode("utf-8") if env else load_or_create_key(self.folder)
        return self._key

    def append(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Write the events (user and session ids replaced by their HMAC); returns how many."""
        batch = list(events)
        now = time.time()
        lines = []
        for ev in batch:
            rec = {"ts": round(now, 3), **{k: v for k, v in ev.items() if v is not None}}
            for field in ("user", "session"):
                if field in rec:
                    rec[field] = pseudonymise(self.key, str(rec[field]))
            lines.append(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
        if not lines:
            return 0
        data = ("\n".join(lines) + "\n").encode("utf-8")
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # other worker processes append to the same file
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)  # closing releases the lock
            for ev in batch:
                kind = str(ev.get("type"))
                self.counts[kind] = self.counts.get(kind, 0) + 1
        return len(lines)
