"""A layer directory as an OCI layer tar stream, and the facts of its changes.

The stream is made by walking the directory (children sorted by name, parents first) and
handing every header and every chunk of content to `emit` (a sha256's `update` when
committing, a file's `write` when exporting), so no tar is ever written to disk just to hash it.

Headers are encoded here rather than with `tarfile.TarInfo.tobuf`, which costs ~25 us an entry
(a quarter of a second for a 10,000-file layer). The format is POSIX ustar, with a PAX header
only where ustar cannot say it (long names, large ids, extended attributes). The stream is a
function of the tree alone, so the same tree always gives the same bytes (and diff_id):
- uid/gid numeric, no user or group names; mtimes in whole seconds (as Docker's archiver does);
- overlay whiteouts (char device 0/0) become empty `.wh.<name>` files, an opaque directory
  gets an empty `.wh..wh..opq` after its own entry; both with zero metadata, since a whiteout's
  own times and owner are not kept when a layer is unpacked again;
- a file seen again through a hard link becomes a tar hard link to its first path;
- overlayfs's own xattrs are dropped; others travel as `SCHILY.xattr.*` PAX records;
- the layer's root directory has no entry (its metadata belongs to no layer).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .objects import FileChange

Emit = Callable[[bytes | memoryview], object]

BLOCK = 512
NUL_BLOCK = bytes(BLOCK)
END_OF_ARCHIVE = bytes(2 * BLOCK)
CHUNK = 1 << 20  # content is read and hashed in chunks of this size

REGTYPE, LNKTYPE, SYMTYPE, CHRTYPE, BLKTYPE, DIRTYPE, FIFOTYPE, PAXTYPE = (
    b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"x")

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
# Both names are written on opaque directories: the kernel reads `trusted.` when the overlay
# is mounted by root without `userxattr` (and rootfs.RootFS reads it), `user.` with it (the
# sandbox mounts that way).
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
# A redirected directory or a metacopy file means more than the upper directory holds (content
# that still lives in a lower layer): such an upper cannot be tarred faithfully.
UNSUPPORTED_XATTRS = ("overlay.redirect", "overlay.metacopy")

_MAX7 = 0o7777777  # the largest number a 8-byte octal field holds
_MAX11 = 0o77777777777  # ... a 12-byte one


class LayerFormatError(ValueError):
    """The directory holds something a layer tar cannot represent."""


# -- headers ----------------------------------------------------------------------------------


_MAGIC = b"ustar\x0000"
# The checksum is the sum of the header's bytes with its own field as eight spaces; the
# zero-filled fields add nothing, so only the rest is summed (a third of the block).
_FIXED_SUM = sum(b"        ") + sum(_MAGIC)


def _ustar(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, kind: bytes,
           linkname: bytes, devmajor: int, devminor: int) -> bytes:
    numbers = b"%07o\0%07o\0%07o\0%011o\0%011o\0" % (mode, uid, gid, size, mtime)
    devices = b"%07o\0%07o\0" % (devmajor, devminor)
    checksum = _FIXED_SUM + sum(name) + sum(numbers) + kind[0] + sum(linkname) + sum(devices)
    return b"".join((
        name.ljust(100, b"\0"),
        numbers,
        b"%06o\0 " % checksum,
        kind,
        linkname.ljust(100, b"\0"),
        _MAGIC,
        bytes(64),  # uname, gname: numeric ids only
        devices,
        bytes(167),  # prefix (unused: long names go in PAX) and padding
    ))


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" %s=%s\n" % (key, value)
    # The length counts its own digits.
    length = len(body) + len(str(len(body)))
    if len(str(length)) != len(str(length - len(body))):
        length = len(body) + len(str(length))
    return b"%d%s" % (length, body)


def _pax_header(records: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(_pax_record(k, v) for k, v in records)
    head = _ustar(b"././@PaxHeader", 0o644, 0, 0, len(body), 0, PAXTYPE, b"", 0, 0)
    return head + body + padding(len(body))


def padding(size: int) -> bytes:
    rest = size % BLOCK
    return NUL_BLOCK[rest:] if rest else b""


def tar_header(name: bytes, kind: bytes, *, mode: int = 0o644, uid: int = 0, gid: int = 0, size: int = 0,
               mtime: int = 0, linkname: bytes = b"", devmajor: int = 0, devminor: int = 0,
               xattrs: dict[str, bytes] | None = None) -> bytes:
    """One entry's header block(s): a PAX header first when ustar's fields cannot hold it."""
    pax: list[tuple[bytes, bytes]] = []
    if len(name) > 100:
        pax.append((b"path", name))
        name = name[:100]
    if len(linkname) > 100:
        pax.append((b"linkpath", linkname))
        linkname = linkname[:100]
    if size > _MAX11:
        pax.append((b"size", b"%d" % size))
        size = 0
    if uid > _MAX7:
        pax.append((b"uid", b"%d" % uid))
        uid = 0
    if gid > _MAX7:
        pax.append((b"gid", b"%d" % gid))
        gid = 0
    if not 0 <= mtime <= _MAX11:
        pax.append((b"mtime", b"%d" % mtime))
        mtime = 0
    if xattrs:
        pax.extend((b"SCHILY.xattr." + os.fsencode(k), v) for k, v in sorted(xattrs.items()))
    block = _ustar(name, mode, uid, gid, size, mtime, kind, linkname, devmajor, devminor)
    return _pax_header(pax) + block if pax else block


# -- the walk ---------------------------------------------------------------------------------


@dataclass
class Walked:
    """What a walk found besides the stream."""

    size: int = 0  # bytes of regular file content, each hard-linked file once
    tar_size: int = 0
    changes: list[FileChange] = field(default_factory=list)
    opaque_dirs: list[bytes] = field(default_factory=list)


def _xattrs(path: bytes) -> tuple[dict[str, bytes], bool]:
    """(xattrs that belong in the tar, whether the directory is opaque)."""
    names = os.listxattr(path, follow_symlinks=False)
    if not names:
        return {}, False
    kept: dict[str, bytes] = {}
    opaque = False
    for name in names:
        if name.startswith(OVERLAY_XATTR_PREFIXES):
            if name.endswith(UNSUPPORTED_XATTRS):
                raise LayerFormatError(f"{os.fsdecode(path)} carries {name}: mount the overlay with "
                                       "redirect_dir=off and metacopy=off")
            if name in OPAQUE_XATTRS:
                opaque = opaque or os.getxattr(path, name, follow_symlinks=False) == b"y"
            continue
        kept[name] = os.getxattr(path, name, follow_symlinks=False)
    return kept, opaque


def is_opaque(path: bytes) -> bool:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


_UNKNOWN = object()


class StoredLayers:
    """What `lstat` and the opaque marks say of paths inside stored layers, which never change
    once stored (a layer stored again under its id holds the same tree): a step's commit looks
    each of its paths up in every layer below it, and the layers below the next step's are the
    same ones again, so a 50-step build asked the disk the same 2,800 questions per build twice
    over. Bounded: forgotten all at once past `MAX` paths."""

    MAX = 1 << 16

    def __init__(self) -> None:
        self._stats: dict[bytes, os.stat_result | None] = {}
        self._opaque: dict[bytes, bool] = {}

    def lstat(self, path: bytes) -> os.stat_result | None:
        found = self._stats.get(path, _UNKNOWN)
        if found is not _UNKNOWN:
            return found  # type: ignore[return-value]
        try:
            st: os.stat_result | None = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        if len(self._stats) >= self.MAX:
            self._stats.clear()
        self._stats[path] = st
        return st

    def is_opaque(self, path: bytes) -> bool:
        found = self._opaque.get(path)
        if found is None:
            if len(self._opaque) >= self.MAX:
                self._opaque.clear()
            found = self._opaque[path] = is_opaque(path)
        return found


class _OnDisk:
    """Layers below that may still change (a container's, an import's): asked every time."""

    @staticmethod
    def lstat(path: bytes) -> os.stat_result | None:
        try:
            return os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    is_opaque = staticmethod(is_opaque)


def _below(lowers: list[bytes], name: bytes, want_dirs: bool, disk: StoredLayers | _OnDisk
           ) -> tuple[os.stat_result | None, list[bytes]]:
    """The lower layers' view of `name` inside the directories `lowers` (topmost first, all
    visible at the parent): the stat of the topmost entry, if any, and the directories that
    stay visible below it (until one is opaque or something else hides them)."""
    found: os.stat_result | None = None
    dirs: list[bytes] = []
    for parent in lowers:
        path = parent + b"/" + name
        st = disk.lstat(path)
        if st is None:
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            break  # whited out: nothing below shows
        if found is None:
            found = st
            if not want_dirs:
                break
        if not stat.S_ISDIR(st.st_mode):
            break
        dirs.append(path)
        if disk.is_opaque(path):
            break
    return found, dirs


def _merged_names(dirs: list[bytes]) -> set[bytes]:
    """The names the lower directories `dirs` (topmost first) show together."""
    shown: set[bytes] = set()
    hidden: set[bytes] = set()
    for parent in dirs:
        for name in os.listdir(parent):
            if name in shown or name in hidden:
                continue
            st = os.lstat(parent + b"/" + name)
            (hidden if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 else shown).add(name)
    return shown


def display_name(name: bytes) -> str:
    """A file name as the change list and the page show it: as it is when it is UTF-8, else with
    each byte that is not written `\\xNN`, as Go's %q (and so Docker's tools) writes it. The tar
    itself keeps the name's bytes."""
    return name.decode("utf-8", "backslashreplace")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "file"


class _Walk:
    def __init__(self, emit: Emit, lowers: list[bytes] | None, disk: StoredLayers | _OnDisk) -> None:
        self.emit = emit
        self.lowers = lowers  # None: the stream only, no facts
        self.disk = disk
        self.out = Walked()
        self.links: dict[tuple[int, int], bytes] = {}
        self.buffer = bytearray(CHUNK)
        self.view = memoryview(self.buffer)

    def put(self, data: bytes | memoryview) -> None:
        self.emit(data)
        self.out.tar_size += len(data)

    def note(self, rel: bytes, kind: str, size: int, change: str) -> None:
        self.out.changes.append(FileChange(display_name(rel), kind, size, change))

    def run(self, root: bytes) -> Walked:
        # An explicit stack, not recursion: a RUN can nest directories deeper than Python's
        # recursion limit.
        stack: list[tuple[bytes, bytes, list[bytes] | None, Iterator[bytes]]] = [
            (root, b"", self.lowers, iter(sorted(os.listdir(root))))]
        while stack:
            real, rel, lowers, names = stack[-1]
            name = next(names, None)
            if name is None:
                stack.pop()
                continue
            pushed = self.entry(real + b"/" + name, rel, name, lowers)
            if pushed is not None:
                stack.append(pushed)
        self.put(END_OF_ARCHIVE)
        return self.out

    def entry(self, path: bytes, parent: bytes, name: bytes, lowers: list[bytes] | None
              ) -> tuple[bytes, bytes, list[bytes] | None, Iterator[bytes]] | None:
        st = os.lstat(path)
        mode = st.st_mode
        rel = parent + name
        if stat.S_ISCHR(mode) and st.st_rdev == 0:
            self.put(tar_header(parent + b".wh." + name, REGTYPE, mode=0))
            if lowers is not None:
                self.note(rel, "whiteout", 0, "deleted")
            return None
        xattrs, opaque = _xattrs(path)
        if stat.S_ISDIR(mode):
            return self.directory(path, rel, name, st, xattrs, opaque, lowers)
        if stat.S_ISSOCK(mode):
            return None  # a socket is a running process's, not a file a tar can carry
        below = None if lowers is None else _below(lowers, name, False, self.disk)[0]
        if lowers is not None:
            size = st.st_size if stat.S_ISREG(mode) or stat.S_ISLNK(mode) else 0
            self.note(rel, _kind(mode), size, "added" if below is None else "modified")
        if st.st_nlink > 1:
            first = self.links.get((st.st_dev, st.st_ino))
            if first is not None:
                self.put(self.header(rel, LNKTYPE, st, xattrs, linkname=first))
                return None
            self.links[(st.st_dev, st.st_ino)] = rel
        if stat.S_ISREG(mode):
            self.regular(path, rel, st, xattrs)
        elif stat.S_ISLNK(mode):
            self.put(self.header(rel, SYMTYPE, st, xattrs, linkname=os.readlink(path)))
        else:
            kind = CHRTYPE if stat.S_ISCHR(mode) else BLKTYPE if stat.S_ISBLK(mode) else FIFOTYPE
            self.put(self.header(rel, kind, st, xattrs, devmajor=os.major(st.st_rdev),
                                 devminor=os.minor(st.st_rdev)))
        return None

    def directory(self, path: bytes, rel: bytes, name: bytes, st: os.stat_result, xattrs: dict[str, bytes],
                  opaque: bool, lowers: list[bytes] | None
                  ) -> tuple[bytes, bytes, list[bytes] | None, Iterator[bytes]]:
        self.put(self.header(rel + b"/", DIRTYPE, st, xattrs))
        if opaque:
            self.out.opaque_dirs.append(path)
            self.put(tar_header(rel + b"/" + OPAQUE_MARKER.encode(), REGTYPE, mode=0))
        names = sorted(os.listdir(path))
        child_lowers: list[bytes] | None = None
        if lowers is not None:
            # Under an opaque directory too: a name a lower layer has is modified, not added.
            below, child_lowers = _below(lowers, name, True, self.disk)
            if below is None:
                self.note(rel, "dir", 0, "added")
            elif opaque or not _same_dir(st, below):
                self.note(rel, "dir", 0, "modified")
            # else: a directory that is only here because something inside it changed.
            if opaque:
                for gone in sorted(_merged_names(child_lowers) - set(names)):
                    self.note(rel + b"/" + gone, "whiteout", 0, "deleted")
        return path, rel + b"/", child_lowers, iter(names)

    def header(self, rel: bytes, kind: bytes, st: os.stat_result, xattrs: dict[str, bytes], *,
               size: int = 0, linkname: bytes = b"", devmajor: int = 0, devminor: int = 0) -> bytes:
        return tar_header(rel, kind, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid, size=size,
                          mtime=st.st_mtime_ns // 1_000_000_000, linkname=linkname, devmajor=devmajor,
                          devminor=devminor, xattrs=xattrs)

    def regular(self, path: bytes, rel: bytes, st: os.stat_result, xattrs: dict[str, bytes]) -> None:
        size = st.st_size
        header = self.header(rel, REGTYPE, st, xattrs, size=size)
        self.out.size += size
        if not size:
            self.put(header)
            return
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if size > CHUNK:
                self.put(header)
                self.copy_large(fd, path, size)
                self.put(padding(size))
                return
            data = os.read(fd, size + 1)
        finally:
            os.close(fd)
        if len(data) != size:
            raise LayerFormatError(f"{os.fsdecode(path)} changed while it was read")
        # One chunk for a small file: a call to the hash per entry instead of three.
        self.put(b"".join((header, data, padding(size))))

    def copy_large(self, fd: int, path: bytes, size: int) -> None:
        left = size
        while left:
            n = os.readv(fd, [self.view[:min(CHUNK, left)]])
            if not n:
                raise LayerFormatError(f"{os.fsdecode(path)} shrank while it was read")
            self.put(self.view[:n])
            left -= n


def _same_dir(st: os.stat_result, below: os.stat_result) -> bool:
    return (stat.S_ISDIR(below.st_mode) and stat.S_IMODE(st.st_mode) == stat.S_IMODE(below.st_mode)
            and st.st_uid == below.st_uid and st.st_gid == below.st_gid)


def walk_layer(root: Path, emit: Emit, lowers: list[Path] | None = None,
               stored: StoredLayers | None = None) -> Walked:
    """Stream the tar of the layer directory `root` into `emit`. With `lowers` (the layer
    directories below it, topmost first) also list its changes as added/modified/deleted;
    without, only the stream is made. `stored`: the lowers are stored layers, and what is
    known of them is kept there."""
    below = None if lowers is None else [os.fsencode(p) for p in lowers]
    return _Walk(emit, below, stored if stored is not None else _OnDisk()).run(os.fsencode(root))
