"""Writing into a new layer's upper directory: parents, owners, and copies of files."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from ..rootfs import Found, RootFS, split


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


def resolve_owner(rootfs: RootFS, spec: str) -> tuple[int, int]:
    """ "user[:group]" by name or number -> (uid, gid), resolved against the image's files. A
    numeric user without a group gets the same number as gid, a named one its primary group.
    Raises ValueError naming what is unknown."""
    user, _, group = spec.partition(":")
    if user.isdigit():
        uid, gid = int(user), int(user)
    else:
        entry = _lookup_id(rootfs, "passwd", user)
        if entry is None:
            raise ValueError(f"unknown user {user!r}: the image's /etc/passwd has no such user")
        uid, gid = entry
    if group.isdigit():
        gid = int(group)
    elif group:
        entry = _lookup_id(rootfs, "group", group)
        if entry is None:
            raise ValueError(f"unknown group {group!r}: the image's /etc/group has no such group")
        gid = entry[0]
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


def copy_entry(
    src: Path, st: os.stat_result, dest: Path, *, owner: tuple[int, int] | None, mode: int | None
) -> None:
    """Copy one file, symlink or directory (itself only) to `dest`, keeping its mtime; owner
    and mode override the source's when given (COPY's default owner is root)."""
    uid, gid = owner if owner is not None else (0, 0)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dest)
        os.chown(dest, uid, gid, follow_symlinks=False)
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        return
    if stat.S_ISDIR(st.st_mode):
        if not dest.is_dir():
            os.mkdir(dest)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(src, dest, follow_symlinks=False)
    else:
        return  # devices, sockets and fifos are not copied, as BuildKit's copy skips them
    os.chown(dest, uid, gid)
    os.chmod(dest, mode if mode is not None else stat.S_IMODE(st.st_mode))
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))


def copy_tree(
    items: list[tuple[str, Path, os.stat_result]],
    dest: Path,
    *,
    owner: tuple[int, int] | None,
    mode: int | None,
) -> None:
    """Copy (relative path, source, stat) items, parents first, under `dest`. Directories'
    times are set again at the end, since writing into them moved their mtime."""
    dirs: list[tuple[Path, os.stat_result]] = []
    for rel, src, st in items:
        target = dest / rel if rel else dest
        copy_entry(src, st, target, owner=owner, mode=mode)
        if stat.S_ISDIR(st.st_mode):
            dirs.append((target, st))
    for target, st in reversed(dirs):
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def found_items(rootfs: RootFS, found: Found) -> list[tuple[str, Path, os.stat_result]]:
    """Everything under `found` in an image, as copy_tree items relative to it."""
    prefix = len(found.path) + 1 if found.path else 0
    return [(f.path[prefix:] if f.path != found.path else "", f.real, f.st) for f in rootfs.walk(found)]
