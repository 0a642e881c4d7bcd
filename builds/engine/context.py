"""The build context: .dockerignore with Docker's pattern rules, and content checksums.

Checksums follow BuildKit's content hash: a file's checksum covers its content and its
permission bits and type (not its mtime, not its owner); a symlink's covers its target text;
a directory's covers its own mode and, recursively and sorted by name, every entry under it
that .dockerignore does not exclude (empty directories count). The top-level directory a COPY
names contributes only its contents, since its contents are what is copied.

.dockerignore is read as Docker reads it (moby/patternmatcher's ignorefile reader, then its
matcher), and applied as BuildKit's file sender (fsutil) applies it while walking: each
directory's per-pattern results are handed down to its children, an excluded directory is
still walked when an exception could re-include something below it, and such a directory is
part of the context only when something below it is.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import marshal
import os
import posixpath
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

from .errors import ContextError
from .parallel import in_threads

GLOB_CHARS = "*?["
MAX_SYMLINK_HOPS = 40  # as Linux's own limit on links followed while resolving one path


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the context root, posix separators, no leading "./" ("" is the root)
    kind: str  # "file" | "dir" | "symlink"
    mode: int  # permission bits: st_mode & 0o7777
    size: int  # bytes for files, 0 otherwise
    digest: str  # "sha256:<hex>" per the rules above
    target: str = ""  # symlink target text
    # The path a COPY named, when it is a symlink that resolve() followed to this entry: the
    # copy takes that name (BuildKit names the destination after the source as written).
    source: str = ""


# -- the stat -> sha256 cache ----------------------------------------------------------------------
HASH_CACHE_FORMAT = "studio-hashcache-1"
HASH_CACHE_MAX_ENTRIES = 250_000  # the oldest entries go first; ~50 MB of marshal at most
# A file changed twice within one timestamp tick keeps its stat, so a digest taken while the
# file is this fresh is used once but not remembered (git's "racy clean" problem). Two seconds
# covers the coarsest timestamps in use (FAT); kernels tick in milliseconds.
RACY_WINDOW_NS = 2_000_000_000
READ_CHUNK = 1 << 20


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
            self.entries = _load_hash_cache(path)

    def _known(self, abspath: str, sig: tuple[int, ...]) -> str | None:
        cached = self.entries.get(abspath)
        # A loaded file may hold anything marshal can: check the shape before trusting it.
        if type(cached) is tuple and len(cached) == 6 and cached[:5] == sig:
            return cached[5]
        return None

    def prefetch(self, files: list[tuple[str, os.stat_result]]) -> None:
        """Hash, a few files at a time (see `parallel`), those of `files` (absolute path, stat)
        that the cache does not know, for file_digest to find. Only saves time: a file that
        cannot be read is left for file_digest to report."""
        todo = [(path, sig) for path, sig in ((p, _signature(st)) for p, st in files)
                if self._known(path, sig) is None]

        def take(path: str, sig: tuple[int, ...]) -> None:
            with contextlib.suppress(OSError):
                self._ahead[path] = (sig, sha256_file(path))

        in_threads(take, todo)

    def file_digest(self, abspath: str, st: os.stat_result) -> str:
        """sha256 hex of the file's content, from the cache when the stat matches."""
        sig = _signature(st)
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


def _signature(st: os.stat_result) -> tuple[int, ...]:
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


# -- Go's filepath.Match ---------------------------------------------------------------------------
class BadPattern(ValueError):
    """What Go calls filepath.ErrBadPattern (or a regexp that does not compile)."""


def _go_class_char(pattern: str, i: int) -> tuple[str, int]:
    """One character of a `[...]` class and the index after it (Go's getEsc)."""
    if i >= len(pattern) or pattern[i] in "-]":
        raise BadPattern("syntax error in pattern")
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise BadPattern("syntax error in pattern")
    if i + 1 >= len(pattern):
        raise BadPattern("syntax error in pattern")  # the class is never closed
    return pattern[i], i + 1


def _go_class(pattern: str, i: int) -> tuple[str, int]:
    """The class starting after `[` at `i` as a Python class, and the index after its `]`.
    Go negates with `^` only (`[!a]` is `!` or `a`) and needs at least one range."""
    negated = pattern.startswith("^", i)
    i += negated
    ranges: list[tuple[str, str]] = []
    while not (pattern.startswith("]", i) and ranges):
        lo, i = _go_class_char(pattern, i)
        hi = lo
        if pattern[i] == "-":
            hi, i = _go_class_char(pattern, i + 1)
        ranges.append((lo, hi))
    body = "".join(
        re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}" for lo, hi in ranges if lo <= hi
    )
    if not body:  # Go accepts a reversed range; it matches nothing
        return ("(?s:.)" if negated else "(?!)"), i + 1
    return f"[{'^' if negated else ''}{body}]", i + 1


def go_match_regex(pattern: str) -> str:
    """Go's filepath.Match as a Python expression (unanchored): `*` and `?` never match `/`,
    `\\` escapes, `[...]` is a class. BadPattern for what Go rejects, wherever it is."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i >= len(pattern):
                raise BadPattern("syntax error in pattern")
            out.append(re.escape(pattern[i]))
        elif c == "[":
            cls, i = _go_class(pattern, i + 1)
            out.append(cls)
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=256)
def go_glob(pattern: str) -> re.Pattern[str]:
    """One path segment's filepath.Match, compiled."""
    return re.compile(go_match_regex(pattern) + r"\Z", re.DOTALL)


def has_wildcards(segment: str) -> bool:
    """BuildKit's check: an unescaped `*`, `?` or `[` makes a source a pattern."""
    i = 0
    while i < len(segment):
        if segment[i] == "\\":
            i += 2
            continue
        if segment[i] in GLOB_CHARS:
            return True
        i += 1
    return False


# -- .dockerignore ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool  # a `!` line: re-includes what it matches
    regex: re.Pattern[str]
    # How patternmatcher compares: "exact", "prefix" (a trailing **), "suffix" (a leading **)
    # or "regexp"; the first three are plain string tests there, so they are here.
    kind: str = "regexp"
    line: int = 0  # in the ignore file

    def matches(self, path: str) -> bool:
        kind = self.kind
        if kind == "exact":
            return path == self.text
        if kind == "prefix":
            return path.startswith(self.text[:-2])
        if kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        return self.regex.match(path) is not None


# Go's unicode.IsSpace, which strings.TrimSpace uses (str.strip would also take \x1c-\x1f).
_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)


def go_clean(path: str) -> str:
    """Go's filepath.Clean: posixpath.normpath, except that "//x" becomes "/x"."""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def read_dockerignore(text: str) -> list[tuple[int, str]]:
    """The ignorefile reader: (line number, pattern) with a first-line BOM dropped, lines that
    *start* with `#` skipped (an indented `#` is a pattern), whitespace trimmed, each pattern
    cleaned, and a leading `/` dropped, `!` kept in front."""
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        if raw.startswith("#"):
            continue
        pattern = raw.strip(_GO_SPACE)
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip(_GO_SPACE)
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append((number, "!" + pattern if invert else pattern))
    return out


_RE2_QUOTED = frozenset(".+()|{}$")


def docker_regex(pattern: str) -> tuple[str, str]:
    """patternmatcher's compile step: the kind of comparison and the RE2 expression it builds.
    `**` spans directories, `*` and `?` stay in one, `[...]` and escapes pass through."""
    out = ["^"]
    kind = "exact"
    pos, n = 0, len(pattern)
    first = True
    while pos < n:
        ch = pattern[pos]
        pos += 1
        if ch == "*" and pattern.startswith("*", pos):
            pos += 1
            if pattern.startswith("/", pos):
                pos += 1  # "**/" is "**"
            if pos == n:
                if kind == "exact":
                    kind = "prefix"
                else:
                    out.append(".*")
                    kind = "regexp"
            else:
                out.append("(.*/)?")
                kind = "regexp"
            if first:
                kind = "suffix"
        elif ch == "*":
            out.append("[^/]*")
            kind = "regexp"
        elif ch == "?":
            out.append("[^/]")
            kind = "regexp"
        elif ch in _RE2_QUOTED:
            out.append("\\" + ch)
        elif ch == "\\":
            if pos < n:
                out.append("\\" + pattern[pos])
                pos += 1
                kind = "regexp"
            else:
                out.append("\\")
        elif ch in "[]":
            out.append(ch)
            kind = "regexp"
        else:
            out.append(ch)
        first = False
    if kind == "regexp":
        out.append("$")
    return kind, "".join(out)


# RE2's ASCII classes, for `[[:alpha:]]` and the like inside a class.
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~",
    "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z", "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}  # fmt: skip
_SAME_ESCAPES = frozenset("afnrtvdDsSwW")  # mean the same in RE2 and in Python with re.ASCII
_OUTSIDE_CLASS_ESCAPES = {"b": "\\b", "B": "\\B", "A": "\\A", "z": "\\Z"}


def _re2_escape(c: str, in_class: bool) -> str:
    if c.isascii() and not c.isalnum():
        return re.escape(c)
    if c in _SAME_ESCAPES:
        return "\\" + c
    if not in_class and c in _OUTSIDE_CLASS_ESCAPES:
        return _OUTSIDE_CLASS_ESCAPES[c]
    raise BadPattern(f"escape \\{c} is not supported")


def re2_to_python(expr: str) -> re.Pattern[str]:
    """Compile an RE2 expression of the shape docker_regex builds with Python's re, keeping
    RE2's meaning: `$` is the end of the text, `[` inside a class is literal, POSIX classes."""
    out: list[str] = []
    i, n = 0, len(expr)
    in_class = class_start = False
    while i < n:
        ch = expr[i]
        if ch == "\\":
            if i + 1 >= n:
                raise BadPattern("trailing backslash")
            out.append(_re2_escape(expr[i + 1], in_class))
            class_start = False
            i += 2
            continue
        if in_class:
            if ch == "]":
                out.append("\\]" if class_start else "]")
                in_class = class_start
            elif expr.startswith("[:", i) and (end := expr.find(":]", i + 2)) != -1:
                body = _POSIX_CLASSES.get(expr[i + 2 : end])
                if body is None:
                    raise BadPattern(f"invalid character class {expr[i : end + 2]}")
                out.append(body)
                i = end + 1
            else:
                out.append("\\" + ch if ch in "[&~|" else ch)  # Python reads these as set operations
            class_start = False
        elif ch == "[":
            in_class = class_start = True
            out.append("[")
            if expr.startswith("^", i + 1):
                out.append("^")
                i += 1
        else:
            out.append("\\Z" if ch == "$" else ch)
        i += 1
    if in_class:
        raise BadPattern("missing closing ]")
    try:
        return re.compile("".join(out), re.ASCII)
    except re.error as exc:
        raise BadPattern(str(exc)) from None


def compile_pattern(text: str, line: int = 0) -> Pattern:
    """One pattern as patternmatcher.New takes it (`!` in front for an exception)."""
    text = go_clean(text.strip(_GO_SPACE))
    exclusion = text.startswith("!")
    if exclusion:
        if len(text) == 1:
            raise BadPattern('illegal exclusion pattern: "!"')
        text = text[1:]
    go_match_regex(text)  # Docker checks the syntax with filepath.Match first
    kind, expr = docker_regex(text)
    if kind == "regexp":
        regex = re2_to_python(expr)
    elif kind == "exact":
        regex = re.compile(re.escape(text) + r"\Z", re.DOTALL)
    elif kind == "prefix":
        regex = re.compile(re.escape(text[:-2]), re.DOTALL)
    else:
        suffix = text[2:]
        alone = f"|{re.escape(suffix[1:])}\\Z" if suffix.startswith("/") else ""
        regex = re.compile(f"(?:.*{re.escape(suffix)}\\Z{alone})", re.DOTALL)
    return Pattern(text, exclusion, regex, kind, line)


def parse_dockerignore(text: str, *, file: str = ".dockerignore") -> list[Pattern]:
    """The patterns of an ignore file, in order. ContextError (naming the line) for a pattern
    Docker would refuse, since Docker fails such a build too."""
    patterns: list[Pattern] = []
    for line, raw in read_dockerignore(text):
        try:
            patterns.append(compile_pattern(raw, line))
        except BadPattern as exc:
            raise ContextError(f"invalid pattern {raw!r}: {exc}", file=file, line=line) from None
    return patterns


MatchInfo = tuple[bool, ...]
Listing = dict[str, tuple[os.DirEntry[str], bool]]  # name -> (its entry, excluded by .dockerignore)


def match_path(patterns: list[Pattern], path: str, parent: MatchInfo | None = None) -> tuple[bool, MatchInfo]:
    """Whether `path` is excluded, and each pattern's result to hand to its children
    (patternmatcher's MatchesUsingParentResults). A pattern that matched the parent directory
    matches the child; otherwise it is tried on the child's path, skipped when it could not
    change the outcome so far. Without `parent`, the path's parent directories are tried."""
    matched = False
    info: list[bool] = []
    for i, pattern in enumerate(patterns):
        hit = parent[i] if parent else False
        if not hit:
            if pattern.exclusion != matched:
                info.append(False)
                continue
            hit = pattern.matches(path)
            if not hit and not parent and "/" in path:
                parts = posixpath.dirname(path).split("/")
                hit = any(pattern.matches("/".join(parts[: k + 1])) for k in range(len(parts)))
        info.append(hit)
        if hit:
            matched = not pattern.exclusion
    return matched, tuple(info)


def any_pattern(patterns: list[Pattern]) -> re.Pattern[str] | None:
    """One expression that matches where any pattern does: when a path inherits no match from
    its parent and this does not match, no pattern can exclude it, found in one call."""
    if not patterns:
        return None
    parts = []
    for pattern in patterns:
        flags = ("a" if pattern.regex.flags & re.ASCII else "") + (
            "s" if pattern.regex.flags & re.DOTALL else ""
        )
        parts.append(f"(?{flags}:{pattern.regex.pattern})" if flags else f"(?:{pattern.regex.pattern})")
    return re.compile("|".join(parts))


def _reinclude_stems(patterns: list[Pattern]) -> tuple[str, ...] | None:
    """fsutil walks into an excluded directory only when an exception might match below it.
    None: some exception is a real pattern, so any directory might hold a match; otherwise the
    literal exceptions' paths (trailing /** or /* dropped), each with a "/" after it."""
    stems = []
    for pattern in patterns:
        if not pattern.exclusion:
            continue
        stem = pattern.text.removesuffix("/**").removesuffix("/*")
        if any(c in stem for c in "*[]?^\\"):
            return None
        stems.append(stem + "/")
    return tuple(stems)


# -- the context -----------------------------------------------------------------------------------
def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")  # names that are not UTF-8 keep their bytes


# A file or symlink as its directory's digest reads it: (kind, mode, size, content digest or
# link target). Directories fold these texts in directly and Entry objects are made only when
# asked for, since a cached rebuild needs no more than the digests.
Leaf = tuple[str, int, int, str]


def _leaf_text(leaf: Leaf) -> str:
    kind, mode, _, body = leaf
    return f"file:{mode:o}\0{body}" if kind == "file" else f"link\0{body}"


def _leaf_entry(rel: str, leaf: Leaf) -> Entry:
    kind, mode, size, body = leaf
    digest = "sha256:" + hashlib.sha256(_utf8(_leaf_text(leaf))).hexdigest()
    return Entry(rel, kind, mode, size, digest, body if kind == "symlink" else "")


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(_utf8(text)).hexdigest()


@dataclass
class _Where:
    """Where a COPY source was named, for its errors."""

    src: str
    file: str
    line: int | None
    keyword: str | None

    def error(self, message: str) -> ContextError:
        subject = f'{self.keyword} source "{self.src}"' if self.keyword else f'source "{self.src}"'
        error = ContextError(f"{subject} {message}", file=self.file, line=self.line)
        error.with_details(source=self.src)
        return error


class EscapesContext(ContextError):
    """A file that must come from inside the build context is a link leading out of it."""


def _lexically_inside(root: Path, path: Path, spelled_root: Path | None) -> bool:
    """Whether `path`, as written (links not followed), names something in the context `root`
    (given resolved; a context reached through a link counts by the name it was given too)."""
    spelled = Path(os.path.abspath(path))
    bases = (root, Path(os.path.abspath(spelled_root or root)))
    return any(spelled == base or spelled.is_relative_to(base) for base in bases)


def read_inside(root: Path, path: Path, *, limit: int, what: str, spelled_root: Path | None = None) -> bytes:
    """The bytes of the file `path`, read as BuildKit reads the Dockerfile and .dockerignore:
    a path inside the context `root` (resolved) is read only when it stays inside it through
    every link (EscapesContext otherwise, before anything of the target is read); a path outside
    the context (`-f` on the command line, as `docker build` allows) is read as named. Only a
    regular file of at most `limit` bytes is read (ContextError naming `what`);
    FileNotFoundError when there is none."""
    real = Path(os.path.realpath(path))
    if _lexically_inside(root, path, spelled_root) and not (real == root or real.is_relative_to(root)):
        raise EscapesContext(f"{what} is a symbolic link leading outside the build context: it is read "
                             "only from inside the context", file=what)
    # O_NONBLOCK: a FIFO must not hold the build up at open(); it is refused just below.
    fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ContextError(f"{what} is not a regular file", file=what)
        if st.st_size > limit:
            raise too_large(what, limit)
        data = os.read(fd, limit + 1)  # a regular file: one read gives all that is there
        while len(data) <= limit and (more := os.read(fd, limit + 1 - len(data))):
            data += more
    finally:
        os.close(fd)
    if len(data) > limit:
        raise too_large(what, limit)
    return data


def too_large(what: str, limit: int) -> ContextError:
    from .limits import describe_size  # limits imports the sandbox package: only when needed

    env = "STUDIO_BUILD_DOCKERFILE_KB"
    return ContextError(f"{what} is larger than {describe_size(limit)} (the limit {env} sets)", file=what)


class BuildContext:
    """A directory sent as the build context. Reads `.dockerignore` at its root (or, when
    `dockerfile` is given and `<dockerfile>.dockerignore` exists beside it, that one, as
    BuildKit does). Everything is read lazily and remembered: build one per build."""

    root: Path

    def __init__(
        self, root: Path | str, *, hash_cache: HashCache | None = None, dockerfile: Path | None = None,
        ignore_limit: int = 256 << 10,
    ) -> None:
        self.root = Path(root).resolve()
        self.spelled_root = Path(root)  # as given, perhaps through a link
        self._root = str(self.root)
        self.ignore_limit = ignore_limit  # the largest .dockerignore read
        self.hash_cache = hash_cache if hash_cache is not None else HashCache()
        self.ignore_file, text = self._read_ignore_file(dockerfile)
        self.patterns = parse_dockerignore(text, file=self.ignore_file)
        self.has_exceptions = any(p.exclusion for p in self.patterns)
        self._stems = _reinclude_stems(self.patterns)
        self._any_pattern = any_pattern(self.patterns)
        # dir -> (excluded, per-pattern results for its children); the root is never excluded
        self._infos: dict[str, tuple[bool, MatchInfo | None]] = {"": (False, None)}
        # dir -> name -> (its DirEntry, excluded): files and links .dockerignore keeps, all dirs
        self._listings: dict[str, Listing] = {}
        self._subdirs: dict[str, list[str]] = {}  # dir -> its directories' names, in listing order
        self._has_visible: dict[str, bool] = {}
        self._entries: dict[str, Entry | None] = {}
        self._leaves: dict[str, Leaf | None] = {}
        self._contents: dict[str, str] = {}  # dir -> the text of its children, as its digest read it
        self._children: dict[str, list[str]] = {}

    def _read_ignore_file(self, dockerfile: Path | None) -> tuple[str, str]:
        candidates = [self.root / ".dockerignore"]
        if dockerfile is not None:
            candidates.insert(0, Path(dockerfile).with_name(Path(dockerfile).name + ".dockerignore"))
        for path in candidates:
            try:
                data = read_inside(self.root, path, limit=self.ignore_limit, what=path.name,
                                   spelled_root=self.spelled_root)
            except EscapesContext:
                continue  # a link out of the context: its text is not the user's to show
            except OSError:
                continue
            return path.name, data.decode("utf-8", "surrogateescape")
        return ".dockerignore", ""

    # -- .dockerignore -----------------------------------------------------------------------------
    def ignored(self, rel: str) -> bool:
        """True when .dockerignore excludes `rel`: the last pattern matching it, or one of its
        parent directories, decides."""
        if not self.patterns or not rel:
            return False
        parent = rel.rpartition("/")[0]
        return match_path(self.patterns, rel, self._dir_info(parent)[1])[0]

    def _dir_info(self, rel: str) -> tuple[bool, MatchInfo | None]:
        """(excluded, results for its children) of directory `rel`, from the top down."""
        missing = []
        while rel not in self._infos:
            missing.append(rel)
            rel = rel.rpartition("/")[0]
        for path in reversed(missing):
            parent_info = self._infos[path.rpartition("/")[0]][1]
            self._infos[path] = match_path(self.patterns, path, parent_info)
        return self._infos[missing[0] if missing else rel]

    def _may_reinclude(self, rel: str) -> bool:
        if self._stems is None:
            return True
        prefix = rel + "/"
        return any(stem.startswith(prefix) for stem in self._stems)

    # -- listing -----------------------------------------------------------------------------------
    def _listing(self, rel: str) -> Listing:
        """The entries of directory `rel` that can be in the context. `rel` must be a real
        directory of the context (no symlink on the way), which every caller makes sure of."""
        found = self._listings.get(rel)
        if found is not None:
            return found
        items: Listing = {}
        subdirs: list[str] = []
        excluded, info = self._dir_info(rel) if self.patterns else (False, None)
        if not excluded or (self.has_exceptions and self._may_reinclude(rel)):
            try:
                with os.scandir(self.path(rel)) as it:
                    self._fill(rel, it, info, items, subdirs)
            except (FileNotFoundError, NotADirectoryError):
                pass
            except OSError as exc:
                if not excluded:
                    raise ContextError(
                        f'cannot read "{rel or "."}" in the build context: {exc.strerror}'
                    ) from None
        self._listings[rel] = items
        self._subdirs[rel] = subdirs
        return items

    def _fill(
        self,
        rel: str,
        it: Iterator[os.DirEntry[str]],
        info: MatchInfo | None,
        items: Listing,
        subdirs: list[str],
    ) -> None:
        """One directory's entries into `items`: the loop every file of a context goes
        through, so it keeps to local names."""
        patterns, infos = self.patterns, self._infos
        prefix = rel + "/" if rel else ""
        # Without a match handed down, a file no pattern matches is kept: one regex call.
        quick = self._any_pattern.match if self._any_pattern is not None and not any(info or ()) else None
        for item in it:
            name = item.name
            if item.is_dir(follow_symlinks=False):
                excluded = False
                if patterns:
                    found = infos[prefix + name] = match_path(patterns, prefix + name, info)
                    excluded = found[0]
                items[name] = (item, excluded)
                subdirs.append(name)
                continue
            if not item.is_file(follow_symlinks=False) and not item.is_symlink():
                continue  # sockets, fifos and devices are not part of a context
            path = prefix + name
            if not patterns or (quick and not quick(path)) or not match_path(patterns, path, info)[0]:
                items[name] = (item, False)

    def _visible_below(self, top: str) -> bool:
        """Whether an excluded directory holds something the context keeps (then fsutil sends
        the directory too). Iterative: excluded trees can be deep."""
        known = self._has_visible.get(top)
        if known is not None:
            return known
        stack, seen = [top], []
        while stack:
            rel = stack.pop()
            seen.append(rel)
            for name, (_, excluded) in self._listing(rel).items():
                child = _join(rel, name)
                if not excluded or self._has_visible.get(child):
                    self._has_visible[top] = True
                    return True
                if child not in self._has_visible:
                    stack.append(child)
        for rel in seen:
            self._has_visible[rel] = False
        return False

    def children(self, rel: str) -> list[str]:
        """Names of the visible entries in directory `rel`, sorted."""
        found = self._children.get(rel)
        if found is not None:
            return found
        names = sorted(
            name
            for name, (_, excluded) in self._listing(rel).items()
            if not excluded or self._visible_below(_join(rel, name))
        )
        self._children[rel] = names
        return names

    # -- entries -----------------------------------------------------------------------------------
    def path(self, rel: str) -> str:
        """Where the context's `rel` is on this machine ("" is the root)."""
        return f"{self._root}/{rel}" if rel else self._root

    def entry(self, rel: str) -> Entry | None:
        """The visible entry at `rel` (no symlink followed), or None."""
        if rel in self._entries:
            return self._entries[rel]
        if rel == "":
            return self._tree_entry("")
        item = self._item(rel)
        if item is None:
            found = None
        elif item[0].is_dir(follow_symlinks=False):
            visible = not item[1] or self._visible_below(rel)
            return self._tree_entry(rel) if visible else self._remember(rel, None)
        else:
            leaf = self._leaves[rel] if rel in self._leaves else self._leaf(rel, item[0])
            found = _leaf_entry(rel, leaf) if leaf is not None else None
        return self._remember(rel, found)

    def _remember(self, rel: str, found: Entry | None) -> Entry | None:
        self._entries[rel] = found
        return found

    def _item(self, rel: str) -> tuple[os.DirEntry[str], bool] | None:
        """The listing item of `rel` when each directory above it is a real directory."""
        parts = rel.split("/")
        parent = ""
        for name in parts[:-1]:
            above = self._listing(parent).get(name)
            if above is None or not above[0].is_dir(follow_symlinks=False):
                return None
            parent = _join(parent, name)
        return self._listing(parent).get(parts[-1])

    def _leaf(self, rel: str, item: os.DirEntry[str]) -> Leaf | None:
        try:
            st = item.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                leaf: Leaf | None = ("symlink", st.st_mode & 0o7777, 0, os.readlink(item.path))
            else:
                leaf = ("file", st.st_mode & 0o7777, st.st_size, self.hash_cache.file_digest(item.path, st))
        except FileNotFoundError:
            leaf = None  # removed while the build was reading the context
        except OSError as exc:
            raise ContextError(f'cannot read "{rel}" in the build context: {exc.strerror}') from None
        self._leaves[rel] = leaf
        return leaf

    def stat(self, rel: str) -> os.stat_result:
        """The stat of the visible entry `rel` as the context read it (a file's is the one its
        digest was taken with: a listing's DirEntry keeps its first stat)."""
        if rel == "":
            return os.lstat(self._root)
        parent, _, name = rel.rpartition("/")
        return self._listing(parent)[name][0].stat(follow_symlinks=False)

    def content_digest(self, rel: str) -> str:
        """sha256 hex of the content of the context file `rel`, read when its stat was stat(rel)."""
        if rel not in self._leaves:
            parent, _, name = rel.rpartition("/")
            self._leaf(rel, self._listing(parent)[name][0])
        leaf = self._leaves[rel]
        if leaf is None or leaf[0] != "file":
            raise ContextError(f'"{rel}" is no longer a file in the build context')
        return leaf[3]

    def _dir_mode(self, rel: str) -> int:
        if rel == "":
            return stat.S_IMODE(os.lstat(self._root).st_mode)
        parent, _, name = rel.rpartition("/")
        return stat.S_IMODE(self._listing(parent)[name][0].stat(follow_symlinks=False).st_mode)

    def _tree_entry(self, top: str) -> Entry | None:
        """The directory `top` with every entry below it, children before parents, without
        recursion (a context can nest deeper than Python's stack)."""
        self._prefetch_digests(top)
        stack = [top]
        while stack:
            rel = stack[-1]
            if rel in self._entries:
                stack.pop()
                continue
            names = self.children(rel)
            listing = self._listing(rel)
            prefix = rel + "/" if rel else ""
            pending = [
                prefix + name
                for name in self._subdirs[rel]
                if prefix + name not in self._entries
                and (not listing[name][1] or self._visible_below(prefix + name))
            ]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self._entries[rel] = self._dir_entry(rel, names, listing)
        return self._entries[top]

    def _prefetch_digests(self, top: str) -> None:
        """Have the hash cache take, several at a time, the digests of the files below `top`
        that making its entry asks for one by one."""
        files: list[tuple[str, os.stat_result]] = []
        stack = [top]
        while stack:
            rel = stack.pop()
            prefix = rel + "/" if rel else ""
            for name, (item, excluded) in self._listing(rel).items():
                child = prefix + name
                if child in self._entries or child in self._leaves:
                    continue
                try:
                    if item.is_dir(follow_symlinks=False):
                        if not excluded or self._visible_below(child):
                            stack.append(child)
                    elif item.is_file(follow_symlinks=False):
                        files.append((item.path, item.stat(follow_symlinks=False)))
                except OSError:
                    continue  # _leaf meets it again and says what is wrong
        self.hash_cache.prefetch(files)

    def _dir_entry(self, rel: str, names: list[str], listing: Listing) -> Entry:
        """A directory whose subdirectories are done. Its contents' text is one record per
        child, each field ended by NUL, which no name or link target can hold."""
        parts: list[str] = []
        kept: list[str] = []
        entries, leaves, prefix = self._entries, self._leaves, (rel + "/" if rel else "")
        for name in names:
            child = prefix + name
            sub = entries.get(child)
            if sub is not None and sub.kind == "dir":  # files may be there too, asked for by name
                parts.append(f"{name}\0{sub.digest}\0")
            else:
                leaf = leaves[child] if child in leaves else self._leaf(child, listing[name][0])
                if leaf is None:
                    continue
                parts.append(f"{name}\0{_leaf_text(leaf)}\0")
            kept.append(name)
        if len(kept) != len(names):
            self._children[rel] = kept
        text = self._contents[rel] = "".join(parts)
        mode = self._dir_mode(rel)
        return Entry(rel, "dir", mode, 0, _digest(f"dir:{mode:o}\0{text}"))

    # -- what COPY reads ---------------------------------------------------------------------------
    def resolve(
        self, src: str, *, file: str = "Dockerfile", line: int | None = None, keyword: str | None = None
    ) -> list[Entry]:
        """A COPY/ADD source (a path or a glob) -> the matching top-level entries, sorted."""
        where = _Where(src, file, line, keyword)
        rel = posixpath.normpath(src.lstrip("/") or ".")
        if rel == ".." or rel.startswith("../"):
            raise where.error("is outside the build context")
        rel = "" if rel == "." else rel
        parts = rel.split("/") if rel else []
        first_glob = next((i for i, part in enumerate(parts) if has_wildcards(part)), None)
        if first_glob is None:
            entries = [self._named(rel, where)]
        else:
            entries = self._glob(parts[:first_glob], parts[first_glob:], where)
        return sorted(entries, key=lambda e: e.source or e.path)

    def _named(self, rel: str, where: _Where) -> Entry:
        real, links = self._follow(rel, where)
        found = self.entry(real) if real is not None else None
        if found is None:
            raise self._not_found(rel, links, where)
        return replace(found, source=rel) if real != rel else found

    def _glob(self, head: list[str], tail: list[str], where: _Where) -> list[Entry]:
        base, links = self._follow("/".join(head), where)
        if base is None or not self._is_dir(base):
            raise self._not_found("/".join(head), links, where)
        matches = [base]
        for segment in tail:
            try:
                regex = go_glob(segment)
            except BadPattern:
                raise where.error("is not a valid pattern (syntax error in pattern)") from None
            matches = [
                _join(rel, name)
                for rel in matches
                if self._is_dir(rel)
                for name in self.children(rel)
                if regex.match(name)
            ]
        if not matches:
            raise where.error("matches no file in the build context" + self._ignore_hint())
        return [self._named(rel, where) for rel in matches]

    def _is_dir(self, rel: str) -> bool:
        if rel == "":
            return True
        item = self._item(rel)
        return item is not None and item[0].is_dir(follow_symlinks=False)

    def _follow(self, rel: str, where: _Where) -> tuple[str | None, list[tuple[str, str]]]:
        """`rel` with every symlink on it followed inside the context (an absolute target
        starts again from the context's root, as BuildKit reads it), or None when something
        on the way is missing or ignored; and the links followed. ContextError when a link
        leads above the root."""
        todo = rel.split("/")[::-1] if rel else []
        done: list[str] = []
        links: list[tuple[str, str]] = []
        while todo:
            name = todo.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if not done:
                    link, target = links[-1]
                    raise where.error(
                        f'leads outside the build context through the symbolic link "{link}" -> "{target}"'
                    )
                done.pop()
                continue
            parent = "/".join(done)
            item = self._listing(parent).get(name)
            if item is None:
                return None, links
            if item[0].is_symlink():
                if len(links) >= MAX_SYMLINK_HOPS:
                    raise where.error("goes through too many levels of symbolic links")
                target = os.readlink(item[0].path)
                links.append((_join(parent, name), target))
                if target.startswith("/"):
                    done = []
                todo.extend(target.split("/")[::-1])
                continue
            if todo and not item[0].is_dir(follow_symlinks=False):
                return None, links
            done.append(name)
        return "/".join(done), links

    def _not_found(self, rel: str, links: list[tuple[str, str]], where: _Where) -> ContextError:
        if links:
            link, target = links[-1]
            return where.error(
                f'is not in the build context: the symbolic link "{link}" points to "{target}", '
                "which the context does not hold"
            )
        if rel and self.ignored(rel) and os.path.lexists(self.path(rel)):
            return where.error(f"is excluded by {self.ignore_file}, so it is not in the build context")
        return where.error("not found in the build context")

    def _ignore_hint(self) -> str:
        return f" (files {self.ignore_file} excludes do not count)" if self.patterns else ""

    def walk(self, entry: Entry) -> Iterator[Entry]:
        """`entry` itself and, for a directory, every visible entry below it, parents first."""
        stack = [entry]
        while stack:
            current = stack.pop()
            yield current
            if current.kind == "dir":
                below = (self.entry(_join(current.path, name)) for name in self.children(current.path))
                stack.extend(reversed([e for e in below if e is not None]))

    def checksum(self, entries: list[Entry]) -> str:
        """One "sha256:<hex>" over the given top-level entries, as a COPY of them is keyed."""
        h = hashlib.sha256()
        for entry in entries:
            if entry.kind == "dir":
                self._tree_entry(entry.path)
                h.update(_utf8(self._contents[entry.path]))
            else:
                h.update(_utf8(f"{posixpath.basename(entry.source or entry.path)}\0{entry.digest}\0"))
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
