"""What the store knows about registries' blobs, beside the store itself (under registry/).

The store re-tars every layer it imports, so a layer pulled as a gzip blob is kept under a
diff_id of its own. This index remembers the way back, so that a second pull fetches nothing,
and a push reuses a base layer's blob where the registry already has it (or can mount it)
instead of uploading it again:

    registry/blobs/<hex>.json       blob digest -> {layer, diff_id (the blob's, uncompressed),
                                    media_type, size}
    registry/diffs/<hex>.json       a blob's diff_id -> {layer}
    registry/layers/<layer>.jsonl   the blobs a stored layer is known as, and where each was
                                    seen ({digest, diff_id, media_type, size, repository})
    registry/manifests/<hex>.json   a manifest (or index) digest -> {image: config digest}

Every record is written whole (temp file + rename, or one O_APPEND line), like the store's.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..store import Store


@dataclass(frozen=True)
class KnownBlob:
    digest: str  # the blob's digest in a registry (often of gzip bytes)
    diff_id: str  # the digest of its uncompressed tar: what an image config lists for it
    media_type: str
    size: int
    layer: str  # the stored layer it unpacks to
    repository: str = ""  # "host/path" where it was seen


class KnownBlobs:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.root = store.root / "registry"

    # -- lookups ----------------------------------------------------------------------------
    def layer_for(self, digest: str, diff_id: str | None) -> str | None:
        """The stored layer a blob unpacks to, by its digest or its diff_id, when that layer is
        still in the store. A blob the store exported itself is its own layer's tar."""
        for kind, key in (("blobs", digest), ("diffs", diff_id)):
            record = self._read(kind, key) if key else None
            if record and self.store.has_layer(record["layer"]):
                return str(record["layer"])
        for key in (digest, diff_id):
            layer_id = key[7:23] if key and key.startswith("sha256:") else ""
            if layer_id and self.store.has_layer(layer_id) and self.store.layer(layer_id).diff_id == key:
                return layer_id
        return None

    def blobs_of(self, layer_id: str) -> list[KnownBlob]:
        """Every blob this layer was pulled or pushed as, most recent first."""
        try:
            lines = (self.root / "layers" / f"{layer_id}.jsonl").read_text().splitlines()
        except FileNotFoundError:
            return []
        blobs = []
        for line in reversed(lines):
            try:
                blobs.append(KnownBlob(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a line cut short by a crash
        return blobs

    def image_for_manifest(self, digest: str) -> str | None:
        record = self._read("manifests", digest)
        return str(record["image"]) if record else None

    # -- records ----------------------------------------------------------------------------
    def remember_blob(self, blob: KnownBlob) -> None:
        self._write("blobs", blob.digest, {"layer": blob.layer, "diff_id": blob.diff_id,
                                           "media_type": blob.media_type, "size": blob.size})
        self._write("diffs", blob.diff_id, {"layer": blob.layer})
        if not any(b.digest == blob.digest and b.repository == blob.repository
                   for b in self.blobs_of(blob.layer)):
            self._append(self.root / "layers" / f"{blob.layer}.jsonl", asdict(blob))

    def remember_manifest(self, digest: str, image: str) -> None:
        self._write("manifests", digest, {"image": image})

    # -- files ------------------------------------------------------------------------------
    def _path(self, kind: str, digest: str) -> Path:
        return self.root / kind / f"{digest.removeprefix('sha256:')}.json"

    def _read(self, kind: str, digest: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(kind, digest).read_bytes())
        except (FileNotFoundError, ValueError):
            return None

    def _write(self, kind: str, digest: str, record: dict[str, Any]) -> None:
        path = self._path(kind, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        temp.write_text(json.dumps(record))
        os.replace(temp, path)

    @staticmethod
    def _append(path: Path, record: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record) + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
