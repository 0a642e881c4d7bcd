"""A cache shared by stores on several hosts: the cache index in Redis, the layers in an OCI
registry, each store a local cache of both (what BuildKit's registry cache does).

    store.cache_index = SharedCacheIndex(store, redis_url=..., repository="host:5000/studio-cache")

Every scope's records live under Redis keys of their own (`studio:cache:<scope hash>:...`), so a
lookup still never reads outside its scope. A step built here is recorded on this store's disk at
once (the next build here finds it), and its layer (gzip, as Docker pushes it) and its file
manifest go to the registry on a thread of their own, never in the build's way; only once they are
there is the record written to Redis, so a record another host finds is one it can fetch. A host
that finds a record whose layer it lacks pulls the blob, unpacks it, checks it is the layer the
record names, and serves the step from the cache; when it cannot, the step is a miss, as with a
layer that has gone.

Layers and images are shared by every scope (only verdicts are not), so a host that is shown a
layer id or an image digest (the web server, whose store is its own) can fetch it too:
`studio:cache:layer:<id>` names the blob each shared layer went up as, and a built image's config
goes up as a blob of its own (its digest is the image's, and its rootfs lists its layers).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from .errors import EngineError
from .store import Image, Store
from .store.cacheindex import CacheIndex, DiskScope
from .store.usage import mark_used

log = logging.getLogger(__name__)

# A record names blobs the registry holds under these (its manifest of files, its layer).
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
PUSH_THREADS = 2
LAYER_KEY = "studio:cache:layer:"  # + layer id -> the digest of its blob in the registry
_LAYER_ID = re.compile(r"[0-9a-f]{16}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass
class Traffic:
    """Bytes this process moved through the registry, for benchmarks and logs."""

    pushed: int = 0
    pulled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *, pushed: int = 0, pulled: int = 0) -> None:
        with self.lock:
            self.pushed += pushed
            self.pulled += pulled


class SharedCacheIndex:
    """Every scope's index, shared through Redis and a registry repository; stands in for a
    store's CacheIndex (store.cache_index)."""

    def __init__(self, store: Store, *, redis_url: str, repository: str) -> None:
        self.store = store
        self.local = CacheIndex(store.root, store.housekeeping)
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        self.blobs = RegistryBlobs(store, repository)
        self.pushing = ThreadPoolExecutor(PUSH_THREADS, thread_name_prefix="cache-push")
        self.pending: list[Future[None]] = []
        self.lock = threading.Lock()

    def scope(self, name: str) -> SharedScope:
        return SharedScope(self, name, self.local.scope(name))

    def scope_root(self, name: str) -> Path:
        return self.local.scope_root(name)  # cache mounts stay each host's own

    def share(self, job: Any) -> None:
        with self.lock:
            self.pending = [f for f in self.pending if not f.done()]
            self.pending.append(self.pushing.submit(job))

    def drain(self, timeout: float | None = None) -> bool:
        """Wait for what this process is still pushing (a worker does, after a build's last
        event, so nothing it built is lost when it stops). True when all of it went."""
        with self.lock:
            pending = list(self.pending)
        _done, not_done = wait(pending, timeout=timeout)
        return not not_done

    def close(self) -> None:
        self.pushing.shutdown(wait=True)

    # -- layers and images, by name: for whoever is shown one built elsewhere -----------------
    def share_layer(self, layer_id: str) -> str:
        """Push the layer (once: the registry is asked first) and name its blob in Redis."""
        digest = self.blobs.push_layer(layer_id)
        self.redis.set(LAYER_KEY + layer_id, digest.encode())
        return digest

    def share_image(self, image: Image) -> bool:
        """Push a built image's config, and whichever of its layers no record shared (those of
        its base image), so any host can have the image by its digest. For the pushing thread:
        never raises (an image not shared is one other hosts cannot show); True when it went."""
        try:
            shared = self.redis.mget([LAYER_KEY + layer for layer in image.layers])
            for layer, digest in zip(image.layers, shared, strict=True):
                if digest is None and self.store.has_layer(layer):
                    self.share_layer(layer)
            self.blobs.push_json(image.digest)
        except Exception:
            log.exception("could not share the image %s", image.digest)
            return False
        return True

    def fetch_layer(self, layer_id: str) -> bool:
        """Make the layer this store's own, from the registry if need be. False when it cannot
        be had (never shared, registry or Redis away, wrong bytes)."""
        if not _LAYER_ID.fullmatch(layer_id):
            return False
        if self.store.has_layer(layer_id):
            return True
        try:
            raw = self.redis.get(LAYER_KEY + layer_id)
            digest = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
            if digest is None or not _DIGEST.fullmatch(digest):
                return False
            self.blobs.pull_layer(digest, layer_id)
        except (EngineError, OSError, redis.RedisError) as exc:
            log.warning("could not fetch layer %s from the shared cache: %s", layer_id, exc)
            return False
        return True

    def fetch_image(self, digest: str) -> Image | None:
        """The image `digest` with its layers in this store, fetched if need be; None when it
        cannot be had. Its config is checked against the digest, and its layers are the ones
        the config's rootfs names, so nothing fetched can claim another image's files."""
        if not _DIGEST.fullmatch(digest):
            return None
        image = self.store.get_image(digest)
        if image is None:
            try:
                if not self.store.blob_path(digest).exists():
                    self.blobs.pull_json(digest)
                config = self.store.get_json(digest)
                diff_ids = config["rootfs"]["diff_ids"]
                image = Image(config=config, layers=[str(d)[7:23] for d in diff_ids])
            except (EngineError, OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("could not fetch image %s from the shared cache: %s", digest, exc)
                return None
            if self.store.put_image(image) != digest:
                return None
        if not all(self.fetch_layer(layer) for layer in image.layers):
            return None
        return image


class SharedScope:
    """One scope's index: this store's records first, then the shared ones."""

    def __init__(self, index: SharedCacheIndex, name: str, local: DiskScope) -> None:
        self.index = index
        self.name = name
        self.local = local
        self.prefix = "studio:cache:" + hashlib.sha256(name.encode()).hexdigest()[:32]

    def lookup(self, key: str) -> dict[str, Any] | None:
        record = self.local.lookup(key)  # which marks its layer used
        if record is not None and self._present(record):
            return record
        try:
            data = self.index.redis.get(f"{self.prefix}:r:{key}")
        except redis.RedisError as exc:
            log.warning("the shared cache index is out of reach (%r): a local miss is a miss", exc)
            return None
        if data is None:
            return None
        shared = json.loads(data)
        if not self._fetch(shared):
            return None
        self.local.record(key, shared, parent=shared.get("parent") or "")
        mark_used(self.index.store.layers, shared.get("layer"))
        return shared

    def record(self, key: str, record: dict[str, Any], *, parent: str) -> None:
        self.local.record(key, record, parent=parent)
        self.index.share(lambda: self._share(key, record, parent))

    def children(self, parent: str) -> list[dict[str, Any]]:
        records = {r.get("key"): r for r in self.local.children(parent)}
        try:
            shared = self.index.redis.lrange(f"{self.prefix}:c:{parent}", 0, -1)
        except redis.RedisError:
            shared = []
        for data in shared:
            record = json.loads(data)
            records.setdefault(record.get("key"), record)
            self._fetch_manifest(record)
        return sorted(records.values(), key=lambda r: r.get("created") or 0)

    # -- the registry's side -----------------------------------------------------------------
    def _present(self, record: dict[str, Any]) -> bool:
        layer = record.get("layer")
        return layer is None or self.index.store.has_layer(layer)

    def _fetch(self, record: dict[str, Any]) -> bool:
        """Make the record's layer and manifest this store's own. False when they cannot be had."""
        try:
            layer = record.get("layer")
            if layer and not self.index.store.has_layer(layer):
                digest = (record.get("shared") or {}).get("layer_blob")
                if not digest:
                    return False
                self.index.blobs.pull_layer(digest, layer)
            return self._fetch_manifest(record)
        except (EngineError, OSError, redis.RedisError) as exc:
            log.warning("could not fetch layer %s from the shared cache: %s", record.get("layer"), exc)
            return False

    def _fetch_manifest(self, record: dict[str, Any]) -> bool:
        digest = (record.get("notes") or {}).get("manifest")
        if not digest or self.index.store.blob_path(digest).exists():
            return True
        try:
            self.index.blobs.pull_json(digest)
        except (EngineError, OSError) as exc:
            log.warning("could not fetch manifest %s from the shared cache: %s", digest, exc)
            return False
        return True

    def _share(self, key: str, record: dict[str, Any], parent: str) -> None:
        try:
            shared = dict(record)
            if record.get("layer"):
                shared["shared"] = {"layer_blob": self.index.share_layer(record["layer"])}
            manifest = (record.get("notes") or {}).get("manifest")
            if manifest:
                self.index.blobs.push_json(manifest)
            data = json.dumps(shared, ensure_ascii=False, separators=(",", ":"))
            pipe = self.index.redis.pipeline()
            pipe.set(f"{self.prefix}:r:{key}", data)
            pipe.rpush(f"{self.prefix}:c:{parent}", data)
            pipe.execute()
        except Exception:
            # The build it came from is done or going on; what was not shared is rebuilt elsewhere.
            log.exception("could not share the cache record %s", key)


class RegistryBlobs:
    """Blobs in one registry repository: layers gzip-compressed, JSON documents as they are."""

    def __init__(self, store: Store, repository: str) -> None:
        from .reference import parse_reference
        from .registry.settings import RegistrySettings

        self.store = store
        self.ref = parse_reference(repository)
        self.settings = RegistrySettings.from_env()  # the operator's own registry: any address
        self.traffic = Traffic()
        self.lock = threading.Lock()

    def _repo(self) -> Any:
        from .registry.client import open_repository

        return open_repository(self.ref, self.settings)

    def push_layer(self, layer_id: str) -> str:
        """Upload the layer unless the repository has it; returns its blob's digest."""
        from .registry.client import blob_exists, registry_errors
        from .registry.known import KnownBlob
        from .registry.push import LAYER_TAR, _chunks, _write_gzip

        layer = self.store.layer(layer_id)
        tar = KnownBlob(digest=layer.diff_id, diff_id=layer.diff_id, media_type=LAYER_TAR,
                        size=layer.tar_size, layer=layer_id)
        with tempfile.TemporaryFile(dir=self.store.tmp) as out:
            blob = _write_gzip(self.store, tar, out)  # the same bytes every time: pushed once
            with self._repo() as repo, registry_errors(self.ref):
                if not blob_exists(repo, blob.digest):
                    out.seek(0)
                    repo.push_blob(data=_chunks(out), digest=blob.digest, check_exists=False)
                    self.traffic.add(pushed=blob.size)
        return blob.digest

    def pull_layer(self, digest: str, layer_id: str) -> None:
        """Download the layer blob and unpack it into the store, refusing one that is not
        `layer_id` (the record and the registry disagree: someone's bytes are wrong)."""
        from .registry.client import registry_errors

        with tempfile.TemporaryFile(dir=self.store.tmp) as out:
            with self._repo() as repo, registry_errors(self.ref, digest):
                for chunk in repo.pull_blob(digest):  # dxf checks the digest as it reads
                    out.write(chunk)
            self.traffic.add(pulled=out.tell())
            out.seek(0)
            layer = self.store.import_layer(out)
        if layer.id != layer_id:
            raise EngineError(f"blob {digest} unpacks to layer {layer.id}, not {layer_id}")

    def push_json(self, digest: str) -> None:
        from .registry.client import blob_exists, registry_errors

        with self._repo() as repo, registry_errors(self.ref, digest):
            if not blob_exists(repo, digest):
                data = self.store.blob_path(digest).read_bytes()
                repo.push_blob(data=data, digest=digest, check_exists=False)
                self.traffic.add(pushed=len(data))

    def pull_json(self, digest: str) -> None:
        from .registry.client import registry_errors

        with self._repo() as repo, registry_errors(self.ref, digest):
            data = b"".join(repo.pull_blob(digest))
        self.traffic.add(pulled=len(data))
        if self.store.put_blob(data) != digest:
            raise EngineError(f"blob {digest} from the shared cache does not match its digest")
