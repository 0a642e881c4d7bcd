"""The content-addressed store under STUDIO_DATA_DIR.

INTERFACE STUB: the implementation fills in the bodies; the types and signatures are the
contract the rest of the engine is written against.

Layout (all writes are temp file or temp dir in `tmp/` + rename, so a crash never leaves a
half-written object, and two processes writing the same object leave one good copy):

    blobs/sha256/<hex>        immutable blobs: image configs, manifests, JSON documents,
                              compressed layer tarballs made on export
    l/<id>/                   unpacked layers (overlay lowerdirs); <id> = first 16 hex of the
                              layer's diff_id, short because overlay mount options are <= 4 KB.
                              Deletions are overlay whiteouts (char device 0/0), opaque
                              directories carry the xattr trusted.overlay.opaque=y.
    l/<id>.json               the layer's facts (Layer.to_json)
    images/<hex>.json         an image record (Image.to_json) by config digest
    tags.json                 "name:tag" -> config digest
    cache/<k[:2]>/<key>.json  the cache index: a step's cache key -> its record
    children/<parent>.jsonl   the records built on top of a parent key (one JSON per line),
                              for finding the nearest earlier build of a step
    tmp/                      work directories (same filesystem as everything else)
    locks/                    lock files
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


@dataclass
class FileChange:
    path: str  # inside the image, no leading "/"
    kind: str  # "file" | "dir" | "symlink" | "whiteout"
    size: int
    change: str  # "added" | "modified" | "deleted"


@dataclass
class Layer:
    id: str  # first 16 hex of diff_id; the directory name under l/
    diff_id: str  # "sha256:<hex>" of the uncompressed layer tar
    size: int  # bytes of file content in the layer
    added: int
    modified: int
    deleted: int
    changes: list[FileChange] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Layer:
        raise NotImplementedError


@dataclass
class Image:
    config: dict[str, Any]  # OCI image config: architecture, os, config{Env, Cmd, ...}, rootfs, history
    layers: list[str]  # layer ids, bottom first
    digest: str = ""  # "sha256:<hex>" of the canonical config JSON; filled by Store.put_image

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError


class Store:
    def __init__(self, root: Path | str) -> None:
        raise NotImplementedError

    # -- work space -------------------------------------------------------------------------
    def work_dir(self, prefix: str) -> Path:
        """A fresh empty directory under tmp/ (same filesystem as l/, so it can be renamed in)."""
        raise NotImplementedError

    # -- blobs ------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        raise NotImplementedError

    def put_blob(self, data: bytes) -> str:
        """Store bytes, return "sha256:<hex>"."""
        raise NotImplementedError

    def put_json(self, doc: Any) -> str:
        """Store canonical JSON (sorted keys, no spaces), return its digest."""
        raise NotImplementedError

    def get_json(self, digest: str) -> Any:
        raise NotImplementedError

    # -- layers -----------------------------------------------------------------------------
    def layer_path(self, layer_id: str) -> Path:
        raise NotImplementedError

    def layer(self, layer_id: str) -> Layer:
        raise NotImplementedError

    def commit_layer(self, upper: Path, lower: list[str]) -> Layer | None:
        """Turn a finished upper directory into a stored layer. `lower` is the layer ids below
        it, bottom first, used to tell added from modified and to describe whiteouts. Computes
        the diff_id by streaming the layer's tar (OCI whiteouts `.wh.x` / `.wh..wh..opq`, sorted
        entries, mtimes kept, numeric uid/gid, no user/group names) through sha256 without
        writing it, then renames `upper` to l/<id> (or drops it when that layer already
        exists). Returns None, and removes `upper`, when it holds no change at all."""
        raise NotImplementedError

    def import_layer(self, tar: IO[bytes]) -> Layer:
        """Unpack a layer tar (plain, gzip or zstd), turning OCI whiteouts into overlay ones."""
        raise NotImplementedError

    def write_layer_tar(self, layer_id: str, out: IO[bytes]) -> str:
        """Write the layer's tar (the same bytes commit_layer hashed); returns its diff_id."""
        raise NotImplementedError

    # -- images and tags --------------------------------------------------------------------
    def put_image(self, image: Image) -> str:
        raise NotImplementedError

    def get_image(self, ref: str) -> Image | None:
        """By "name[:tag]" (tag defaults to latest; "docker.io/library/" prefixes are ignored)
        or by "sha256:<hex>" config digest."""
        raise NotImplementedError

    def tag(self, name: str, digest: str) -> None:
        raise NotImplementedError

    def tags(self) -> dict[str, str]:
        raise NotImplementedError

    # -- cache index ------------------------------------------------------------------------
    def cache_get(self, key: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def cache_put(self, key: str, record: dict[str, Any], *, parent: str) -> None:
        """Record a built step under its key, and append it to children/<parent>."""
        raise NotImplementedError

    def cache_children(self, parent: str) -> list[dict[str, Any]]:
        """Records built on `parent`, oldest first."""
        raise NotImplementedError

    # -- locks ------------------------------------------------------------------------------
    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive inter-process lock (flock on locks/<name>)."""
        raise NotImplementedError
        yield
