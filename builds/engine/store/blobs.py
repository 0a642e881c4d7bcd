"""Blobs: immutable bytes by their sha256 (image configs, manifests, JSON documents)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .housekeeping import Housekeeping
from .names import hex_of
from .objects import canonical_json


class Blobs:
    """blobs/sha256/<hex> under a store's root."""

    def __init__(self, directory: Path, keeping: Housekeeping) -> None:
        self.directory = directory
        self.keeping = keeping

    def path(self, digest: str) -> Path:
        return self.directory / hex_of(digest)

    def put(self, data: bytes) -> str:
        """Store bytes, return "sha256:<hex>"."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        if not path.exists():
            self.keeping.write_atomic(path, data, exclusive=True)
        return digest

    def put_json(self, doc: Any) -> str:
        """Store canonical JSON (sorted keys, no spaces), return its digest."""
        return self.put(canonical_json(doc))

    def get_json(self, digest: str) -> Any:
        return json.loads(self.path(digest).read_bytes())
