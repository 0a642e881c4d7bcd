"""The stat -> sha256 cache: a file whose stat has not changed since its content was hashed
is not read again, across builds when the cache is saved."""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import tempfile
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

from ..parallel import in_threads

HASH_CACHE_FORMAT = "studio-hashcache-1"
HASH_CACHE_FILE = "hashcache"  # in the store's root
HASH_CACHE_MAX_ENTRIES = 250_000  # the oldest entries go first; ~50 MB of marshal at most
# A file changed twice within one timestamp tick keeps its stat, so a digest taken while the
# file is this fresh is used once but not remembered (git's "racy clean" problem). Two seconds
# covers the coarsest timestamps in use (FAT); kernels tick in milliseconds.
RACY_WINDOW_NS = 2_000_000_000
READ_CHUNK = 1 << 20

# Cache files loaded ahead of the build that will ask for them (the warm engine's spare process
# loads its store's while it waits for a caller), by absolute path: the file's identity when
# it was read, and what it held. A build takes one only while the file is still that file.
_preloaded: dict[str, tuple[tuple[int, int, int, int], dict[str, tuple[int, int, int, int, int, str]]]] = {}
# Told of each cache file saved (the warm engine has its waiting spare read it then).
on_save: Callable[[Path], None] | None = None


class HashCache:
    """Remembers stat -> sha256 of file contents, so unchanged files are not hashed again.

    Keyed by absolute path; valid while (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)
    match. Persisted to one file with `save()` (atomic write); loading a missing or corrupt
    file gives an empty cache."""

    def __init__(self, path: Path | None = None, *, racy_window_ns: int = RACY_WINDOW_NS) -> None:
        self.path = path
        self.racy_window_ns = racy_window_ns
        self.entries: dict[str, tuple[int, int, int, int, int, str]] = {}
        self.dirty = False
        self._used: set[str] = set()  # looked up or added since loading: kept first when trimming
        self._ahead: dict[str, tuple[tuple[int, ...], str]] = {}  # hashed by prefetch(), not yet asked for
        if path is not None:
            preloaded = _take_preloaded(path)
            self.entries = preloaded if preloaded is not None else _load_hash_cache(path)

    def _known(self, abspath: str, sig: tuple[int, ...]) -> str | None:
        cached = self.entries.get(abspath)
        # A loaded file may hold anything marshal can: check the shape before trusting it.
        if type(cached) is tuple and len(cached) == 6 and cached[:5] == sig:
            return cached[5]
        return None

    def prefetch(self, files: list[tuple[str, os.stat_result]]) -> dict[str, str]:
        """The digests the cache already knows for `files` (absolute path, stat), by path; the
        others are hashed, a few files at a time (see `parallel`), for file_digest to find.
        One pass over the stats: in a rebuild of an unchanged context every file is known, and
        asking file_digest for each again would cost as much as this whole loop. Hashing only
        saves time: a file that cannot be read is left for file_digest to report."""
        known, todo = self.split_known(files)

        def take(path: str, sig: tuple[int, ...]) -> None:
            with contextlib.suppress(OSError):
                self._ahead[path] = (sig, sha256_file(path))

        in_threads(take, todo)
        return known

    def split_known(
        self, files: list[tuple[str, os.stat_result]]
    ) -> tuple[dict[str, str], list[tuple[str, tuple[int, ...]]]]:
        """The digests this cache holds for `files`, by path, and the (path, signature) of the rest."""
        known: dict[str, str] = {}
        todo: list[tuple[str, tuple[int, ...]]] = []
        entries = self.entries
        for path, st in files:
            sig = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            cached = entries.get(path)
            # A loaded file may hold anything marshal can: check the shape before trusting it.
            if type(cached) is tuple and len(cached) == 6 and cached[:5] == sig:
                known[path] = cached[5]
            else:
                todo.append((path, sig))
        self._used.update(known)
        return known, todo

    def mark_used(self, paths: set[str]) -> None:
        """Paths whose digests a build took from this cache's file by another way (a context read
        ahead): kept as recently used when the cache is trimmed."""
        self._used |= paths

    def file_digest(self, abspath: str, st: os.stat_result) -> str:
        """sha256 hex of the file's content, from the cache when the stat matches."""
        sig = signature(st)
        digest = self._known(abspath, sig)
        if digest is not None:
            self._used.add(abspath)
            return digest
        ahead = self._ahead.pop(abspath, None)
        digest = ahead[1] if ahead is not None and ahead[0] == sig else sha256_file(abspath)
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) >= self.racy_window_ns:
            self.entries[abspath] = (*sig, digest)
            self._used.add(abspath)
            self.dirty = True
        return digest

    def save(self) -> None:
        """Write the cache (temp file + rename), merged with what other processes saved
        meanwhile. Never raises for I/O: the cache only saves time, a build must not fail on it."""
        if self.path is None or not self.dirty:
            return
        merged = _load_hash_cache(self.path)
        for key, value in self.entries.items():
            if key in self._used:
                merged.pop(key, None)
                merged[key] = value  # at the end: the most recently used are trimmed last
            else:
                merged.setdefault(key, value)  # another process may know better since we loaded
        if len(merged) > HASH_CACHE_MAX_ENTRIES:
            merged = dict(islice(merged.items(), len(merged) - HASH_CACHE_MAX_ENTRIES, None))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    marshal.dump((HASH_CACHE_FORMAT, merged), f)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError:
            return
        self.dirty = False
        if on_save is not None:
            on_save(self.path)


def signature(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def sha256_file(path: str) -> str:
    """sha256 hex of a file's content (os.read: a third cheaper than hashlib.file_digest on a
    context's many small files, which it opens through io)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        digest = hashlib.sha256()
        while chunk := os.read(fd, READ_CHUNK):
            digest.update(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)


def _load_hash_cache(path: Path) -> dict[str, tuple[int, int, int, int, int, str]]:
    try:
        # loads() over one read: load() on a file reads object by object, five times slower
        loaded = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    valid = type(loaded) is tuple and len(loaded) == 2 and loaded[0] == HASH_CACHE_FORMAT
    return loaded[1] if valid and type(loaded[1]) is dict else {}



def preload(path: Path) -> None:
    """Load the cache file at `path` now, for the next HashCache of that path in this process to
    take instead of reading it (loading 10,000 entries costs a cached rebuild 10-50 ms)."""
    before = _file_identity(path)
    entries = _load_hash_cache(path)
    if before is not None and _file_identity(path) == before:  # not replaced while being read
        _preloaded[os.path.abspath(path)] = (before, entries)


def preload_again(path: Path) -> bool:
    """Preload the file at `path` again if it was saved since it was preloaded; returns whether
    it read it."""
    found = _preloaded.get(os.path.abspath(path))
    if found is not None and _file_identity(path) == found[0]:
        return False
    preload(path)
    return True


def preloaded(path: Path) -> dict[str, tuple[int, int, int, int, int, str]] | None:
    """The entries preloaded from `path`, left for a build to take; only to be read."""
    found = _preloaded.get(os.path.abspath(path))
    return found[1] if found is not None else None


def _take_preloaded(path: Path) -> dict[str, tuple[int, int, int, int, int, str]] | None:
    """The preloaded entries of `path` (taken once: the build then adds to them) if the file is
    still the one that was read: a save replaces it (a new inode), an edit changes its times.
    Entries are never wrong, only incomplete (each holds the stat it was hashed at), so this
    check is about not missing what other builds saved meanwhile."""
    found = _preloaded.pop(os.path.abspath(path), None)
    if found is None or _file_identity(path) != found[0]:
        return None
    return found[1]


def _file_identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns
