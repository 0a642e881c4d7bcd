"""The store's work space and its upkeep: tmp/ and the token of each process at work in it,
locks, what dead processes left behind (reclaim), the trash, and the atomic write every other
part of the store uses.

A process that puts anything in a store's tmp/ first takes locks/holder-<token> (flock, held
until it exits) and puts the token in every name it makes there; what is in tmp/ under a token
whose lock is free was left by a process that died, and reclaim() takes it.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import itertools
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .names import key_file_name

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_TOKEN = re.compile(r"~([0-9a-f]{16})(?![0-9a-f])")
_temp_ids = itertools.count()
_holders: dict[tuple[int, str], tuple[str, int]] = {}  # (pid, locks dir) -> (token, lock fd)
_holders_lock = threading.Lock()


# ext4's "top directory" flag (chattr +T), from linux/fs.h.
_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS, _FS_TOPDIR_FL = 0x80086601, 0x40086602, 0x00020000


def spread_subdirectories(path: Path) -> None:
    """Have ext4 place the directories made in `path` in block groups of their own choosing,
    as it places those at a filesystem's root, instead of beside their parent (chattr +T).

    tmp/ gets every step's upper and overlay work directory. Each overlay mount makes and
    deletes a few inodes in its work directory, and each step's leftovers are deleted later;
    on ext4 without a journal, allocating an inode steps over every inode deleted in its group
    in the last minute or more. In one group, that made every new file of a 50-step build
    slower than the last (about half of a small RUN step's time, measured). Spread, each group
    has few. Elsewhere the flag does not exist: nothing changes."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            flags = int.from_bytes(fcntl.ioctl(fd, _FS_IOC_GETFLAGS, bytes(8))[:4], "little")
            if not flags & _FS_TOPDIR_FL:
                fcntl.ioctl(fd, _FS_IOC_SETFLAGS, (flags | _FS_TOPDIR_FL).to_bytes(8, "little"))
        finally:
            os.close(fd)


class Housekeeping:
    """tmp/, tmp/trash/ and locks/ under a store's `root`."""

    def __init__(self, root: Path) -> None:
        self.tmp = root / "tmp"
        self.trash = self.tmp / "trash"
        self.locks = root / "locks"

    # -- tokens ------------------------------------------------------------------------------
    def token(self) -> str:
        """This process's mark on what it puts in tmp/ ("~" and 16 hex), its lock taken."""
        key = (os.getpid(), str(self.locks))
        held = _holders.get(key)
        if held is None:
            with _holders_lock:
                held = _holders.get(key)
                if held is None:
                    _forget_gone_holders()
                    token = "~" + secrets.token_hex(8)
                    lock = self.locks / f"holder-{token[1:]}"
                    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                    fcntl.flock(fd, fcntl.LOCK_EX)  # released when this process ends
                    spread_subdirectories(self.tmp)
                    held = _holders[key] = (token, fd)
        return held[0]

    def own_token(self) -> str | None:
        """This process's token in this store, if it has put anything in tmp/."""
        held = _holders.get((os.getpid(), str(self.locks)))
        return held[0] if held is not None else None

    def release(self) -> None:
        """This process is done with tmp/: its token and lock go (whatever it left there is
        then for reclaim() to take). A later work_dir() takes a new token."""
        with _holders_lock:
            _drop_holder((os.getpid(), str(self.locks)))

    @staticmethod
    def token_of(name: str) -> str | None:
        """The token in a name in tmp/, if it has one."""
        found = _TOKEN.search(name)
        return "~" + found.group(1) if found is not None else None

    # -- work space --------------------------------------------------------------------------
    def work_dir(self, prefix: str) -> Path:
        """A fresh empty directory under tmp/ (same filesystem as l/, so it can be renamed in)."""
        path = self.tmp / f"{prefix}-{self.token()}-{next(_temp_ids)}"
        path.mkdir(0o755)
        path.chmod(0o755)  # whatever the umask: as an upper directory it is the image's root mode
        return path

    def temp_path(self, hint: str) -> Path:
        """A name in tmp/ no live writer uses: token, thread and a counter make it unique
        without the random-name retries of tempfile."""
        return self.tmp / f".{hint}.{self.token()}.{threading.get_ident()}.{next(_temp_ids)}"

    def write_atomic(self, path: Path, data: bytes, *, exclusive: bool = False) -> bool:
        """Write `data` to `path` through a temp file and a rename, so readers see the whole
        file or none. `exclusive`: keep an existing file (an immutable object written by a
        racing process). Returns whether this call wrote it."""
        temp = self.temp_path(path.name)
        with open(temp, "wb") as f:
            f.write(data)
        try:
            if not exclusive:
                os.replace(temp, path)
                return True
            try:
                os.link(temp, path)
                return True
            except FileExistsError:
                return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    @staticmethod
    def append_line(path: Path, line: bytes) -> None:
        """Append `line` to `path` with one write() and O_APPEND: Linux writes it whole, after
        every other append, so concurrent writers' lines never interleave."""
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, "short write appending to", str(path))
        finally:
            os.close(fd)

    # -- locks -------------------------------------------------------------------------------
    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive inter-process lock (flock on locks/<name>)."""
        file_name = name if _SAFE_NAME.fullmatch(name) else key_file_name(name)
        fd = os.open(self.locks / file_name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @contextmanager
    def lock_if_free(self, name: str) -> Iterator[bool]:
        """The lock `name` if no other process holds it (True), else nothing (False)."""
        with _flock_if_free(self.locks / name, create=True) as taken:
            yield bool(taken)

    # -- what dead processes left, and the trash ----------------------------------------------
    def _holder_tokens(self) -> set[str]:
        with os.scandir(self.locks) as entries:
            return {"~" + entry.name[7:] for entry in entries if entry.name.startswith("holder-")}

    @contextmanager
    def _if_dead(self, token: str) -> Iterator[bool]:
        """Whether the process of `token` is gone (its lock taken here meanwhile, so that it
        is this caller's alone to clear away). No lock file: another reclaim cleared it, or
        died doing so."""
        with _flock_if_free(self.locks / f"holder-{token[1:]}", create=False) as taken:
            yield taken is not False

    def others_at_work(self) -> bool:
        """Whether another live process has things in this store's tmp/ (a build, probably)."""
        own = self.own_token()
        for token in self._holder_tokens() - {own}:
            with self._if_dead(token) as dead:
                if not dead:
                    return True
        return False

    def reclaim(self) -> int:
        """Move into the trash what processes that died left in tmp/ (a worker killed during a
        step leaves its upper directory there), and drop their locks. Only names carrying a
        token whose lock is free: a live process holds its own. Returns how many entries of
        tmp/ went."""
        left: dict[str, list[str]] = {token: [] for token in self._holder_tokens()}
        with os.scandir(self.tmp) as entries:
            for entry in entries:
                token = self.token_of(entry.name)
                if token is not None and entry.name != "trash":
                    left.setdefault(token, []).append(entry.path)
        left.pop(self.own_token() or "", None)
        moved = 0
        for token, paths in left.items():
            with self._if_dead(token) as dead:
                if not dead:
                    continue
                for path in paths:
                    self.discard(Path(path))
                    moved += 1
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.locks / f"holder-{token[1:]}")
        return moved

    def discard(self, path: Path) -> None:
        """Move `path` into the trash: deleting a large tree here would stall later writes
        (the disk discards on delete), so it is deleted later by empty_trash()."""
        target = self.trash / f"{path.name}.{os.getpid()}.{next(_temp_ids)}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, target)

    def empty_trash(self, *, stop: Callable[[], bool] | None = None, check_every: int = 256) -> int:
        """Delete what discard() set aside; for idle moments (a worker between builds), since
        deleting stalls the writes of a build running beside it. `stop` is asked every
        `check_every` deletions and ends the work early when it says so (a build has started);
        what is left waits for the next idle moment. Returns how many entries of the trash went."""
        count = 0
        deleted = 0
        for entry in os.scandir(self.trash):
            if entry.is_dir(follow_symlinks=False):
                for top, dirs, files in os.walk(entry.path, topdown=False):
                    for name in files + dirs:
                        path = os.path.join(top, name)
                        with contextlib.suppress(FileNotFoundError):
                            if name in files or os.path.islink(path):
                                os.unlink(path)
                            else:
                                os.rmdir(path)
                        deleted += 1
                        if stop is not None and deleted % check_every == 0 and stop():
                            return count
                with contextlib.suppress(FileNotFoundError):
                    os.rmdir(entry.path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
            count += 1
            deleted += 1
            if stop is not None and deleted % check_every == 0 and stop():
                return count
        return count


@contextmanager
def _flock_if_free(path: Path, *, create: bool) -> Iterator[bool | None]:
    """flock `path` unless another process holds it: True when taken (until the block ends),
    False when held elsewhere, None when there is no such file and `create` is false."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0), 0o644)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _drop_holder(key: tuple[int, str]) -> None:
    held = _holders.pop(key, None)
    if held is not None:
        with contextlib.suppress(OSError):
            os.unlink(f"{key[1]}/holder-{held[0][1:]}")
        with contextlib.suppress(OSError):
            os.close(held[1])


@atexit.register
def _drop_holders() -> None:
    """A process that ends normally has cleared its things from tmp/: its locks go too."""
    for key in list(_holders):
        if key[0] == os.getpid():
            _drop_holder(key)


def _forget_gone_holders() -> None:
    """Close the locks of stores whose lock file is gone (a test's store, deleted), so a
    process that opens many stores does not keep a descriptor for each."""
    for key, (_token, fd) in list(_holders.items()):
        try:
            gone = os.fstat(fd).st_nlink == 0
        except OSError:
            gone = True
        if gone:
            del _holders[key]
            with contextlib.suppress(OSError):
                os.close(fd)
