"""Push an image from the store to a registry, uploading only the layers the registry lacks.

For every layer: a blob the layer was pulled as (or pushed as) on this registry is asked for
first (HEAD), in the target repository, then mounted from the repository it came from; only
then is the layer's own blob asked for and, when missing, uploaded: its tar as the store keeps
it (its digest is its diff_id), or gzip-compressed on request, made the same way every time.
The manifest pushed is an OCI one; its config lists the diff_id of whichever blob each layer
went as, so a base layer pulled as gzip keeps its registry digest and is not uploaded again.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from dxf import DXF
from dxf import exceptions as dxf_errors

from ..errors import InputError
from ..events import ImagePush
from ..reference import Reference, parse_reference
from ..store import Image, Store, canonical_json
from .client import blob_exists, open_repository, registry_errors
from .known import KnownBlob, KnownBlobs
from .settings import RegistrySettings
from .transfer import Report, Transfer

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
GZIP_LEVEL = 6  # Docker's
# Docker's layer media types name the same bytes as OCI's; an OCI manifest uses OCI's names.
_OCI_NAMES = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": LAYER_TAR,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
CHUNK = 1 << 20


@dataclass
class PushResult:
    reference: str
    manifest_digest: str
    uploaded: int = 0  # bytes of layers uploaded
    layers: list[dict[str, Any]] = field(default_factory=list)  # {layer, digest, size, status, source?}

    @property
    def skipped(self) -> list[dict[str, Any]]:
        return [layer for layer in self.layers if layer["status"] != "pushed"]


def push(store: Store, name: str, dest: str | None = None, *, settings: RegistrySettings | None = None,
         report: Report | None = None, compress: bool = False) -> PushResult:
    """Push the stored image `name` to `dest` (default: `name` itself, which then names a
    registry), tagged as `dest` says. `compress`: upload missing layers gzip-compressed (as
    Docker does: smaller over a network, slower on loopback), else as the store keeps them."""
    settings = settings or RegistrySettings.from_env()
    image = store.get_image(name)
    if image is None:
        raise InputError(f"no image {name!r} in the store (see `manage.py images ls`)")
    ref = parse_reference(dest or name)
    if ref.tag is None:
        raise InputError(f"push to a tag, not a digest: {dest or name!r}")
    transfer = Transfer(ImagePush, str(ref), report)
    known = KnownBlobs(store)
    result = PushResult(reference=str(ref), manifest_digest="")
    with open_repository(ref, settings) as repo, registry_errors(ref):
        transfer.whole("resolved", 0, sum(store.layer_tar_size(layer) for layer in image.layers),
                       layers=len(image.layers))
        blobs = [_place_layer(store, known, repo, ref, layer, transfer, result, compress=compress)
                 for layer in image.layers]
        config = _config_for(image, blobs)
        config_digest = _push_bytes(repo, config)
        manifest = canonical_json({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": _OCI_NAMES.get(b.media_type, b.media_type), "digest": b.digest,
                        "size": b.size} for b in blobs],
        })
        repo.set_manifest(ref.tag, manifest.decode())
    result.manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    known.remember_manifest(result.manifest_digest, image.digest)
    transfer.whole("done", result.uploaded, result.uploaded, digest=result.manifest_digest)
    return result


def _place_layer(store: Store, known: KnownBlobs, repo: DXF, ref: Reference, layer_id: str,
                 transfer: Transfer, result: PushResult, *, compress: bool) -> KnownBlob:
    """Make the registry hold this layer, in the cheapest way it can; returns the blob used."""
    for blob in known.blobs_of(layer_id):
        if not blob.repository.startswith(ref.domain + "/"):
            continue
        if blob_exists(repo, blob.digest):
            return _placed(known, ref, blob, "exists", transfer, result)
        source = blob.repository.removeprefix(ref.domain + "/")
        if source != ref.path and _mount(repo, source, blob.digest):
            return _placed(known, ref, blob, "mounted", transfer, result, source=blob.repository)
    layer = store.layer(layer_id)
    own = KnownBlob(digest=layer.diff_id, diff_id=layer.diff_id, media_type=LAYER_TAR,
                    size=store.layer_tar_size(layer_id), layer=layer_id)
    if not compress and blob_exists(repo, own.digest):
        return _placed(known, ref, own, "exists", transfer, result)
    with tempfile.TemporaryFile(dir=store.tmp) as spool:
        if compress:
            own = _write_gzip(store, own, spool)
            if blob_exists(repo, own.digest):
                return _placed(known, ref, own, "exists", transfer, result)
        else:
            store.write_layer_tar(layer_id, spool)  # checks the layer still matches its diff_id
        spool.seek(0)
        sent = 0

        def uploaded(_digest: str, chunk: bytes, _total: int = 0) -> None:
            nonlocal sent
            sent += len(chunk)
            transfer.progress(own.digest, "uploading", sent, own.size)

        repo.push_blob(data=_chunks(spool), digest=own.digest, progress=uploaded, check_exists=False)
    result.uploaded += own.size
    return _placed(known, ref, own, "pushed", transfer, result)


class _Counted:
    """A file being written, hashed and counted on the way."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def _write_gzip(store: Store, tar: KnownBlob, out: IO[bytes]) -> KnownBlob:
    """The layer's tar gzip-compressed into `out`, with no name or time in the gzip header, so
    the same layer always makes the same blob (and a second push finds it there)."""
    counted = _Counted(out)
    with gzip.GzipFile(filename="", mode="wb", fileobj=counted, mtime=0, compresslevel=GZIP_LEVEL) as zipped:
        store.write_layer_tar(tar.layer, zipped)  # type: ignore[arg-type]
    return KnownBlob(digest="sha256:" + counted.sha.hexdigest(), diff_id=tar.diff_id, media_type=LAYER_GZIP,
                     size=counted.size, layer=tar.layer)


def _placed(known: KnownBlobs, ref: Reference, blob: KnownBlob, status: str, transfer: Transfer,
            result: PushResult, **extra: str) -> KnownBlob:
    known.remember_blob(KnownBlob(**{**blob.__dict__, "repository": ref.repository}))
    transfer.layer(blob.digest, status, blob.size, blob.size, **extra)
    result.layers.append({"layer": blob.layer, "digest": blob.digest, "size": blob.size, "status": status,
                          **extra})
    return blob


def _mount(repo: DXF, source: str, digest: str) -> bool:
    try:
        repo.mount_blob(source, digest)
    except (dxf_errors.DXFMountFailed, dxf_errors.DXFUnauthorizedError):
        return False
    return True


def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    while chunk := f.read(CHUNK):
        yield chunk


def _config_for(image: Image, blobs: list[KnownBlob]) -> bytes:
    config = copy.deepcopy(image.config)
    config["rootfs"] = {"type": "layers", "diff_ids": [blob.diff_id for blob in blobs]}
    return canonical_json(config)


def _push_bytes(repo: DXF, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if not blob_exists(repo, digest):
        repo.push_blob(data=data, digest=digest, check_exists=False)  # type: ignore[arg-type]
    return digest
