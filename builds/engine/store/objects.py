"""The store's value types: a file change, a layer's facts, an image record."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


def canonical_json(doc: Any) -> bytes:
    """The one byte form of a JSON document the store hashes: sorted keys, no spaces."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def parse_json(data: bytes | str) -> Any:
    """json.loads, refusing (ValueError) a document the store could not write back: JSON may
    escape half of a character (`\\ud800`), which is no text UTF-8 can hold."""
    doc = json.loads(data)
    try:
        canonical_json(doc)
    except UnicodeEncodeError:
        raise ValueError("it escapes half of a character (a lone \\uD800-\\uDFFF): not text") from None
    return doc


@dataclass
class FileChange:
    path: str  # inside the image, no leading "/"
    kind: str  # "file" | "dir" | "symlink" | "whiteout"
    size: int
    change: str  # "added" | "modified" | "deleted"

    def to_row(self) -> list[Any]:
        return [self.path, self.kind, self.size, self.change]

    @classmethod
    def from_row(cls, row: list[Any]) -> FileChange:
        path, kind, size, change = row
        return cls(path, kind, size, change)


@dataclass
class Layer:
    id: str  # first 16 hex of diff_id; the directory name under l/
    diff_id: str  # "sha256:<hex>" of the uncompressed layer tar
    size: int  # bytes of file content in the layer
    added: int
    modified: int
    deleted: int
    changes: list[FileChange] = field(default_factory=list)
    tar_size: int = 0  # bytes of the layer's tar (what a manifest lists as the blob's size)

    def summary(self) -> dict[str, Any]:
        """The facts without the file list (which can be long)."""
        return {"id": self.id, "diff_id": self.diff_id, "size": self.size, "tar_size": self.tar_size,
                "added": self.added, "modified": self.modified, "deleted": self.deleted}

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "changes": [c.to_row() for c in self.changes]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Layer:
        return cls(
            id=data["id"], diff_id=data["diff_id"], size=data["size"], added=data["added"],
            modified=data["modified"], deleted=data["deleted"],
            changes=[FileChange.from_row(row) for row in data.get("changes") or []],
            tar_size=data.get("tar_size", 0),
        )


@dataclass
class Image:
    config: dict[str, Any]  # OCI image config: architecture, os, config{Env, Cmd, ...}, rootfs, history
    layers: list[str]  # layer ids, bottom first
    digest: str = ""  # "sha256:<hex>" of the canonical config JSON; filled by Store.put_image

    def config_bytes(self) -> bytes:
        """The config as stored and exported; its sha256 is the image's digest."""
        return canonical_json(self.config)

    def compute_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.config_bytes()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "layers": list(self.layers), "config": self.config}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Image:
        return cls(config=data["config"], layers=list(data["layers"]), digest=data.get("digest", ""))
