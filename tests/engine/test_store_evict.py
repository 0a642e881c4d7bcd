"""A worker's store as a cache with a size: past it the least recently used layers go, never a
base image's or one in use, and with the shared cache (a real Redis and a real registry) a build
that needs an evicted layer is still served from the cache, pulling it back."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builds.engine.sharedcache import SharedCacheIndex
from builds.engine.store import Store
from builds.engine.store.evict import evict, store_layers
from tests.conftest import RedisServer
from tests.engine.registry_server import RegistryServer, running_registry
from tests.engine.test_sharedcache import layer_tar

from .conftest import BASE, Project

HOUR = 3600.0


def aged(store: Store, layer_id: str, seconds_ago: float) -> None:
    """Say the layer was last used `seconds_ago`."""
    when = time.time() - seconds_ago
    os.utime(store.layers / f"{layer_id}.json", (when, when))


def sizes(store: Store) -> dict[str, int]:
    return {held.id: held.size for held in store_layers(store)}


def test_past_the_limit_the_least_recently_used_layers_go_first(store: Store) -> None:
    base = set(sizes(store))  # the busybox image's, tagged
    old = store.import_layer(layer_tar("old.bin", b"o" * 4000))
    older = store.import_layer(layer_tar("older.bin", b"p" * 4000))
    recent = store.import_layer(layer_tar("recent.bin", b"r" * 4000))
    aged(store, older.id, 3 * HOUR)
    aged(store, old.id, 2 * HOUR)
    aged(store, recent.id, 90)
    for layer in base:
        aged(store, layer, 10 * HOUR)  # the oldest of all, but a base image's
    total = sum(sizes(store).values())

    done = evict(store, total - 1, grace_s=HOUR)

    assert done.layers == [older.id]  # one was enough, and it was the least recently used
    assert not store.has_layer(older.id) and not (store.layers / f"{older.id}.json").exists()
    assert store.has_layer(old.id) and store.has_layer(recent.id)
    assert all(store.has_layer(layer) for layer in base)


def test_layers_used_within_the_grace_and_base_images_are_kept_whatever_the_limit(store: Store) -> None:
    base = set(sizes(store))
    stale = store.import_layer(layer_tar("stale.bin", b"s" * 1000))
    fresh = store.import_layer(layer_tar("fresh.bin", b"f" * 1000))
    aged(store, stale.id, 2 * HOUR)
    aged(store, fresh.id, 60)  # a running build may be using it

    done = evict(store, 0, grace_s=HOUR)

    assert done.layers == [stale.id]
    assert store.has_layer(fresh.id) and all(store.has_layer(layer) for layer in base)


def test_a_cache_hit_marks_its_layer_used(project: Callable[..., Project]) -> None:
    proj = project({"Dockerfile": f"FROM {BASE}\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n",
                    "a.txt": "a\n", "b.txt": "b\n"})
    first = proj.build()
    a_layer = first.step("COPY a.txt")["layer"]["digest"][7:23]
    b_layer = first.step("COPY b.txt")["layer"]["digest"][7:23]
    aged(proj.store, a_layer, 3 * HOUR)
    aged(proj.store, b_layer, 3 * HOUR)
    proj.write({"b.txt": "b, edited\n"})

    assert ("COPY a.txt /a.txt", "cached") in proj.build().verdicts()

    # The hit made a.txt's layer recent; b.txt's old one is no longer used and goes.
    done = evict(proj.store, 0, grace_s=HOUR)
    assert done.layers == [b_layer]
    assert proj.store.has_layer(a_layer)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServer]:
    with running_registry(tmp_path / "registry") as server:
        yield server


@pytest.fixture
def shared(store: Store, redis_server: RedisServer, registry: RegistryServer) -> Iterator[SharedCacheIndex]:
    index = SharedCacheIndex(store, redis_url=redis_server.url,
                             repository=f"{registry.host}/cache-{uuid.uuid4().hex[:8]}")
    store.cache_index = index  # type: ignore[assignment]
    yield index
    index.close()


def test_a_build_that_needs_an_evicted_layer_is_still_cached_by_pulling_it(
    project: Callable[..., Project], shared: SharedCacheIndex
) -> None:
    scope = f"user:{uuid.uuid4().hex}"
    proj = project({"Dockerfile": f"FROM {BASE}\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copy.txt\n",
                    "app.txt": "x" * 50_000})
    first = proj.build(cache_scope=scope)
    assert first.result.status == "succeeded", first.finished
    assert shared.drain(timeout=60)
    built = [step["layer"]["digest"][7:23] for step in first.steps if step["layer"]]
    for layer in built:
        aged(proj.store, layer, 2 * HOUR)

    done = evict(proj.store, 0, grace_s=HOUR)
    assert sorted(done.layers) == sorted(built)
    assert not any(proj.store.has_layer(layer) for layer in built)

    again = proj.build(cache_scope=scope)
    assert again.result.status == "succeeded", again.finished
    assert again.verdicts() == [("COPY app.txt /app.txt", "cached"),
                                ("RUN cat /app.txt > /copy.txt", "cached")]
    assert all(proj.store.has_layer(layer) for layer in built)
    assert shared.blobs.traffic.pulled > 0


def test_an_evicted_layers_copied_files_leave_the_disk_once_its_tree_is_deleted(
    project: Callable[..., Project],
) -> None:
    """A COPY's files are stored once, in f/, and linked into each layer holding them: evicting
    the layer must free them too, or the store never shrinks."""
    proj = project({"Dockerfile": f"FROM {BASE}\nCOPY big.bin /big.bin\nCOPY kept.txt /kept.txt\n",
                    "big.bin": "b" * 300_000, "kept.txt": "kept\n"})
    first = proj.build()
    big_layer = first.step("COPY big.bin")["layer"]["digest"][7:23]
    kept_layer = first.step("COPY kept.txt")["layer"]["digest"][7:23]

    def blob_bytes() -> int:
        return sum(path.stat().st_size for path in (proj.store.root / "f").rglob("*") if path.is_file())

    assert blob_bytes() >= 300_000
    aged(proj.store, big_layer, 3 * HOUR)
    assert evict(proj.store, 0, grace_s=HOUR).layers == [big_layer]
    assert blob_bytes() >= 300_000  # its tree is in the trash, still linking the blob

    assert proj.store.empty_trash() >= 1

    assert blob_bytes() < 1000  # gone with the layer; kept.txt's blob stays
    assert proj.store.has_layer(kept_layer)
    assert (proj.store.layer_path(kept_layer) / "kept.txt").read_text() == "kept\n"
    # The next build copies the file again, into a layer of the same content.
    again = proj.build()
    assert again.step("COPY big.bin")["layer"]["digest"][7:23] == big_layer
    assert blob_bytes() >= 300_000
