"""The one place ray is imported: a clear error naming the extra when it is missing."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import MissingDependencyError

log = logging.getLogger(__name__)


def import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise MissingDependencyError("ray", "scale", "scale-out on Ray") from e
    return ray


def connect(address: str | None) -> Any:
    """Join a Ray cluster (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:10001"``), or start one on this
    machine for ``None`` / ``"local"``; an existing connection is reused."""
    ray = import_ray()
    if not ray.is_initialized():
        if address in (None, "", "local"):
            ray.init(log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
        log.info("connected to Ray: %s", ray.cluster_resources())
    return ray
