"""A store kept under a size: its least recently used layers go when it is over.

With a shared cache (sharedcache.py) a worker's store is a cache of the registry: a layer that
went is pulled again the next time a cache record names it. Without one, the steps that made it
are built again.

What is never evicted:
- the layers of tagged images (the base images builds start from: `images seed`, `images
  import`, what FROM pulled);
- layers used within `grace_s` (a cache lookup that found the layer, or its commit, marks it
  used: l/<id>.json's mtime, usage.py). A running build uses only layers it looked up or made after it
  started, and no build runs longer than its time limit, so with `grace_s` at least that limit
  nothing a running build uses is taken from under it.

So the limit is a soft one: a store whose layers are all recent or tagged stays over it until
they age.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .core import Store

_LAYER_FACTS = re.compile(r"([0-9a-f]{16})\.json")


@dataclass
class Evicted:
    layers: list[str] = field(default_factory=list)
    bytes: int = 0  # of file content, as the layers' facts count it
    total: int = 0  # the store's layers, in bytes, before


@dataclass(frozen=True)
class _Held:
    id: str
    size: int
    used: float


def store_layers(store: Store) -> list[_Held]:
    """Every layer in the store with its size and when it was last used."""
    found = []
    with os.scandir(store.layers) as entries:
        for entry in entries:
            match = _LAYER_FACTS.fullmatch(entry.name)
            if match is None:
                continue
            try:
                used = entry.stat().st_mtime
                size = int(json.loads(Path(entry.path).read_bytes()).get("size") or 0)
            except (OSError, ValueError, AttributeError):
                continue  # going, or half-written by a racing writer: not ours to count now
            found.append(_Held(match.group(1), size, used))
    return found


def tagged_layers(store: Store) -> set[str]:
    """The layers of every tagged image."""
    layers: set[str] = set()
    for digest in set(store.tags().values()):
        with contextlib.suppress(ValueError):
            image = store.get_image(digest)
            if image is not None:
                layers.update(image.layers)
    return layers


def evict(store: Store, max_bytes: int, *, grace_s: float, now: float | None = None) -> Evicted:
    """Take layers out of `store`, least recently used first, until its layers hold at most
    `max_bytes` (or nothing more may go). One process at a time per store; another finds the
    lock taken and returns at once."""
    with store.lock_if_free("evict") as mine:
        if not mine:
            return Evicted()
        held = store_layers(store)
        total = sum(layer.size for layer in held)
        done = Evicted(total=total)
        if total <= max_bytes:
            return done
        keep = tagged_layers(store)
        cutoff = (time.time() if now is None else now) - grace_s
        for layer in sorted(held, key=lambda h: h.used):
            if total <= max_bytes:
                break
            if layer.id in keep or layer.used > cutoff:
                continue
            _remove(store, layer.id)
            total -= layer.size
            done.layers.append(layer.id)
            done.bytes += layer.size
        return done


def _remove(store: Store, layer_id: str) -> None:
    """The tree goes first (has_layer() is then false, so lookups stop serving it), into the
    trash, deleted when the store is idle; then its facts."""
    store.discard(store.layer_path(layer_id))
    for name in (f"{layer_id}.json", f"{layer_id}.changes.json"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(store.layers / name)


__all__ = ["Evicted", "evict", "store_layers", "tagged_layers"]
