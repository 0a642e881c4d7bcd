"""Unpack a layer tar into a directory that overlayfs can use as a lower layer, and extract
the archives ADD is given.

OCI whiteouts become overlay ones (`.wh.x` -> char device 0/0 at x, `.wh..wh..opq` -> the
opaque xattrs on its directory). Owners, modes, devices, hard links and xattrs are kept (we
run as root), which is why `tarfile`'s `data` filter cannot be used; its safety is kept by hand:
- names are relative to the layer; a `..` component is refused, a leading `/` ignored;
- nothing is ever written through a symlink: every parent directory of an entry must be a real
  directory we made or checked in this tree, and files are created with O_EXCL|O_NOFOLLOW;
- a hard link must name an entry already inside the layer.
Symlink *targets* are kept as written, absolute or not: they mean something only inside the
container, and are never followed here.

ADD extracts an archive the same way, but as Docker does: `.wh.` names are ordinary files
there, and the directory it extracts into keeps its own mode.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
from typing import IO, cast

from .budget import LayerBudget, UnsafeLayer, size_text
from .tarstream import CHUNK, OPAQUE_MARKER, OPAQUE_XATTRS, OVERLAY_XATTR_PREFIXES, WHITEOUT_PREFIX

XATTR_PREFIX = "SCHILY.xattr."
_GZIP, _BZIP2, _XZ, _ZSTD = b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd"


# A PAX or GNU long-name header is read into memory whole by tarfile: a real one is a few hundred
# bytes, an archive's claim of gigabytes is a memory bomb.
MAX_EXTENDED_HEADER = 1 << 20
_EXTENDED_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                   tarfile.SOLARIS_XHDTYPE)


class _BoundedTarInfo(tarfile.TarInfo):
    def _proc_member(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED_TYPES and self.size > MAX_EXTENDED_HEADER:
            raise UnsafeLayer(f"an extended header of {size_text(self.size)} (at most "
                              f"{size_text(MAX_EXTENDED_HEADER)} is read)")
        return super()._proc_member(tarfile)  # type: ignore[misc]


# -- opening ----------------------------------------------------------------------------------


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read (to sniff the compression)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head = head
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def open_layer_tar(fileobj: IO[bytes]) -> tarfile.TarFile:
    """A tarfile reading `fileobj` (plain, gzip, bzip2, xz, or zstd when `zstandard` is
    installed), from its current position."""
    seekable = fileobj.seekable()
    start = fileobj.tell() if seekable else 0
    head = fileobj.read(6)
    compressed = head.startswith((_GZIP, _BZIP2, _XZ))
    if head.startswith(_ZSTD):
        return tarfile.open(fileobj=_zstd_reader(head, fileobj), mode="r|", tarinfo=_BoundedTarInfo)
    if seekable and not compressed:
        # Random-access mode reads file content straight from the file, no stream buffering.
        fileobj.seek(start)
        return tarfile.open(fileobj=fileobj, mode="r:", tarinfo=_BoundedTarInfo)
    stream = io.BufferedReader(_Prefixed(head, fileobj), CHUNK)
    return tarfile.open(fileobj=stream, mode="r|*", tarinfo=_BoundedTarInfo)


def _zstd_reader(head: bytes, fileobj: IO[bytes]) -> IO[bytes]:
    try:
        import zstandard
    except ImportError:
        raise UnsafeLayer("the layer is zstd-compressed and the `zstandard` package is not "
                          "installed: install it, or give the layer plain or gzip-compressed") from None
    raw = cast("IO[bytes]", _Prefixed(head, fileobj))  # read through readinto, as an IO's would be
    return zstandard.ZstdDecompressor().stream_reader(raw, read_size=CHUNK)


# -- names ------------------------------------------------------------------------------------


def clean_name(name: str) -> str:
    """The entry's path relative to the layer ("" for its root). Refuses `..`."""
    parts = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise UnsafeLayer(f"refusing {name!r}: it points outside the layer")
        parts.append(part)
    return "/".join(parts)


# -- unpacking --------------------------------------------------------------------------------


class Unpacker:
    def __init__(self, root: str, *, layer: bool = True, budget: LayerBudget | None = None) -> None:
        self.root = root
        self.budget = budget
        self.layer = layer  # a layer tar: whiteouts are deletions, and the root is 0755
        self.dirs: set[str] = {""}  # real directories in this tree (never symlinks), relative
        self.dir_times: dict[str, int] = {}  # directory -> mtime (ns), set once all is written
        self.as_root = os.geteuid() == 0
        self.buffer = bytearray(CHUNK)

    def run(self, tar: tarfile.TarFile) -> None:
        for member in tar:
            self.entry(tar, member)
        for rel, mtime in self.dir_times.items():
            os.utime(self.path(rel), ns=(mtime, mtime), follow_symlinks=False)
        if self.layer:
            os.chmod(self.root, 0o755)

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def entry(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = clean_name(m.name)
        if not rel:
            return  # the root directory itself: its metadata is not part of a layer
        if self.budget is not None:
            self.budget.charge(m.size if m.isreg() else 0, rel)
        parent, _, base = rel.rpartition("/")
        self.parent_dir(parent, create=True)
        if self.layer and base.startswith(WHITEOUT_PREFIX):
            self.whiteout(parent, base)
        elif m.isdir():
            self.directory(rel, m)
        elif m.isreg():
            self.regular(tar, rel, m)
        elif m.issym():
            self.replace(rel)
            os.symlink(m.linkname, self.path(rel))
            self.meta(rel, m)
        elif m.islnk():
            self.hardlink(rel, m)
        elif m.ischr() or m.isblk() or m.isfifo():
            self.device(rel, m)
        # Anything else (GNU volume labels, ...) carries no file.

    def parent_dir(self, rel: str, *, create: bool) -> None:
        """Make sure every component of `rel` is a real directory of this tree."""
        if rel in self.dirs:
            return
        done = ""
        for part in rel.split("/"):
            done = f"{done}/{part}" if done else part
            if done in self.dirs:
                continue
            try:
                st = os.lstat(self.path(done))
            except FileNotFoundError:
                if not create:
                    raise UnsafeLayer(f"{rel!r} is not in the layer") from None
                os.mkdir(self.path(done), 0o755)
                self.dir_times[done] = 0  # no entry of its own: the same times every import
                st = os.lstat(self.path(done))
            if not stat.S_ISDIR(st.st_mode):
                what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
                raise UnsafeLayer(f"refusing to write below {done!r}: it is {what} in the layer")
            self.dirs.add(done)

    def replace(self, rel: str, *, keep_dir: bool = False) -> bool:
        """Clear the way for a new entry at `rel`. Returns whether a directory stays there."""
        path = self.path(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(path)
            return False
        if keep_dir:
            return True
        # A later entry replaces a directory: rare (a tar that repeats a path), so the
        # deletion cost does not matter here.
        shutil.rmtree(path)
        self.dirs = {d for d in self.dirs if d != rel and not d.startswith(rel + "/")}
        self.dir_times = {d: t for d, t in self.dir_times.items() if d != rel and not d.startswith(rel + "/")}
        return False

    def whiteout(self, parent: str, base: str) -> None:
        if base == OPAQUE_MARKER:
            if parent:
                for name in OPAQUE_XATTRS:
                    os.setxattr(self.path(parent), name, b"y")
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other `.wh..wh.` names are aufs bookkeeping, not files
        target = f"{parent}/{base[len(WHITEOUT_PREFIX):]}" if parent else base[len(WHITEOUT_PREFIX):]
        self.replace(target)
        if not self.as_root:
            raise UnsafeLayer("unpacking a layer that deletes files needs root "
                              "(overlay whiteouts are devices)")
        os.mknod(self.path(target), stat.S_IFCHR, os.makedev(0, 0))

    def directory(self, rel: str, m: tarfile.TarInfo) -> None:
        if not self.replace(rel, keep_dir=True):
            os.mkdir(self.path(rel), 0o700)
        self.dirs.add(rel)
        self.meta(rel, m)
        self.dir_times[rel] = _mtime_ns(m)

    def regular(self, tar: tarfile.TarFile, rel: str, m: tarfile.TarInfo) -> None:
        self.replace(rel)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.path(rel), flags, 0o600)
        try:
            # A regular member's file: tarfile's ExFileObject, a BufferedReader.
            source = cast("io.BufferedReader | None", tar.extractfile(m))
            assert source is not None
            view = memoryview(self.buffer)
            while n := source.readinto(view):
                written = 0
                while written < n:
                    written += os.write(fd, view[written:n])
        finally:
            os.close(fd)
        self.meta(rel, m)

    def hardlink(self, rel: str, m: tarfile.TarInfo) -> None:
        target = clean_name(m.linkname)
        parent = target.rpartition("/")[0]
        self.parent_dir(parent, create=False)
        try:
            st = os.lstat(self.path(target))
        except FileNotFoundError:
            raise UnsafeLayer(f"hard link {rel!r} names {m.linkname!r}, which is not in the layer") from None
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeLayer(f"hard link {rel!r} names the directory {m.linkname!r}")
        if target == rel:
            return
        self.replace(rel)
        os.link(self.path(target), self.path(rel), follow_symlinks=False)

    def device(self, rel: str, m: tarfile.TarInfo) -> None:
        if not self.as_root and not m.isfifo():
            return  # only root may make devices; a layer unpacked without them is still usable
        self.replace(rel)
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        os.mknod(self.path(rel), kind | 0o600, os.makedev(m.devmajor, m.devminor))
        self.meta(rel, m)

    def meta(self, rel: str, m: tarfile.TarInfo) -> None:
        """Owner, then mode (chown clears set-id bits), xattrs and times, never through a symlink."""
        path = self.path(rel)
        link = m.issym()
        if self.as_root:
            os.chown(path, m.uid, m.gid, follow_symlinks=False)
        if not link:
            os.chmod(path, m.mode & 0o7777)
        for key, value in m.pax_headers.items():
            if key.startswith(XATTR_PREFIX):
                name = key[len(XATTR_PREFIX):]
                if not name.startswith(OVERLAY_XATTR_PREFIXES):
                    os.setxattr(path, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
        if not m.isdir():
            mtime = _mtime_ns(m)
            os.utime(path, ns=(mtime, mtime), follow_symlinks=False)


def _mtime_ns(m: tarfile.TarInfo) -> int:
    return int(m.mtime) * 1_000_000_000 if isinstance(m.mtime, int) else round(m.mtime * 1_000_000_000)


def unpack(fileobj: IO[bytes], root: str) -> None:
    """Unpack the layer tar in `fileobj` into the empty directory `root`."""
    try:
        with open_layer_tar(fileobj) as tar:
            Unpacker(root).run(tar)
    except tarfile.TarError as exc:
        raise UnsafeLayer(f"not a readable layer tar: {exc}") from None


def is_archive(path: str) -> bool:
    """Whether ADD extracts the file at `path`: a tar, plain or compressed, whose first header
    reads (tarfile.is_tarfile without its unbounded header reads)."""
    try:
        with open(path, "rb") as fileobj, open_layer_tar(fileobj) as tar:
            tar.next()
            return True
    except (tarfile.TarError, UnsafeLayer, EOFError, OSError, ValueError):
        return False
    except Exception:  # a decompressor's own error on a file that only looks compressed
        return False


def extract_archive(path: str, root: str, budget: LayerBudget | None = None) -> None:
    """Extract the archive at `path` (plain, gzip, bzip2, xz or zstd) into the directory `root`,
    over what is there already, as ADD does: owners, modes and times as the archive has them.
    Stops with LayerLimit at the first entry past `budget`."""
    try:
        with open(path, "rb") as fileobj, open_layer_tar(fileobj) as tar:
            Unpacker(root, layer=False, budget=budget).run(tar)
    except tarfile.TarError as exc:
        raise UnsafeLayer(f"not a readable archive: {exc}") from None
