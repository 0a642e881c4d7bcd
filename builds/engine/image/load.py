"""Bringing images into the store: a root filesystem tarball (like `docker import`), a
`docker save` archive, or an OCI image layout (a directory, or a tar of one).

Every layer is unpacked and re-tarred the store's way, so an imported image's diff_ids (and
so its config digest) are the store's, not the archive's: export then reproduces them.
"""

from __future__ import annotations

import contextlib
import posixpath
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import InputError
from ..reference import local_name
from ..store import Image, Store
from ..store.objects import parse_json
from .config import rootfs_config

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
class _Archive:
    """Files of an image archive, from a directory or a tar. Names are resolved inside the
    archive only: a symlink (older `docker save` links a repeated layer to its first copy)
    is followed within it, never out of it."""

    def __init__(self, path: Path, tar: tarfile.TarFile | None) -> None:
        self.path = path
        self.tar = tar
        self.members = {} if self.tar is None else {_clean(m.name): m for m in self.tar.getmembers()}

    def has(self, name: str) -> bool:
        return self._find(name) is not None

    def _find(self, name: str) -> str | tarfile.TarInfo | Path | None:
        name = _clean(name)
        for _ in range(8):
            if self.tar is None:
                real = (self.path / name).resolve()
                inside = real.is_relative_to(self.path.resolve())
                return real if inside and real.is_file() else None
            member = self.members.get(name)
            if member is None or not (member.issym() or member.islnk()):
                return member if member is not None and member.isfile() else None
            base = posixpath.dirname(name) if member.issym() else ""
            name = posixpath.normpath(posixpath.join(base, member.linkname))
            if name.startswith(("../", "/")) or name == "..":
                return None
        return None

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        found = self._find(name)
        if found is None:
            raise InputError(f"{self.path}: the archive lists {name!r} but does not hold it")
        if isinstance(found, Path):
            with open(found, "rb") as f:
                yield f
            return
        assert self.tar is not None and isinstance(found, tarfile.TarInfo)
        member = self.tar.extractfile(found)
        assert member is not None
        yield member

    def json(self, name: str) -> Any:
        with self.open(name) as f:
            try:
                return parse_json(f.read())
            except ValueError as exc:
                raise InputError(f"{self.path}: {name} is not valid JSON ({exc})") from None



@contextlib.contextmanager
def _open_archive(path: Path) -> Iterator[_Archive]:
    if path.is_dir():
        yield _Archive(path, None)
        return
    with _tar_errors(path), tarfile.open(path, "r:*") as tar:
        yield _Archive(path, tar)


@contextlib.contextmanager
def _tar_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except tarfile.TarError as exc:
        raise InputError(f"{path} is not a readable tar archive: {exc}") from None


def _clean(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


def archive_kind(path: Path) -> str:
    """"docker", "oci" or "rootfs"."""
    if path.is_dir():
        if (path / "index.json").is_file():
            return "oci"
        raise InputError(f"{path} is a directory but not an OCI image layout (no index.json)")
    # Only headers are read (a plain tar's content is skipped by seeking), so even a large
    # root filesystem is cheap to list.
    with _tar_errors(path), tarfile.open(path, "r:*") as tar:
        names = {_clean(m.name) for m in tar if m.isfile() or m.issym()}
    if "manifest.json" in names:
        return "docker"
    if "index.json" in names and "oci-layout" in names:
        return "oci"
    return "rootfs"


def import_any(store: Store, path: Path | str, name: str) -> Image:
    """Import whatever `path` is (see archive_kind) and tag it `name`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no file at {path}")
    if archive_kind(path) == "rootfs":
        return import_rootfs(store, path, name)
    return import_archive(store, path, name)


def import_rootfs(store: Store, tar_path: Path | str, name: str) -> Image:
    """A one-layer image from a root filesystem tarball, tagged `name`."""
    tar_path = Path(tar_path)
    with open(tar_path, "rb") as f:
        layer = store.import_layer(f)
    config = rootfs_config(layer.diff_id, f"imported {tar_path.name}")
    return _keep(store, Image(config=config, layers=[layer.id]), name)


def import_archive(store: Store, path: Path | str, name: str) -> Image:
    """An image from a `docker save` archive or an OCI layout (directory or tar), tagged `name`."""
    path = Path(path)
    with _open_archive(path) as archive:
        if archive.has("manifest.json"):
            config, layer_names = _docker_image(archive, name)
        elif archive.has("index.json"):
            config, layer_names = _oci_image(archive)
        else:
            raise InputError(f"{path} has neither manifest.json (docker save) nor index.json (OCI)")
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(layer_names):
            raise InputError(f"{path}: the image lists {len(layer_names)} layers but its config "
                             f"{len(diff_ids)} diff_ids")
        layers = []
        for layer_name in layer_names:
            with archive.open(layer_name) as f:
                layers.append(store.import_layer(f))
    config["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}
    return _keep(store, Image(config=config, layers=[layer.id for layer in layers]), name)


def _keep(store: Store, image: Image, name: str) -> Image:
    store.put_image(image)
    store.tag(name, image.digest)
    return image


def _docker_image(archive: _Archive, name: str) -> tuple[dict[str, Any], list[str]]:
    entries = archive.json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{archive.path}: manifest.json lists no image")
    wanted = local_name(name)
    tagged = [e for e in entries if wanted in [local_name(t) for t in e.get("RepoTags") or []]]
    entry = tagged[0] if tagged else entries[0]
    return archive.json(entry["Config"]), list(entry.get("Layers") or [])


def _blob_name(digest: str) -> str:
    algorithm, _, hex_ = digest.partition(":")
    return f"blobs/{algorithm}/{hex_}"


def _oci_image(archive: _Archive) -> tuple[dict[str, Any], list[str]]:
    doc = archive.json("index.json")
    # An index may name other indexes (one per platform list); follow them to a manifest.
    for _ in range(8):
        manifests = doc.get("manifests") or []
        if not manifests:
            raise InputError(f"{archive.path}: the OCI index lists no manifest")
        chosen = _pick_platform(manifests)
        doc = archive.json(_blob_name(chosen["digest"]))
        if chosen.get("mediaType") not in INDEX_TYPES and doc.get("mediaType") not in INDEX_TYPES:
            break
    config = archive.json(_blob_name(doc["config"]["digest"]))
    return config, [_blob_name(layer["digest"]) for layer in doc.get("layers") or []]


def _pick_platform(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    for descriptor in manifests:
        platform = descriptor.get("platform") or {}
        if platform.get("os", "linux") == "linux" and platform.get("architecture", "amd64") == "amd64":
            return descriptor
    return manifests[0]
