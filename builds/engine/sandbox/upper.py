"""The upper directory after a run: its size, and the mount points bwrap left in it."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from .model import MOUNTPOINTS


def disk_usage(upper: Path) -> int:
    """Bytes the layer holds: file sizes (each hard-linked file once) and symlink lengths,
    which is what its tar will carry."""
    total = 0
    seen: set[int] = set()
    for entry in _walk(str(upper)):
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if st.st_nlink > 1:
            if st.st_ino in seen:
                continue
            seen.add(st.st_ino)
        total += st.st_size
    return total


def _walk(top: str) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(top) as it:
            entries = list(it)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path)
        else:
            yield entry


def tidy_upper(upper: Path, lower: list[Path]) -> None:
    """Remove empty mount points bwrap made, unless the image has them. Rarely any: the
    mount points layer provides them, unless a layer deleted one."""
    for name in MOUNTPOINTS:
        path = os.path.join(upper, name)
        try:
            if os.listdir(path):
                continue
        except OSError:  # absent, or not a directory: not bwrap's
            continue
        if not _in_image(lower, name):
            with contextlib.suppress(OSError):
                os.rmdir(path)


def _in_image(lower: list[Path], name: str) -> bool:
    """Whether the merged lower layers hold `name` at their root."""
    for layer in reversed(lower):
        try:
            st = os.lstat(os.path.join(layer, name))
        except FileNotFoundError:
            continue
        return not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0)  # a whiteout hides it
    return False


def remove_work(work: Path, discard: Callable[[Path], None] | None = None) -> None:
    """Remove an overlay's work directory. bwrap's overlay leaves an empty <workdir>/work: two
    rmdirs. A volatile overlay (the spawner's) leaves work/incompat/volatile in its workdir too; each
    directory deleted costs this kind of disk a millisecond or more, so with `discard` (the
    store's trash, emptied between builds) the whole tree goes there in one rename instead."""
    if discard is not None:
        discard(work)
        return
    try:
        for path in (work / "work", work):
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(path)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
