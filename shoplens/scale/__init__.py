"""Scale-out on Ray: distributed batch encoding and a sharded index behind the Engine interface."""

from __future__ import annotations

from .split import shard_of, split_index

__all__ = ["ShardedEngine", "shard_of", "split_index"]


def __getattr__(name: str) -> object:
    # ShardedEngine needs ray; import it only when asked for.
    if name == "ShardedEngine":
        from .sharded import ShardedEngine

        return ShardedEngine
    raise AttributeError(name)
