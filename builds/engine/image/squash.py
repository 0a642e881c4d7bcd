"""Squash an image: one layer holding its merged filesystem, beside the layered original.

The merged tree is read through `rootfs.RootFS` (whiteouts and opaque directories applied, as
overlayfs resolves them) and copied into a fresh directory, which the store commits as a layer
with nothing below it: no whiteout survives, and a file deleted in a later layer costs nothing.
The config keeps everything but its layers: one diff_id, one history entry saying so.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..rootfs import Found, RootFS
from ..store import Image, Store

SQUASHED_BY = "squashed: the merged filesystem of {layers} layer(s) of {digest}"
# What a layer tree carries for overlayfs alone; the squashed layer has nothing below it.
_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")


class SquashError(InputError):
    """An image that cannot be squashed (it is not in the store)."""


def squash_image(store: Store, image: Image) -> Image:
    """The squashed variant of `image`, stored (not tagged). An image of no layers is its own."""
    if not image.layers:
        return image
    work = store.work_dir("squash")
    try:
        _copy_merged(RootFS([store.layer_path(layer) for layer in image.layers]), work)
        layer = store.commit_layer(work, [])
    except BaseException:
        if work.exists():
            store.discard(work)
        raise
    config = _squashed_config(image, layer.diff_id if layer else None)
    squashed = Image(config=config, layers=[layer.id] if layer else [])
    store.put_image(squashed)
    return squashed


def squash_ref(store: Store, ref: str) -> Image:
    image = store.get_image(ref)
    if image is None:
        raise SquashError(f"no image {ref!r} in the store")
    return squash_image(store, image)


def _squashed_config(image: Image, diff_id: str | None) -> dict[str, Any]:
    config = dict(image.config)
    config["rootfs"] = {"type": "layers", "diff_ids": [diff_id] if diff_id else []}
    created_by = SQUASHED_BY.format(layers=len(image.layers), digest=image.digest or image.compute_digest())
    config["history"] = [{"created_by": created_by, "comment": "squashed", **({} if diff_id else
                                                                                  {"empty_layer": True})}]
    return config


def _copy_merged(root: RootFS, into: Path) -> None:
    """Copy every entry of the merged view into `into`, keeping modes, owners, times, xattrs and
    hard links. Directory times are set last: filling a directory changes its mtime."""
    top = root.resolve("", follow=False)
    if top is None:
        return
    links: dict[tuple[int, int], Path] = {}
    dirs: list[tuple[Path, os.stat_result]] = []
    for found in root.walk(top):
        target = into / found.path if found.path else into
        mode = found.st.st_mode
        if stat.S_ISDIR(mode):
            target.mkdir(exist_ok=True)
            _owner_and_xattrs(found.real, target, found.st)
            os.chmod(target, stat.S_IMODE(mode))
            dirs.append((target, found.st))
            continue
        if stat.S_ISSOCK(mode):
            continue
        key = (found.st.st_dev, found.st.st_ino)
        if found.st.st_nlink > 1 and key in links:
            os.link(links[key], target)
            continue
        _copy_entry(found, target)
        if found.st.st_nlink > 1:
            links[key] = target
    for target, st in reversed(dirs):
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_entry(found: Found, target: Path) -> None:
    mode, st = found.st.st_mode, found.st
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(found.real), target)
    elif stat.S_ISREG(mode):
        shutil.copyfile(found.real, target, follow_symlinks=False)
    else:
        os.mknod(target, mode, st.st_rdev)
    _owner_and_xattrs(found.real, target, st)
    if not stat.S_ISLNK(mode):
        os.chmod(target, stat.S_IMODE(mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _owner_and_xattrs(source: Path, target: Path, st: os.stat_result) -> None:
    os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
    for name in os.listxattr(source, follow_symlinks=False):
        if not name.startswith(_OVERLAY_XATTRS):
            os.setxattr(target, name, os.getxattr(source, name, follow_symlinks=False),
                        follow_symlinks=False)
