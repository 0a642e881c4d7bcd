"""Writing into a new layer's upper directory: parents, owners, and files copied or linked in."""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ..parallel import in_threads
from ..rootfs import Found, RootFS, split
from ..store import FileBlobs, FileMeta, copy_file


def _lookup_id(rootfs: RootFS, table: str, name: str) -> tuple[int, int] | None:
    """(id, primary gid) of `name` in the image's /etc/passwd or /etc/group."""
    data = rootfs.read_bytes(f"etc/{table}")
    if data is None:
        return None
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
            gid = (
                int(fields[3])
                if table == "passwd" and len(fields) > 3 and fields[3].isdigit()
                else int(fields[2])
            )
            return int(fields[2]), gid
    return None


_DECIMAL = re.compile(r"[+-]?[0-9]+")  # as Go's strconv.ParseInt reads base 10: ASCII digits only


def owner_id(word: str) -> int | None:
    """The id one half of "user[:group]" names by its text alone, as BuildKit's LLB reads it:
    `root` is 0 and a decimal number within 32 bits (a sign and leading zeros allowed) is itself;
    anything else is a name, looked up in the image when the step runs."""
    if word == "root":
        return 0
    if _DECIMAL.fullmatch(word):
        number = int(word)
        if -(2**31) <= number < 2**31:
            return number
    return None


def owner_key(spec: str) -> str:
    """The text of "user[:group]" a cache key holds: each half's id where its text names one, so
    `root:root`, `0:root` and `0:0` are one key (BuildKit serves each from the others' cache),
    while a user without a group stays apart from one with it."""
    return ":".join(
        str(number) if (number := owner_id(word)) is not None else word for word in spec.split(":", 1)
    )


def resolve_owner(rootfs: RootFS, spec: str) -> tuple[int, int]:
    """ "user[:group]" by name or number -> (uid, gid), resolved against the image's files. A
    user given by id (`root` is id 0) without a group gets the same number as gid, a named one
    its primary group. Raises ValueError naming what is unknown."""
    user, _, group = spec.partition(":")
    uid = owner_id(user)
    if uid is not None:
        gid = uid
    else:
        entry = _lookup_id(rootfs, "passwd", user)
        if entry is None:
            raise ValueError(f"unknown user {user!r}: the image's /etc/passwd has no such user")
        uid, gid = entry
    if group:
        number = owner_id(group)
        if number is None:
            entry = _lookup_id(rootfs, "group", group)
            if entry is None:
                raise ValueError(f"unknown group {group!r}: the image's /etc/group has no such group")
            number = entry[0]
        gid = number
    if uid < 0 or gid < 0:
        raise ValueError("a negative id names no owner")
    return uid, gid


def ensure_dir(upper: Path, rootfs: RootFS, path: str, *, owner: tuple[int, int] = (0, 0)) -> Path:
    """Make the directory `path` (and its parents) exist in `upper`. A directory the lower
    layers already have is recreated with its metadata, as overlayfs's copy-up would, so the
    layer does not change it; a new one gets mode 0755 and `owner`."""
    real = upper
    done: list[str] = []
    for part in split(path):
        done.append(part)
        real = real / part
        if real.is_dir():
            continue
        below = rootfs.resolve("/".join(done))
        if below is not None and stat.S_ISDIR(below.st.st_mode):
            os.mkdir(real)
            _copy_meta(real, below.st)
        else:
            os.mkdir(real, 0o755)
            os.chmod(real, 0o755)
            os.chown(real, *owner)
    return real


def _copy_meta(real: Path, st: os.stat_result) -> None:
    os.chown(real, st.st_uid, st.st_gid, follow_symlinks=False)
    os.chmod(real, stat.S_IMODE(st.st_mode))
    os.utime(real, ns=(st.st_atime_ns, st.st_mtime_ns))


class Item(NamedTuple):
    """One thing to copy: its path relative to what is copied ("" for that itself), where it is
    now, its stat, and for a context file the sha256 hex of its content (it then goes into the
    layer as a hard link to the store's blob of it) and its path in the context."""

    rel: str
    real: str
    st: os.stat_result
    digest: str = ""
    name: str = ""


class Placer:
    """Puts the files of one COPY into its layer. A file whose content digest is known is hard-
    linked from the store's blob of it (made once, by copying or, with `adopt`, by taking over
    a file the build owns); others are copied. A blob is linked at most once into a layer: two
    names of one inode would make a tar hard link, and the layer must read exactly as if every
    file had been copied."""

    def __init__(self, blobs: FileBlobs | None, *, adopt: bool = False) -> None:
        self.blobs = blobs
        self.adopt = adopt
        self.linked: set[str] = set()

    def regular_files(self, files: list[tuple[Item, str, FileMeta]]) -> None:
        """Place (item, destination, metadata) for each file, in a few threads (see
        `parallel`); destinations are new paths in directories that exist. Files whose blob is
        linked already, here or by an earlier call, are copied from it once every blob is in
        place."""
        first: list[tuple[Item, str, FileMeta, str]] = []
        again: list[tuple[str, str, FileMeta]] = []
        for item, dest, meta in files:
            blob = self.blobs.path(item.digest, meta) if self.blobs is not None and item.digest else ""
            if not blob:
                first.append((item, dest, meta, ""))
            elif blob in self.linked:
                again.append((blob, dest, meta))
            else:
                self.linked.add(blob)
                first.append((item, dest, meta, blob))
        in_threads(self._place, first)
        for blob, dest, meta in again:
            _replacing(dest, functools.partial(copy_file, blob, dest, meta))

    def _place(self, item: Item, dest: str, meta: FileMeta, blob: str) -> None:
        if not blob or self.blobs is None:
            _replacing(dest, functools.partial(copy_file, item.real, dest, meta))
            return
        _replacing(dest, functools.partial(self.blobs.place, dest, blob, meta, item.real, item.st,
                                           name=item.name or item.rel, adopt=self.adopt))


def _replacing(dest: str, make: Callable[[], object]) -> None:
    """Make a new entry at `dest`, replacing what an earlier source of the same step put there
    (unlinked, never written through: it may be a blob)."""
    try:
        make()
    except FileExistsError:
        os.unlink(dest)
        make()


def copy_entry(item: Item, dest: str, *, owner: tuple[int, int] | None, mode: int | None) -> None:
    """Copy one symlink or directory (itself only) to `dest`, keeping its mtime; owner and mode
    override the source's when given (COPY's default owner is root). Whatever is at `dest`
    already, unless a directory, is replaced, never written through: it may be a blob."""
    st = item.st
    uid, gid = owner if owner is not None else (0, 0)
    if stat.S_ISDIR(st.st_mode):
        if not os.path.isdir(dest):
            os.mkdir(dest)
        os.chown(dest, uid, gid)
        os.chmod(dest, mode if mode is not None else stat.S_IMODE(st.st_mode))
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif stat.S_ISLNK(st.st_mode):
        target = os.readlink(item.real)
        _replacing(dest, lambda: os.symlink(target, dest))
        os.chown(dest, uid, gid, follow_symlinks=False)
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    # Devices, sockets and fifos are not copied, as BuildKit's copy skips them.


def copy_tree(
    items: list[Item],
    dest: str | Path,
    *,
    owner: tuple[int, int] | None,
    mode: int | None,
    placer: Placer,
) -> None:
    """Copy items, parents first, under `dest`: directories and symlinks in order, then the
    regular files (see Placer.regular_files). Directories' times are set again at the end,
    since writing into them moved their mtime."""
    base = os.fspath(dest)
    dirs: list[tuple[str, os.stat_result]] = []
    files: list[tuple[Item, str, FileMeta]] = []
    for item in items:
        target = f"{base}/{item.rel}" if item.rel else base
        st = item.st
        if stat.S_ISREG(st.st_mode):
            uid, gid = owner if owner is not None else (0, 0)
            meta = FileMeta(mode if mode is not None else stat.S_IMODE(st.st_mode), uid, gid, st.st_mtime_ns)
            files.append((item, target, meta))
            continue
        copy_entry(item, target, owner=owner, mode=mode)
        if stat.S_ISDIR(st.st_mode):
            dirs.append((target, st))
    placer.regular_files(files)
    for target, st in reversed(dirs):
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def found_items(rootfs: RootFS, found: Found) -> list[Item]:
    """Everything under `found` in an image, as copy_tree items relative to it."""
    prefix = len(found.path) + 1 if found.path else 0
    return [Item(f.path[prefix:] if f.path != found.path else "", str(f.real), f.st)
            for f in rootfs.walk(found)]
