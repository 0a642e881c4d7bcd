"""A build context read ahead, under watch: the warm engine's waiting spare lists and stats the
context of the build that is running, in a thread, with an inotify watch on every directory it
reads, placed before it reads it; once that build has saved the hash cache, it takes each file's
digest from it (by the stat read here, as the build would by a stat of its own; a file the cache
does not know is left for the build to hash). The next build of that context takes all this
when no watch has seen a change since, instead of listing, stating and looking up every entry
again (10,000 files: about 130 ms of a 150 ms cached build).

Trusted only where inotify sees every change: on a local filesystem (see LOCAL_FILESYSTEMS), with
no mount inside the context and none made anywhere since (the mount table is polled), the
context's directory still the one read, and a file with more than one name watched itself (a
write through a name outside the context reaches no directory watched here). What inotify never
reports is a write through a shared memory map (mmap(2)); a context changed that way while an
engine waits is read as it was. Any event at all, or a full event queue, and the build reads
the context itself.
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import threading
from pathlib import Path

from ..errors import ContextError
from .hashcache import HashCache, signature
from .tree import BuildContext

# Filesystems whose every change, made on this machine, reaches inotify (an overlay's, made
# through the overlay). Network and FUSE filesystems change without it.
LOCAL_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "f2fs", "overlay"})
# inotify(7)'s IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE,
# IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF: every change to a directory's entries or a file
CHANGES = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800
ONLY_DIRECTORY, DONT_FOLLOW = 0x01000000, 0x02000000
MAX_DIRECTORIES = 8192  # watches come from a per-user budget (fs.inotify.max_user_watches) editors use too
MAX_ENTRIES = 500_000  # read ahead no further: the build reads the rest itself

Key = tuple[str, str, int]  # the context as given, the Dockerfile as given, .dockerignore's limit

_reading: _Reading | None = None
outcome: str | None = None  # what the last take found, for the engine's log


def key(context: Path | str, dockerfile: Path | str | None, ignore_limit: int) -> Key:
    """A build's context as the planner opens it; relative paths against this directory, and not
    normalized (a `..` after a link is the kernel's to resolve)."""
    dockerfile = dockerfile if dockerfile is not None else Path(context) / "Dockerfile"
    return os.path.join(os.getcwd(), context), os.path.join(os.getcwd(), dockerfile), ignore_limit


def start(found: Key) -> str:
    """Read the context of `found` ahead, in a thread; a reading of the same context whose watch
    saw nothing since is kept. Says what it did, for the engine's log."""
    global _reading
    if _reading is not None:
        if _reading.key == found and _reading.still_good():
            return "the context read ahead is unchanged"
        _reading.close()
        _reading = None
    try:
        _reading = _Reading(found)
    except _Untrusted as exc:
        return f"not reading the context ahead: {exc}"
    except OSError as exc:
        return f"not reading the context ahead: {exc.strerror or exc}"
    _reading.thread.start()
    return "reading the context ahead"


def digests_known(entries: dict[str, tuple[int, int, int, int, int, str]] | None) -> None:
    """The hash cache as last saved: the reading ahead goes on to take the digests of the files
    it read from it (never hashing one: a file it does not know stops it, until the next)."""
    if _reading is not None and entries is not None:
        _reading.known = entries
        _reading.known_ready.set()


def stop() -> None:
    """A build starts in this process: the reading ahead stops where it is."""
    if _reading is not None:
        _reading.stop()


def take(context: Path, dockerfile: Path, ignore_limit: int, hash_cache: HashCache) -> BuildContext | None:
    """The context read ahead, when it is this build's and nothing in it changed since it was
    read; None: read it as usual. Taken once."""
    global _reading, outcome
    reading, _reading = _reading, None
    if reading is None:
        return None
    try:
        reading.stop()
        if reading.key != key(context, dockerfile, ignore_limit):
            outcome = "the context read ahead was another build's"
            return None
        if not reading.still_good():
            outcome = "the context read ahead had changed"
            return None
        outcome = f"took the context read ahead ({reading.entries} entries)"
        found = reading.context
        hash_cache.mark_used(found.hash_cache._used)
        found.hash_cache = hash_cache
        found.spelled_root = Path(context)
        found.watch = None
        return found
    finally:
        reading.close()


class _Untrusted(Exception):
    """A context that inotify cannot be trusted to watch."""


class _Reading:
    def __init__(self, found: Key) -> None:
        self.key = found
        root = os.path.realpath(found[0])
        fstype = filesystem_type(root)
        if fstype not in LOCAL_FILESYSTEMS:
            raise _Untrusted(f"it is on {fstype or 'an unknown filesystem'}")
        self.spoiled: str | None = None
        self.halt = threading.Event()
        self.known: dict[str, tuple[int, int, int, int, int, str]] = {}
        self.known_ready = threading.Event()
        self.directories = 0
        self.entries = 0
        from inotify_simple import INotify  # here: importing it costs a build that never reads ahead

        self.notify = INotify(nonblocking=True)
        try:
            self.mounts = open("/proc/self/mountinfo", "rb")  # noqa: SIM115 (held until closed)
            # Watched before a byte is read: .dockerignore beside the Dockerfile, then the root.
            self.watch_directory(os.path.dirname(found[1]) or "/")
            self.watch_directory(root)
            st = os.stat(root)
            self.identity = (st.st_dev, st.st_ino)
            self.context = _WatchedContext(root, self, dockerfile=Path(found[1]), ignore_limit=found[2])
        except BaseException:
            self.notify.close()
            if hasattr(self, "mounts"):
                self.mounts.close()
            raise
        self.thread = threading.Thread(target=self._read, name="context-ahead", daemon=True)

    def watch_directory(self, path: str) -> None:
        self.directories += 1
        if self.directories > MAX_DIRECTORIES:
            raise _Full
        self.notify.add_watch(path, CHANGES | ONLY_DIRECTORY | DONT_FOLLOW)

    def _read(self) -> None:
        try:
            self._walk()
            if self.spoiled is not None:
                return
            cache = self.context.hash_cache = _KnownOnly(self.halt)
            while True:  # each time the hash cache is saved, until every digest is known
                self.known_ready.wait()  # set by stop() too
                if self.halt.is_set():
                    return
                self.known_ready.clear()
                if not self.known or self.known is cache.entries:
                    continue  # nothing known, or nothing new: no digest to take
                cache.entries = self.known
                with contextlib.suppress(_Unknown):
                    self.context.entry("")
                    return
        except (_Full, ContextError):
            pass  # what was read is good; the build reads the rest (and meets what is wrong)
        except Exception as exc:  # anything unexpected: the build reads it all
            self.spoiled = f"reading it failed: {exc}"

    def _walk(self) -> None:
        context, dev = self.context, self.identity[0]
        stack = [""]
        while stack and not self.halt.is_set():
            rel = stack.pop()
            listing = context._listing(rel)
            prefix = rel + "/" if rel else ""
            for name, (item, excluded) in listing.items():
                self.entries += 1
                if self.entries > MAX_ENTRIES or (self.entries % 256 == 0 and self.halt.is_set()):
                    raise _Full
                st = item.stat(follow_symlinks=False)  # kept by the DirEntry, as the build's would be
                if stat.S_ISDIR(st.st_mode):
                    if st.st_dev != dev:
                        self.spoiled = f'"{prefix + name}" is a mount point'
                        return
                    if not excluded or context._visible_below(prefix + name):
                        stack.append(prefix + name)
                elif st.st_nlink > 1 and stat.S_ISREG(st.st_mode):
                    self._watch_linked(item.path, st)

    def _watch_linked(self, path: str, st: os.stat_result) -> None:
        """A file with another name: a write through that one reaches only a watch on the file."""
        self.notify.add_watch(path, CHANGES | DONT_FOLLOW)
        now = os.lstat(path)
        if (now.st_ino, now.st_size, now.st_mtime_ns, now.st_ctime_ns) != \
                (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns):
            self.spoiled = f'"{path}" changed while it was read'

    def stop(self) -> None:
        self.halt.set()
        self.known_ready.set()
        if self.thread.is_alive():
            self.thread.join()

    def still_good(self) -> bool:
        """Nothing changed under the watch, no mount came or went, the root is the one read."""
        if self.spoiled is not None or self.notify.read(timeout=0):
            return False
        if select.select([], [], [self.mounts], 0)[2]:  # mountinfo polls as exceptional on a change
            return False
        try:
            st = os.stat(self.key[0])
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self.identity and os.path.realpath(self.key[0]) == self.context._root

    def close(self) -> None:
        self.stop()
        self.notify.close()
        self.mounts.close()


class _Full(Exception):
    """Read ahead as far as it goes."""


class _Unknown(Exception):
    """A file whose digest the hash cache does not hold, or a build that starts: digests ahead
    stop there."""


class _KnownOnly(HashCache):
    """The digests a hash cache holds, and no others: a digest ahead never reads a file (the
    build may need the core, and it hashes what changed itself)."""

    def __init__(self, halt: threading.Event) -> None:
        super().__init__()  # its entries: a loaded cache's, only read here
        self.halt = halt

    def prefetch(self, files: list[tuple[str, os.stat_result]]) -> dict[str, str]:
        return self.split_known(files)[0]

    def file_digest(self, abspath: str, st: os.stat_result) -> str:
        if self.halt.is_set():
            raise _Unknown
        digest = self._known(abspath, signature(st))
        if digest is None:
            raise _Unknown
        self._used.add(abspath)
        return digest


class _WatchedContext(BuildContext):
    """A BuildContext that watches each directory before it lists it, while `watch` is set."""

    def __init__(self, root: str, watch: _Reading, **kwargs: object) -> None:
        self.watch: _Reading | None = watch
        super().__init__(root, **kwargs)  # type: ignore[arg-type]

    def _listing(self, rel: str) -> dict[str, tuple[os.DirEntry[str], bool]]:
        if self.watch is not None and rel and rel not in self._listings:
            self.watch.watch_directory(self.path(rel))
        return super()._listing(rel)


def filesystem_type(path: str) -> str | None:
    """The type of the filesystem `path` (a real path) is on, from this process's mount table."""
    best, fstype = -1, None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields, _, tail = line.partition(" - ")
        parts = fields.split(" ")
        if len(parts) < 5 or not tail:
            continue
        point = _unescape(parts[4])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:  # the later of two at one point is the one on top
            best, fstype = len(point), tail.split(" ")[0]
    return fstype


def _unescape(text: str) -> str:
    """mountinfo's octal escapes (space, tab, newline, backslash) undone."""
    if "\\" not in text:
        return text
    return text.encode("utf-8", "surrogateescape").decode("unicode_escape").encode("latin-1").decode(
        "utf-8", "surrogateescape")
