"""Pull an image from a registry into the store.

The manifest is read first (a manifest list or OCI index is narrowed to the configured
platform); every blob is checked against its digest as it arrives (dxf raises at the end of a
blob that does not match), and every layer against its config's diff_id as it is unpacked.
Layers the store already holds are not fetched. All blobs are downloaded (three at a time)
and checked before any is imported, so a failed download stores nothing; the image is stored and tagged only
once every layer is in (a layer that contradicts its config's diff_id may stay, untagged).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from dxf import DXF

from ..events import ImagePull
from ..reference import Reference, parse_reference
from ..store import Image, Store
from ..store.objects import parse_json
from .client import RegistryError, open_repository, registry_errors
from .known import KnownBlob, KnownBlobs
from .settings import Platform, RegistrySettings
from .transfer import Report, Transfer

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
CHUNK = 1 << 20
PARALLEL_DOWNLOADS = 3
PROGRESS_WAIT_S = 0.1


@dataclass
class PullResult:
    image: Image
    manifest_digest: str
    fetched: int = 0  # bytes of blobs downloaded
    layers: list[dict[str, Any]] = field(default_factory=list)  # {digest, size, status}


@dataclass
class _Layer:
    descriptor: dict[str, Any]
    diff_id: str
    stored: str | None = None  # the store's layer id, when it has it already
    download: Path | None = None

    @property
    def digest(self) -> str:
        return str(self.descriptor["digest"])

    @property
    def size(self) -> int:
        return int(self.descriptor.get("size") or 0)


def pull(store: Store, text: str, *, settings: RegistrySettings | None = None,
         report: Report | None = None) -> PullResult:
    """Pull `text` (a Docker-style reference) and tag it in the store under its name."""
    settings = settings or RegistrySettings.from_env()
    ref = parse_reference(text)
    transfer = Transfer(ImagePull, text, report)
    known = KnownBlobs(store)
    with open_repository(ref, settings) as repo, registry_errors(ref):
        manifest, digests = _resolve(repo, ref, settings.platform)
        layers = [_Layer(d, "") for d in manifest.get("layers") or []]
        transfer.whole("resolved", 0, sum(layer.size for layer in layers), digest=digests[-1],
                       layers=len(layers))
        # Pulls of one image take turns (a class pressing Build at once, FROM the same image):
        # the first fetches it, the others then find it stored.
        with store.lock(f"pull-{digests[-1]}"):
            image = _known_image(store, known, digests)
            fetched = 0
            if image is None:
                image, fetched = _fetch(store, known, repo, ref, settings, manifest, layers, transfer)
            else:
                for layer in layers:
                    transfer.layer(layer.digest, "exists", layer.size, layer.size)
            for digest in digests:
                known.remember_manifest(digest, image.digest)
            if ref.store_name:
                store.tag(ref.store_name, image.digest)
    transfer.whole("done", fetched, fetched, digest=digests[-1], image_id=image.digest)
    return PullResult(image=image, manifest_digest=digests[-1], fetched=fetched,
                      layers=[{"digest": layer.digest, "size": layer.size,
                               "status": "pulled" if layer.download else "exists"} for layer in layers])


def _fetch(store: Store, known: KnownBlobs, repo: DXF, ref: Reference, settings: RegistrySettings,
           manifest: dict[str, Any], layers: list[_Layer], transfer: Transfer) -> tuple[Image, int]:
    """Download what the store lacks, check it all, then import it: the image and the bytes
    fetched."""
    config = _json_blob(repo, manifest["config"]["digest"], ref)
    _check_diff_ids(config, layers, ref)
    for layer in layers:
        layer.stored = known.layer_for(layer.digest, layer.diff_id)
        status = "exists" if layer.stored else "waiting"
        transfer.layer(layer.digest, status, layer.size if layer.stored else 0, layer.size)
    missing: dict[str, _Layer] = {}
    for layer in layers:
        if layer.stored is None:
            missing.setdefault(layer.digest, layer)
    tmp = store.work_dir("pull")
    try:
        _download_all(lambda: open_repository(ref, settings), list(missing.values()), tmp, transfer)
        for layer in layers:  # a layer listed twice is downloaded and imported once
            if layer.stored is None:
                layer.stored = known.layer_for(layer.digest, layer.diff_id) or _import(
                    store, known, ref, layer, transfer)
    finally:
        store.discard(tmp)  # the downloaded tarballs: deleted later, out of the build's way
    stored = [layer.stored for layer in layers if layer.stored]
    config["rootfs"] = {"type": "layers", "diff_ids": [store.layer(layer_id).diff_id for layer_id in stored]}
    image = Image(config=config, layers=stored)
    store.put_image(image)
    return image, sum(layer.size for layer in missing.values())


def _resolve(repo: DXF, ref: Reference, platform: Platform) -> tuple[dict[str, Any], list[str]]:
    """The image manifest for `ref` on this platform, and the digests that led to it (the
    index's, then the manifest's)."""
    doc, digest = _manifest(repo, ref.version, ref.digest)
    digests = [digest]
    for _ in range(2):  # an index may name an index (rare), never deeper
        if doc.get("mediaType") not in INDEX_TYPES and "manifests" not in doc:
            break
        chosen = _pick_platform(doc.get("manifests") or [], platform, ref)
        doc, digest = _manifest(repo, chosen["digest"], chosen["digest"])
        digests.append(digest)
    if doc.get("schemaVersion") == 1:
        raise RegistryError(f"{ref}: the registry serves only a schema 1 manifest, which is not supported")
    if "config" not in doc or not isinstance(doc.get("layers"), list):
        raise RegistryError(f"{ref}: the registry's manifest is not an image manifest "
                            f"(media type {doc.get('mediaType')!r})")
    return doc, digests


def _manifest(repo: DXF, version: str, expected: str | None) -> tuple[dict[str, Any], str]:
    _, response = repo.get_manifest_and_response(version)
    body = response.content
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    claimed = expected or response.headers.get("Docker-Content-Digest")
    if claimed and claimed != digest:
        raise RegistryError(f"the manifest {version} does not match its digest "
                            f"(expected {claimed}, got {digest}); nothing was stored")
    try:
        return parse_json(body), digest
    except ValueError as exc:
        raise RegistryError(f"the manifest {version} is not valid JSON ({exc})") from None


def _pick_platform(manifests: list[dict[str, Any]], platform: Platform, ref: Reference) -> dict[str, Any]:
    offered = []
    for descriptor in manifests:
        p = descriptor.get("platform") or {}
        offered.append("/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x))
        if p.get("os") == platform.os and p.get("architecture") == platform.architecture and (
                platform.variant is None or p.get("variant") == platform.variant):
            return descriptor
    raise RegistryError(f"{ref} has no image for {platform} (it has: {', '.join(offered) or 'none'}); "
                        "STUDIO_PLATFORM picks another")


def _json_blob(repo: DXF, digest: str, ref: Reference) -> dict[str, Any]:
    # Without size=True, dxf gives the chunks alone (its hint covers both forms).
    data = b"".join(cast(Iterable[bytes], repo.pull_blob(digest)))  # dxf checks the digest at the end
    try:
        doc = parse_json(data)
    except ValueError as exc:
        raise RegistryError(f"{ref}: the image config {digest} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{ref}: the image config {digest} is not a JSON object")
    return doc


def _check_diff_ids(config: dict[str, Any], layers: list[_Layer], ref: Reference) -> None:
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(layers):
        raise RegistryError(f"{ref}: the manifest lists {len(layers)} layers but the config "
                            f"{len(diff_ids)} diff_ids")
    for layer, diff_id in zip(layers, diff_ids, strict=True):
        layer.diff_id = str(diff_id)


def _known_image(store: Store, known: KnownBlobs, digests: list[str]) -> Image | None:
    """The image an earlier pull made of this very manifest, when all its layers are still here."""
    for digest in reversed(digests):
        image_digest = known.image_for_manifest(digest)
        image = store.get_image(image_digest) if image_digest else None
        if image is not None and all(store.has_layer(layer) for layer in image.layers):
            return image
    return None


def _download_all(open_repo: Callable[[], AbstractContextManager[DXF]], missing: list[_Layer], tmp: Path,
                  transfer: Transfer) -> None:
    """Download the missing layers, PARALLEL_DOWNLOADS at a time (as Docker does), each on a
    client of its own (an HTTP session is not for several threads). Their progress is reported
    from this thread only, so whatever the report does (a build's sink writes to its database)
    stays in the caller's thread; a report that raises (a cancelled build) stops them all."""
    progress: queue.Queue[tuple[str, int, int]] = queue.Queue()
    stop = threading.Event()

    def download(layer: _Layer) -> None:
        path = tmp / layer.digest.removeprefix("sha256:")
        done = 0
        with open_repo() as repo, open(path, "wb") as f:
            for chunk in cast(Iterable[bytes], repo.pull_blob(layer.digest, chunk_size=CHUNK)):
                if stop.is_set():
                    return
                f.write(chunk)
                done += len(chunk)
                progress.put((layer.digest, done, max(layer.size, done)))
        layer.download = path

    with ThreadPoolExecutor(PARALLEL_DOWNLOADS, thread_name_prefix="pull") as pool:
        running = [pool.submit(download, layer) for layer in missing]
        try:
            while running:
                _, running_set = wait(running, timeout=PROGRESS_WAIT_S, return_when=FIRST_EXCEPTION)
                _report_progress(progress, transfer)
                for future in running:
                    if future.done():
                        future.result()  # raises a download's error here
                running = list(running_set)
            _report_progress(progress, transfer)
        except BaseException:
            stop.set()
            raise


def _report_progress(progress: queue.Queue[tuple[str, int, int]], transfer: Transfer) -> None:
    while True:
        try:
            digest, done, total = progress.get_nowait()
        except queue.Empty:
            return
        transfer.progress(digest, "downloading", done, total)


def _import(store: Store, known: KnownBlobs, ref: Reference, layer: _Layer, transfer: Transfer) -> str:
    assert layer.download is not None
    transfer.layer(layer.digest, "extracting", layer.size, layer.size)
    with open(layer.download, "rb") as blob, _uncompressed(blob, layer.digest) as (tar, diff_id):
        stored = store.import_layer(tar)
        got = diff_id()
    if got is not None and got != layer.diff_id:
        raise RegistryError(f"{ref}: layer {layer.digest} unpacks to {got}, but the image config "
                            f"says {layer.diff_id}; the image was not stored")
    known.remember_blob(KnownBlob(digest=layer.digest, diff_id=layer.diff_id,
                                  media_type=str(layer.descriptor.get("mediaType", "")),
                                  size=layer.size, layer=stored.id, repository=ref.repository))
    transfer.layer(layer.digest, "done", layer.size, layer.size)
    return stored.id


class _Hashing(io.RawIOBase):
    """Reads through `raw`, hashing every byte read."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.raw.read(len(buffer))
        buffer[:len(data)] = data
        self.sha.update(data)
        return len(data)

    def finish(self) -> str:
        while self.raw.read(CHUNK):  # the tar reader may stop before the archive's padding
            pass
        return "sha256:" + self.sha.hexdigest()


@contextlib.contextmanager
def _uncompressed(blob: IO[bytes], digest: str) -> Iterator[tuple[IO[bytes], Any]]:
    """The layer to unpack, and a function giving the digest of its uncompressed tar once
    unpacked: a plain tar's is its blob digest (already checked), a gzip or zstd one's is
    counted on the way; None for the rarer xz and bzip2, which the store unpacks by itself."""
    head = blob.read(4)
    blob.seek(0)
    if head.startswith(b"\x1f\x8b"):
        with gzip.GzipFile(fileobj=blob) as unzipped:
            hashing = _Hashing(unzipped)  # type: ignore[arg-type]
            yield io.BufferedReader(hashing, CHUNK), hashing.finish
    elif head == b"\x28\xb5\x2f\xfd":
        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(blob, read_size=CHUNK) as unzipped:
            hashing = _Hashing(unzipped)
            yield io.BufferedReader(hashing, CHUNK), hashing.finish
    elif head.startswith((b"BZh", b"\xfd7zX")):
        yield blob, lambda: None
    else:
        yield blob, lambda: digest
