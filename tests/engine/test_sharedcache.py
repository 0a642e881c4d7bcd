"""The shared cache between two stores (two hosts' disks), against a real Redis and a real
registry: a record made on one is served on the other with its layer pulled, and anything the
other cannot fetch or trust is a miss, never an error."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from builds.engine.sharedcache import SharedCacheIndex
from builds.engine.store import Store
from tests.conftest import RedisServer
from tests.engine.registry_server import RegistryServer, running_registry


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServer]:
    with running_registry(tmp_path / "registry") as server:
        yield server


def layer_tar(name: str, content: bytes) -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(content), 1_700_000_000
        tar.addfile(info, io.BytesIO(content))
    out.seek(0)
    return out


def host(tmp_path: Path, name: str, redis_url: str, repository: str) -> tuple[Store, SharedCacheIndex]:
    store = Store(tmp_path / name)
    shared = SharedCacheIndex(store, redis_url=redis_url, repository=repository)
    store.cache_index = shared  # type: ignore[assignment]
    return store, shared


def built_on(store: Store, shared: SharedCacheIndex, scope: str, key: str) -> dict[str, object]:
    layer = store.import_layer(layer_tar("app.py", b"print('hi')\n"))
    manifest = store.put_json({"app.py": "sha256:" + "a" * 64})
    record = {"key": key, "parent": "base", "layer": layer.id, "notes": {"manifest": manifest},
              "created": 1.0}
    shared.scope(scope).record(key, record, parent="base")
    assert shared.drain(timeout=60)
    return record


TwoHosts = tuple[Store, SharedCacheIndex, Store, SharedCacheIndex]


@pytest.fixture
def two_hosts(tmp_path: Path, redis_server: RedisServer, registry: RegistryServer) -> Iterator[TwoHosts]:
    repository = f"{registry.host}/cache-{uuid.uuid4().hex[:8]}"
    a = host(tmp_path, "a", redis_server.url, repository)
    b = host(tmp_path, "b", redis_server.url, repository)
    yield (*a, *b)
    a[1].close()
    b[1].close()


def test_a_record_made_on_one_host_is_served_on_another_with_its_layer(two_hosts: TwoHosts) -> None:
    store_a, shared_a, store_b, shared_b = two_hosts
    scope, key = f"user:{uuid.uuid4().hex}", "sha256:" + uuid.uuid4().hex * 2
    record = built_on(store_a, shared_a, scope, key)
    assert not store_b.has_layer(str(record["layer"]))

    found = shared_b.scope(scope).lookup(key)
    assert found is not None and found["layer"] == record["layer"]
    assert store_b.has_layer(str(record["layer"]))
    assert store_b.get_json(found["notes"]["manifest"]) == {"app.py": "sha256:" + "a" * 64}
    assert [r["key"] for r in shared_b.scope(scope).children("base")] == [key]
    # Another scope reads none of it.
    assert shared_b.scope(scope + "-other").lookup(key) is None
    assert shared_b.scope(scope + "-other").children("base") == []
    assert shared_a.blobs.traffic.pushed > 0 and shared_b.blobs.traffic.pulled > 0


def test_a_record_whose_blob_is_another_layer_is_a_miss(
    two_hosts: TwoHosts, redis_server: RedisServer
) -> None:
    import redis

    store_a, shared_a, store_b, shared_b = two_hosts
    scope, key = f"user:{uuid.uuid4().hex}", "sha256:" + uuid.uuid4().hex * 2
    record = built_on(store_a, shared_a, scope, key)
    # Someone points the record at a layer it is not (a bad writer, or bytes gone wrong).
    other = store_a.import_layer(layer_tar("evil.sh", b"echo owned\n"))
    shared_a.blobs.push_layer(other.id)
    prefix = shared_a.scope(scope).prefix
    client = redis.Redis.from_url(redis_server.url)
    tampered = json.loads(client.get(f"{prefix}:r:{key}"))
    tampered["shared"]["layer_blob"] = shared_a.blobs.push_layer(other.id)
    client.set(f"{prefix}:r:{key}", json.dumps(tampered))

    assert shared_b.scope(scope).lookup(key) is None
    assert not store_b.has_layer(str(record["layer"]))


def test_with_the_registry_gone_a_record_elsewhere_is_a_miss_and_local_ones_still_hit(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with running_registry(tmp_path / "registry") as server:
        repository = f"{server.host}/cache"
        store_a, shared_a = host(tmp_path, "a", redis_server.url, repository)
        _, shared_b = host(tmp_path, "b", redis_server.url, repository)
        scope, key = f"user:{uuid.uuid4().hex}", "sha256:" + uuid.uuid4().hex * 2
        built_on(store_a, shared_a, scope, key)
    assert shared_b.scope(scope).lookup(key) is None  # could not fetch it: built again here
    assert shared_a.scope(scope).lookup(key) is not None  # its own disk still has it


def test_with_redis_away_records_stay_on_the_hosts_disk(tmp_path: Path, registry: RegistryServer) -> None:
    store, shared = host(tmp_path, "a", "redis://127.0.0.1:1/0", f"{registry.host}/cache")
    layer = store.import_layer(layer_tar("app.py", b"x"))
    shared.scope("user:1").record("k", {"key": "k", "layer": layer.id}, parent="base")
    assert shared.drain(timeout=60)  # the failure to share is logged, not raised
    assert shared.scope("user:1").lookup("k") == {"key": "k", "layer": layer.id}
    assert shared.scope("user:1").lookup("other") is None


def test_an_image_built_on_one_host_can_be_had_on_another_by_its_digest(two_hosts: TwoHosts) -> None:
    from builds.engine.store import Image

    store_a, shared_a, store_b, shared_b = two_hosts
    layer = store_a.import_layer(layer_tar("app.py", b"print('image')\n"))
    image = Image(config={"architecture": "amd64", "os": "linux",
                          "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}}, layers=[layer.id])
    digest = store_a.put_image(image)
    assert shared_a.share_image(image)  # its layer was in no record: it goes up with the image

    found = shared_b.fetch_image(digest)
    assert found is not None and found.layers == [layer.id]
    assert store_b.has_layer(layer.id)
    assert [c.path for c in store_b.layer(layer.id, changes=True).changes] == ["app.py"]
    # An image nobody shared, and names that are not digests or layer ids, are not had.
    assert shared_b.fetch_image("sha256:" + "0" * 64) is None
    assert shared_b.fetch_image("../../etc/passwd") is None
    assert shared_b.fetch_layer("../" + layer.id) is False
