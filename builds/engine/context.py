"""The build context: .dockerignore with Docker's pattern rules, and content checksums.

Checksums follow BuildKit's content hash: a file's checksum covers its content and its
permission bits and type (not its mtime, not its owner); a symlink's covers its target text;
a directory's covers its own mode and, recursively and sorted by name, every entry under it
that .dockerignore does not exclude (empty directories count). The top-level directory a COPY
names contributes only its contents, since its contents are what is copied.
"""

from __future__ import annotations

import fnmatch
import hashlib
import marshal
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ContextError

GLOB_CHARS = "*?["


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
        self.path = path
        self.entries: dict[str, tuple[int, int, int, int, int, str]] = {}
        self.dirty = False
        if path is not None:
            try:
                with open(path, "rb") as f:
                    loaded = marshal.load(f)
                if isinstance(loaded, dict):
                    self.entries = loaded
            except (OSError, EOFError, ValueError, TypeError):
                pass

    def file_digest(self, abspath: str, st: os.stat_result) -> str:
        """sha256 hex of the file's content, from the cache when the stat matches."""
        sig = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        cached = self.entries.get(abspath)
        if cached is not None and cached[:5] == sig:
            return cached[5]
        with open(abspath, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        self.entries[abspath] = (*sig, digest)
        self.dirty = True
        return digest

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            marshal.dump(self.entries, f)
        os.replace(tmp, self.path)
        self.dirty = False


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool  # a `!` line: re-includes what it matches
    regex: re.Pattern[str]


def _translate(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax as a regular expression: `*` and `?` stay within one path
    segment, `**` spans any number of them, `[...]` is a class, `\\` escapes."""
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):  # `**/` : zero or more directories
                    i += 1
                    out.append("(?:.*/)?")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    out.append("$")
    return re.compile("".join(out), re.DOTALL)


def parse_dockerignore(text: str) -> list[Pattern]:
    patterns: list[Pattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        if not line:
            continue
        line = posixpath.normpath(line.replace(os.sep, "/"))
        if len(line) > 1 and line.startswith("/"):
            line = line.lstrip("/") or "/"
        if line == ".":
            continue  # Docker ignores a bare "." pattern
        patterns.append(Pattern(line, exclusion, _translate(line)))
    return patterns


class BuildContext:
    """A directory sent as the build context. Reads `.dockerignore` at its root."""

    root: Path

    def __init__(self, root: Path | str, *, hash_cache: HashCache | None = None) -> None:
        self.root = Path(root).resolve()
        self.hash_cache = hash_cache or HashCache()
        try:
            text = (self.root / ".dockerignore").read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        self.patterns = parse_dockerignore(text)
        self.has_exceptions = any(p.exclusion for p in self.patterns)
        self._entries: dict[str, Entry | None] = {}
        self._children: dict[str, list[str]] = {}

    # -- .dockerignore -----------------------------------------------------------------------------
    def ignored(self, rel: str) -> bool:
        """True when .dockerignore excludes `rel`: the last pattern matching it, or one of its
        parent directories, decides."""
        if not self.patterns or not rel:
            return False
        parents = []
        parts = rel.split("/")
        for i in range(1, len(parts)):
            parents.append("/".join(parts[:i]))
        matched = False
        for pattern in self.patterns:
            hit = pattern.regex.match(rel) is not None or any(pattern.regex.match(p) for p in parents)
            if hit:
                matched = not pattern.exclusion
        return matched

    # -- entries -----------------------------------------------------------------------------------
    def _abs(self, rel: str) -> str:
        return str(self.root / rel) if rel else str(self.root)

    def entry(self, rel: str) -> Entry | None:
        """The visible entry at `rel` (no symlink followed), or None."""
        if rel in self._entries:
            return self._entries[rel]
        found = self._make_entry(rel)
        self._entries[rel] = found
        return found

    def _make_entry(self, rel: str) -> Entry | None:
        try:
            st = os.lstat(self._abs(rel))
        except (FileNotFoundError, NotADirectoryError):
            return None
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            children = self.children(rel)
            if rel and self.ignored(rel) and not children:
                return None
            h = hashlib.sha256(f"dir:{mode:o}\n".encode())
            for name in children:
                child = self.entry(f"{rel}/{name}" if rel else name)
                assert child is not None
                h.update(f"{name}\0{child.digest}\n".encode())
            return Entry(rel, "dir", mode, 0, "sha256:" + h.hexdigest())
        if self.ignored(rel):
            return None
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(self._abs(rel))
            digest = hashlib.sha256(f"link\0{target}".encode()).hexdigest()
            return Entry(rel, "symlink", mode, 0, "sha256:" + digest, target)
        if stat.S_ISREG(st.st_mode):
            content = self.hash_cache.file_digest(self._abs(rel), st)
            digest = hashlib.sha256(f"file:{mode:o}\0{content}".encode()).hexdigest()
            return Entry(rel, "file", mode, st.st_size, "sha256:" + digest)
        return None  # sockets, fifos and devices are not part of a context

    def children(self, rel: str) -> list[str]:
        """Names of the visible entries in directory `rel`, sorted."""
        if rel in self._children:
            return self._children[rel]
        names: list[str] = []
        skip_subtree = bool(rel) and self.ignored(rel) and not self.has_exceptions
        if not skip_subtree:
            with os.scandir(self._abs(rel)) as it:
                for item in it:
                    child = f"{rel}/{item.name}" if rel else item.name
                    if self.entry(child) is not None:
                        names.append(item.name)
        names.sort()
        self._children[rel] = names
        return names

    # -- what COPY reads ---------------------------------------------------------------------------
    def resolve(self, src: str, *, file: str = "Dockerfile", line: int | None = None) -> list[Entry]:
        """A COPY/ADD source (a path or a glob) -> the matching top-level entries, sorted."""
        rel = posixpath.normpath(src.lstrip("/") or ".")
        if rel == ".." or rel.startswith("../"):
            raise ContextError(f'source "{src}" is outside the build context', file=file, line=line)
        rel = "" if rel == "." else rel
        if any(c in rel for c in GLOB_CHARS):
            entries = [self._follow(path, src, file, line) for path in self._glob(rel)]
        else:
            self._check_inside(rel, src, file, line)
            entries = [self._follow(rel, src, file, line)] if self.entry(rel) is not None else []
        if not entries:
            raise ContextError(
                f'source "{src}" not found in the build context'
                + (" (or excluded by .dockerignore)" if self.patterns else ""),
                file=file,
                line=line,
            )
        return sorted(entries, key=lambda e: e.path)

    def _check_inside(self, rel: str, src: str, file: str, line: int | None) -> None:
        real = os.path.realpath(self._abs(rel))
        root = str(self.root)
        if real != root and not real.startswith(root + os.sep):
            raise ContextError(
                f'source "{src}" leads outside the build context through a symbolic link',
                file=file,
                line=line,
            )

    def _follow(self, rel: str, src: str, file: str, line: int | None) -> Entry:
        """A top-level source that is a symlink is copied as what it points to, which must be
        inside the context."""
        entry = self.entry(rel)
        assert entry is not None
        if entry.kind != "symlink":
            return entry
        self._check_inside(rel, src, file, line)
        target = os.path.relpath(os.path.realpath(self._abs(rel)), self.root)
        target = "" if target == "." else target.replace(os.sep, "/")
        found = self.entry(target)
        if found is None:
            raise ContextError(f'source "{src}" is a symbolic link to a missing file', file=file, line=line)
        return found

    def _glob(self, pattern: str) -> list[str]:
        matches = [""]
        for segment in pattern.split("/"):
            go_style = segment.replace("[^", "[!")
            matches = [
                f"{base}/{name}" if base else name
                for base in matches
                if (e := self.entry(base)) is not None and e.kind == "dir"
                for name in self.children(base)
                if fnmatch.fnmatchcase(name, go_style)
            ]
        return matches

    def walk(self, entry: Entry) -> Iterator[Entry]:
        """`entry` itself and, for a directory, every visible entry below it, parents first."""
        yield entry
        if entry.kind == "dir":
            for name in self.children(entry.path):
                child = self.entry(f"{entry.path}/{name}" if entry.path else name)
                assert child is not None
                yield from self.walk(child)

    def checksum(self, entries: list[Entry]) -> str:
        """One "sha256:<hex>" over the given top-level entries, as a COPY of them is keyed."""
        h = hashlib.sha256()
        for entry in entries:
            if entry.kind == "dir":
                for name in self.children(entry.path):
                    child = self.entry(f"{entry.path}/{name}" if entry.path else name)
                    assert child is not None
                    h.update(f"{name}\0{child.digest}\n".encode())
            else:
                h.update(f"{posixpath.basename(entry.path)}\0{entry.digest}\n".encode())
        return "sha256:" + h.hexdigest()

    def manifest(self, entries: list[Entry]) -> dict[str, str]:
        """Every path under the given entries -> its digest: what a COPY read, so a later build
        can say which files changed, appeared or vanished. Directories count by their mode
        only, so a changed file is not reported once more as each of its parents."""
        out: dict[str, str] = {}
        for top in entries:
            for entry in self.walk(top):
                if entry is top and entry.kind == "dir":
                    continue
                out[entry.path] = f"dir:{entry.mode:o}" if entry.kind == "dir" else entry.digest
        return out
