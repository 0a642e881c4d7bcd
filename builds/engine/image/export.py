"""Images out of the store: OCI manifests, and archives `docker load` accepts.

Layers go out uncompressed, as the store keeps them (gzip would cost ~20 s a GB here, and
`docker load` takes plain tars), so a layer's blob digest is its diff_id. The docker archive
holds both layouts, as Docker 25+ writes it: `manifest.json` for `docker load` of any version,
and `index.json`/`oci-layout`/`blobs/sha256/` for OCI tools; every file is in blobs/ once.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from ..reference import local_name
from ..store import Image, LayerError, Store, canonical_json
from ..store.tarstream import DIRTYPE, END_OF_ARCHIVE, REGTYPE, padding, tar_header

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


def manifest_for(store: Store, image: Image) -> dict[str, Any]:
    """The OCI manifest of `image`, its layers as uncompressed tar blobs."""
    config = image.config_bytes()
    return {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": image.compute_digest(), "size": len(config)},
        "layers": [{"mediaType": LAYER_TYPE, "digest": store.layer(layer).diff_id,
                    "size": store.layer_tar_size(layer)} for layer in image.layers],
    }


def _full_name(ref: str) -> tuple[str, str]:
    """("docker.io/library/x:tag", "tag"): the names containerd and OCI tools expect."""
    name, tag = local_name(ref)
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return f"{name}:{tag}", tag


def index_for(manifest: bytes, refs: list[str]) -> dict[str, Any]:
    """An OCI index naming the manifest once per ref (or once, unnamed)."""
    descriptor = {"mediaType": MANIFEST_TYPE, "digest": _digest(manifest), "size": len(manifest)}
    entries = []
    for ref in refs:
        full, tag = _full_name(ref)
        entries.append({**descriptor, "annotations": {"io.containerd.image.name": full,
                                                      "org.opencontainers.image.ref.name": tag}})
    return {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": entries or [descriptor]}


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class _TarOut:
    """An outer archive written entry by entry (fixed times and owners: the same image
    exports to the same bytes)."""

    out: IO[bytes]
    # Only count: a layer's bytes are taken from its facts, not read (archive_size).
    measure: bool = False

    def directory(self, name: str) -> None:
        self.out.write(tar_header(name.encode() + b"/", DIRTYPE, mode=0o755))

    def file(self, name: str, data: bytes) -> None:
        self.out.write(tar_header(name.encode(), REGTYPE, size=len(data)))
        self.out.write(data)
        self.out.write(padding(len(data)))

    def layer(self, store: Store, layer_id: str, name: str) -> None:
        size = store.layer_tar_size(layer_id)
        self.out.write(tar_header(name.encode(), REGTYPE, size=size))
        if self.measure:
            cast(_Measure, self.out).size += size
            self.out.write(padding(size))
            return
        counted = _Counting(self.out)
        # Only written to; raises if the layer no longer matches its diff_id.
        store.write_layer_tar(layer_id, cast(IO[bytes], counted))
        if counted.written != size:
            raise LayerError(f"layer {layer_id} wrote {counted.written} bytes, its facts say {size}")
        self.out.write(padding(size))

    def end(self) -> None:
        self.out.write(END_OF_ARCHIVE)


class _Counting:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.written = 0

    def write(self, data: bytes | memoryview) -> int:
        self.written += len(data)
        return self.out.write(data)


def _write_entries(tar: _TarOut, store: Store, image: Image, refs: list[str], *, docker: bool) -> None:
    config = image.config_bytes()
    manifest = canonical_json(manifest_for(store, image))
    for name in ("blobs", "blobs/sha256"):
        tar.directory(name)
    tar.file(f"blobs/sha256/{_digest(config)[7:]}", config)
    layer_names = []
    for layer in image.layers:
        name = f"blobs/sha256/{store.layer(layer).diff_id[7:]}"
        if name not in layer_names:
            tar.layer(store, layer, name)
        layer_names.append(name)
    tar.file(f"blobs/sha256/{_digest(manifest)[7:]}", manifest)
    tar.file("index.json", canonical_json(index_for(manifest, refs)))
    tar.file("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}))
    if docker:
        entry = {"Config": f"blobs/sha256/{_digest(config)[7:]}", "RepoTags": _repo_tags(refs),
                 "Layers": layer_names}
        tar.file("manifest.json", json.dumps([entry]).encode())
    tar.end()


def _write_archive(store: Store, image: Image, out_path: Path, refs: list[str], *, docker: bool) -> None:
    out_path = Path(out_path)
    temp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as f:
            _write_entries(_TarOut(f), store, image, refs, docker=docker)
        os.replace(temp, out_path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _repo_tags(refs: list[str]) -> list[str]:
    return ["{}:{}".format(*local_name(ref)) for ref in refs]


def export_docker_archive(store: Store, image: Image, out_path: Path | str, repo_tags: list[str]) -> None:
    """Write `image` as a `docker save` archive (also a valid OCI layout) that `docker load`
    takes, tagged with `repo_tags` ("name:tag")."""
    _write_archive(store, image, Path(out_path), list(repo_tags), docker=True)


def export_oci_archive(store: Store, image: Image, out_path: Path | str,
                       refs: list[str] | None = None) -> None:
    """Write `image` as a tar of an OCI image layout, its manifest named by `refs`."""
    _write_archive(store, image, Path(out_path), list(refs or []), docker=False)


def write_docker_archive(store: Store, image: Image, out: IO[bytes], repo_tags: list[str]) -> None:
    """Write `image` as a `docker save` archive to `out`, as it goes (a download streams it):
    the same bytes `export_docker_archive` writes to a file."""
    _write_entries(_TarOut(out), store, image, list(repo_tags), docker=True)


class _Measure:
    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        self.size += len(data)
        return len(data)


def docker_archive_size(store: Store, image: Image, repo_tags: list[str]) -> int:
    """The exact size of the archive `write_docker_archive` writes, without reading any layer
    (their tar sizes are in their facts): a download can say its Content-Length up front."""
    measure = _Measure()
    tar = _TarOut(cast(IO[bytes], measure), measure=True)
    _write_entries(tar, store, image, list(repo_tags), docker=True)
    return measure.size
