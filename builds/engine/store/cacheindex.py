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
import queue
import threading
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


class WriteBehind:
    """A scope whose records a thread of the build's own writes while the build's next step
    runs: each record is two or three new files and directories, and on a disk without a
    journal a new inode costs up to a third of a millisecond, which a 50-step build would
    otherwise wait for at every step. Writing them while the build goes on would not do: its
    next lookup waits for the directory a record is being made in. So records wait until
    `start_writing` (the builder calls it once a step's processes have started, and before
    a step that runs none), and lookups and `children` see them from the moment they are
    given (from memory until written, then from the scope). `flush` writes what is left,
    waits, and raises the first write that failed, as does a record given after it. A process
    that dies mid-build loses at most the records not yet written: their steps run again."""

    def __init__(self, scope: ScopedCache) -> None:
        self.scope = scope
        self.name = scope.name
        self._pending: dict[str, tuple[dict[str, Any], str]] = {}  # key -> (record, parent)
        self._waiting: list[tuple[str, dict[str, Any], str]] = []
        self._queue: queue.SimpleQueue[tuple[str, dict[str, Any], str] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None

    def lookup(self, key: str) -> dict[str, Any] | None:
        pending = self._pending.get(key)  # before the scope: a record leaves it once written
        return pending[0] if pending is not None else self.scope.lookup(key)

    def record(self, key: str, record: dict[str, Any], *, parent: str) -> None:
        if self._failed is not None:
            raise self._failed
        self._pending[key] = (record, parent)
        self._waiting.append((key, record, parent))

    def children(self, parent: str) -> list[dict[str, Any]]:
        # The pending ones first: one written meanwhile is on disk by the time the scope is read.
        pending = [record for record, on in self._pending.copy().values() if on == parent]
        written = self.scope.children(parent)
        seen = {(r.get("key"), r.get("created")) for r in written}
        return written + [r for r in pending if (r.get("key"), r.get("created")) not in seen]

    def start_writing(self) -> None:
        """Hand the records given so far to the writing thread."""
        if not self._waiting:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._write, name="studio-cache-records", daemon=True)
            self._thread.start()
        for item in self._waiting:
            self._queue.put(item)
        self._waiting.clear()

    def flush(self) -> None:
        self.start_writing()
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
        if self._failed is not None:
            raise self._failed

    def _write(self) -> None:
        while (item := self._queue.get()) is not None:
            key, record, parent = item
            try:
                if self._failed is None:
                    self.scope.record(key, record, parent=parent)
            except BaseException as exc:  # raised again in the build's thread
                self._failed = exc
            finally:
                if self._pending.get(key, (None,))[0] is record:
                    del self._pending[key]
