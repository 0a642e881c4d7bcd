"""The cache index: which record (and so which layer) a step's cache key was built as, kept
per scope.

A scope is whose verdicts these are: "" the store's own (the command line's), "user:7" a
person's, "class:3" a class's shared one. Layers and blobs are shared by every scope; a scope's
index is not, so a lookup never reads another scope's records. Builds and predictions talk to
one scope through the small `ScopedCache` interface (lookup and record by key, and the records
built on a parent, which the reasons for a miss compare with), so an index kept elsewhere (a
registry shared by several hosts) can stand in for the one on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Protocol

from .housekeeping import Housekeeping
from .names import key_file_name
from .usage import mark_used

# The scope of the cache index a store had before scopes existed: the command line's default.
DEFAULT_SCOPE = ""


class ScopedCache(Protocol):
    """One scope's cache index, as builds and predictions use it."""

    name: str

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The record this scope holds for `key`, or None."""

    def record(self, key: str, record: dict[str, Any], *, parent: str) -> None:
        """Keep `record` under `key`, as built on the step (or base) keyed `parent`."""

    def children(self, parent: str) -> list[dict[str, Any]]:
        """This scope's records built on `parent`, oldest first."""


class CacheIndex:
    """Every scope's index in a store on disk. The store's own scope is cache/ and children/ at
    its root, where the one index a store had before scopes existed already is; another scope's
    is under scopes/<hash of its name>/."""

    def __init__(self, root: Path, keeping: Housekeeping) -> None:
        self.root = root
        self.keeping = keeping

    def scope(self, name: str) -> DiskScope:
        return DiskScope(self.scope_root(name), name, self.keeping, layers=self.root / "l")

    def scope_root(self, name: str) -> Path:
        """The directory of scope `name`'s index and cache mounts."""
        if name == DEFAULT_SCOPE:
            return self.root
        return self.root / "scopes" / hashlib.sha256(name.encode()).hexdigest()[:32]


class DiskScope:
    """One scope's index on disk: cache/<k[:2]>/<key>.json, one record per key, and
    children/<parent>.jsonl, the records built on each parent, one per line."""

    def __init__(self, root: Path, name: str, keeping: Housekeeping, *, layers: Path | None = None) -> None:
        self.root = root
        self.name = name
        self.keeping = keeping
        self.layers = layers  # the store's l/, where a hit marks its layer used (evict.py)

    def _path(self, key: str) -> Path:
        name = key_file_name(key)
        return self.root / "cache" / name[:2] / f"{name}.json"

    def lookup(self, key: str) -> dict[str, Any] | None:
        try:
            with open(self._path(key), "rb") as f:
                record = json.loads(f.read())
        except FileNotFoundError:
            return None
        if self.layers is not None and isinstance(record, dict) and record.get("layer"):
            mark_used(self.layers, record["layer"])
        return record

    def record(self, key: str, record: dict[str, Any], *, parent: str) -> None:
        data = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
        path = self._path(key)
        # Its directory first: a temp file written for a rename that then fails costs a new
        # inode and a deleted one, each slow on a disk without a journal.
        try:
            os.mkdir(path.parent)
        except FileExistsError:
            pass
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._write_name()
        self.keeping.write_atomic(path, data)
        children = self.root / "children"
        children.mkdir(parents=True, exist_ok=True)
        self.keeping.append_line(children / f"{key_file_name(parent)}.jsonl", data + b"\n")

    def _write_name(self) -> None:
        # A scope's directory is named by a hash; its name is written beside it for people.
        if self.name != DEFAULT_SCOPE:
            name = self.root / "scope.txt"
            if not name.exists():
                self.keeping.write_atomic(name, self.name.encode())

    def children(self, parent: str) -> list[dict[str, Any]]:
        try:
            data = (self.root / "children" / f"{key_file_name(parent)}.jsonl").read_bytes()
        except FileNotFoundError:
            return []
        records = []
        for line in data.splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a full disk or a crash: skip it, keep the rest
        return records
