"""The build context: .dockerignore with Docker's pattern rules, and content checksums.

INTERFACE STUB: the implementation fills in the bodies; the types and signatures are the
contract the rest of the engine is written against.

Checksums follow BuildKit's content hash: a file's checksum covers its content and its
permission bits and type (not its mtime, not its owner); a symlink's covers its target text;
a directory's covers its own mode and, recursively and sorted by name, every entry under it
that .dockerignore does not exclude (empty directories count).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the context root, posix separators, no leading "./" ("" is the root)
    kind: str  # "file" | "dir" | "symlink"
    mode: int  # permission bits: st_mode & 0o7777
    size: int  # bytes for files, 0 otherwise
    digest: str  # "sha256:<hex>" per the rules above
    target: str = ""  # symlink target text


class HashCache:
    """Remembers stat -> sha256 of file contents, so unchanged files are not hashed again.

    Keyed by absolute path; valid while (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)
    match. Persisted to one file with `save()` (atomic write); loading a missing or corrupt
    file gives an empty cache."""

    def __init__(self, path: Path | None = None) -> None:
        raise NotImplementedError

    def file_digest(self, abspath: str, st: object) -> str:
        """sha256 hex of the file's content, from the cache when the stat matches."""
        raise NotImplementedError

    def save(self) -> None:
        raise NotImplementedError


class BuildContext:
    """A directory sent as the build context. Reads `.dockerignore` at its root."""

    root: Path

    def __init__(self, root: Path | str, *, hash_cache: HashCache | None = None) -> None:
        raise NotImplementedError

    def ignored(self, rel: str) -> bool:
        """True when .dockerignore excludes `rel` (Docker's rules: patterns relative to the root,
        `**`, `!` exceptions with the last matching pattern winning, a parent dir's exclusion
        applying to its contents unless an exception could re-include something below)."""
        raise NotImplementedError

    def resolve(self, src: str, *, file: str = "Dockerfile", line: int | None = None) -> list[Entry]:
        """A COPY/ADD source as written (after variable expansion): a path or a glob
        (`*`, `?`, `[...]`) relative to the context root (a leading "/" means the root). Returns
        the matching top-level entries, sorted by path. Raises ContextError naming `file`/`line`
        when nothing matches, when the path leaves the context (`..`) or when it resolves through
        a symlink that points outside the context. Ignored paths do not exist for this."""
        raise NotImplementedError

    def walk(self, entry: Entry) -> Iterator[Entry]:
        """`entry` itself and, for a directory, every non-ignored entry below it, parents before
        children, sorted by path."""
        raise NotImplementedError

    def checksum(self, entries: list[Entry]) -> str:
        """One "sha256:<hex>" over the given top-level entries (their paths as seen relative to
        the source and their digests), as a COPY with these sources is keyed."""
        raise NotImplementedError

    def manifest(self, entries: list[Entry]) -> dict[str, str]:
        """Every path under the given entries -> its digest (directories included): what a COPY
        read, kept so a later build can say which files changed, appeared or vanished."""
        raise NotImplementedError
