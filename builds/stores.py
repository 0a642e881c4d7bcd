"""The store the web process reads, which on several hosts shares no disk with the workers.

The web server has a store of its own (STUDIO_DATA_DIR): the base images it was seeded with,
and whatever it fetched. With a shared cache (STUDIO_CACHE_INDEX, STUDIO_CACHE_REGISTRY) its
reads go through it as a worker's do: a cache record is read from Redis, and a layer or an image
built on another host is pulled from the registry, checked against its digest, and kept in the
web's store for the next time. Without one, the web reads its store as it is (one host: the
workers' own).

Every reader of the store in the web (the step inspector, predictions, the images' disk usage,
comparisons, a classroom's image paths) takes it from here, and asks for a layer or an image
with `layer_here` / `image_here` before reading its files.
"""

from __future__ import annotations

import functools
import logging

from django.conf import settings

from builds.engine.sharedcache import SharedCacheIndex
from builds.engine.store import Image, Store
from builds.engine.store.evict import evict

log = logging.getLogger(__name__)


def shared_cache(store: Store) -> SharedCacheIndex | None:
    """Give `store` the cache every host shares, when the studio has one (STUDIO_CACHE_INDEX)."""
    if not settings.CACHE_INDEX_URL:
        return None
    shared = SharedCacheIndex(store, redis_url=settings.CACHE_INDEX_URL, repository=settings.CACHE_REGISTRY)
    store.cache_index = shared  # type: ignore[assignment]
    return shared


@functools.cache
def _web_store(root: str, index_url: str, registry: str) -> Store:
    # One per process and settings: a shared index holds a Redis pool and a thread pool.
    store = Store(root)
    shared_cache(store)
    return store


def web_store() -> Store:
    """The web process's store, reading through the shared cache when there is one."""
    return _web_store(str(settings.STUDIO_DATA_DIR), settings.CACHE_INDEX_URL, settings.CACHE_REGISTRY)


def _shared(store: Store) -> SharedCacheIndex | None:
    # A store's cache_index is declared as the local CacheIndex; shared_cache swaps it.
    index: object = store.cache_index
    return index if isinstance(index, SharedCacheIndex) else None


def layer_here(store: Store, layer_id: str) -> bool:
    """Whether the layer is in `store`, fetched from the shared cache if it was not."""
    if store.has_layer(layer_id):
        return True
    shared = _shared(store)
    if shared is None or not shared.fetch_layer(layer_id):
        return False
    keep_under_limit(store)
    return True


def image_here(store: Store, digest: str) -> Image | None:
    """The image `digest` with its layers in `store`, fetched from the shared cache if need be;
    None when neither has it."""
    shared = _shared(store)
    if shared is None:
        return store.get_image(digest)
    image = store.get_image(digest)
    if image is not None and all(store.has_layer(layer) for layer in image.layers):
        return image
    image = shared.fetch_image(digest)
    keep_under_limit(store)
    return image


def keep_under_limit(store: Store) -> int:
    """What the web fetched is a cache too: kept under STUDIO_STORE_MAX_BYTES as a worker's
    store is (least recently used layers first, none used within a build's time limit).
    Returns how many layers went."""
    if not settings.STORE_MAX_BYTES:
        return 0
    done = evict(store, settings.STORE_MAX_BYTES, grace_s=settings.BUILD_TIME_LIMIT_S)
    if done.layers:
        log.info("store: evicted %d layers (%d bytes)", len(done.layers), done.bytes)
    return len(done.layers)
