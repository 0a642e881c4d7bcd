"""File contents as immutable blobs, for layers to hard-link instead of copying bytes.

A COPY of a big context writes every byte into its layer, and writing new data is the slowest
thing this disk does; a hard link costs one directory entry. So a copied file goes into the
store once, as a blob under `f/`, and every layer that holds it links that blob.

A hard link shares its inode's metadata (mode, owner, mtime, xattrs) as well as its content,
so a blob is named by everything a layer's tar reads from the inode: the sha256 of the content,
the permission bits, uid, gid and mtime. The same bytes under another mode or owner are another
blob. Blobs carry no xattrs. Nothing ever writes to a blob once it is in place: layers are
overlay lower directories, which overlayfs copies up before any change, and writers in the
engine unlink a path before they put anything there.

A blob is made from a source file by copying it, or, when the source is a file the build owns
and nothing else shares (`adopt`: a context the studio wrote for this build alone), by linking
the source itself. Either way the source must still be the file that was hashed: a copied
file's stat (device, inode, size, mtime, ctime) is compared before and after the copy; an
adopted file is the build's own, and linking it moves its ctime, so only its device, inode and
size are compared.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ContextError


@dataclass(frozen=True)
class FileMeta:
    """What a layer's tar reads from a regular file's inode, besides its content."""

    mode: int  # permission bits, st_mode & 0o7777
    uid: int
    gid: int
    mtime_ns: int

    def matches(self, st: os.stat_result) -> bool:
        return (st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_mtime_ns) == (
            self.mode, self.uid, self.gid, self.mtime_ns)


def _signature(st: os.stat_result, *, owned: bool = False) -> tuple[int, ...]:
    if owned:
        return st.st_dev, st.st_ino, st.st_size
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class SourceChanged(ContextError):
    """The file changed between being hashed and being copied."""


class FileBlobs:
    """The `f/` part of the store: f/<hex[:2]>/<hex>-<mode>-<uid>-<gid>-<mtime_ns>."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str, meta: FileMeta) -> str:
        """The blob of content `digest` (sha256, hex or "sha256:hex") with `meta`."""
        hex_ = digest.removeprefix("sha256:")
        return f"{self.root}/{hex_[:2]}/{hex_}-{meta.mode:o}-{meta.uid}-{meta.gid}-{meta.mtime_ns}"

    def place(self, dest: str, blob: str, meta: FileMeta, source: str, hashed: os.stat_result, *,
              name: str, adopt: bool = False) -> None:
        """Put `source`'s content, as hashed when its stat was `hashed`, at the new path `dest`
        as `blob` (its `path()` for that content and `meta`): `dest` and the blob are then one
        inode. `name` is how errors call the file. Raises SourceChanged when `source` is no
        longer what was hashed."""
        try:
            os.link(blob, dest)
            return
        except FileNotFoundError:
            pass
        if adopt and _adoptable(source, hashed, meta, name):
            # The file is complete and its metadata set: linking it in is atomic.
            _link_blob(source, blob)
            os.link(blob, dest)
            return
        # Copied straight to `dest`, which then becomes the blob: a blob is only ever linked in
        # once complete. (Should another writer have put the same blob in place meanwhile,
        # `dest` stays a file of its own with the same bytes and metadata.)
        _copy(source, hashed, meta, dest, name, owned=adopt)
        _link_blob(dest, blob)


    def sweep(self, *, stop: Callable[[], bool] | None = None, check_every: int = 256) -> int:
        """Delete the blobs no layer holds any more: a blob's only link is then its own. This is
        what frees the disk once evicted layers' trees are deleted. A blob that goes just as a
        COPY would link it costs nothing but sharing: `place` then copies the file. `stop` is
        asked every `check_every` blobs looked at. Returns how many went."""
        gone = seen = 0
        try:
            groups = [entry.path for entry in os.scandir(self.root) if entry.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return 0
        for group in groups:
            with contextlib.suppress(FileNotFoundError), os.scandir(group) as blobs:
                for blob in blobs:
                    seen += 1
                    if stop is not None and seen % check_every == 0 and stop():
                        return gone
                    with contextlib.suppress(FileNotFoundError):
                        if blob.stat(follow_symlinks=False).st_nlink == 1:
                            os.unlink(blob.path)
                            gone += 1
        return gone


def _link_blob(source: str, blob: str) -> None:
    try:
        os.link(source, blob, follow_symlinks=False)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(blob), exist_ok=True)
        os.link(source, blob, follow_symlinks=False)
    except FileExistsError:
        pass


def _adoptable(source: str, hashed: os.stat_result, meta: FileMeta, name: str) -> bool:
    """Whether `source` itself can become the blob: nothing else shares its inode, so its
    metadata can be set to `meta` without changing any other file. Sets it."""
    st = os.lstat(source)
    _check(st, hashed, name, owned=True)
    if st.st_nlink != 1 or os.listxattr(source, follow_symlinks=False):
        return False
    if not meta.matches(st):
        _set_meta(source, meta)
    return True


def _copy(source: str, hashed: os.stat_result, meta: FileMeta, dest: str, name: str, *, owned: bool) -> None:
    fd_in = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        def unchanged() -> None:
            _check(os.fstat(fd_in), hashed, name, owned=owned)

        unchanged()
        write_file(fd_in, hashed.st_size, dest, meta, check=unchanged)
    finally:
        os.close(fd_in)


def copy_file(source: str | Path, dest: str | Path, meta: FileMeta) -> None:
    """Copy a file the store holds (a blob, a layer's file) to the new path `dest`, with `meta`."""
    fd_in = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        write_file(fd_in, os.fstat(fd_in).st_size, dest, meta)
    finally:
        os.close(fd_in)


def write_file(fd_in: int, size: int, dest: str | Path, meta: FileMeta, *,
               check: Callable[[], None] | None = None) -> None:
    """`size` bytes of `fd_in` into the new file `dest` (FileExistsError if there is one: what is
    there may be a blob, and is never written through), then its metadata."""
    fd_out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        _copy_bytes(fd_in, fd_out, size)
        if check is not None:
            check()
        os.fchown(fd_out, meta.uid, meta.gid)  # before the mode: chown clears set-id bits
        os.fchmod(fd_out, meta.mode)
        os.utime(fd_out, ns=(meta.mtime_ns, meta.mtime_ns))
    finally:
        os.close(fd_out)


def _check(st: os.stat_result, hashed: os.stat_result, name: str, *, owned: bool = False) -> None:
    if _signature(st, owned=owned) != _signature(hashed, owned=owned):
        raise SourceChanged(f'"{name}" changed while the build was reading it; build again')


def _set_meta(path: str, meta: FileMeta) -> None:
    os.chown(path, meta.uid, meta.gid, follow_symlinks=False)
    os.chmod(path, meta.mode)
    os.utime(path, ns=(meta.mtime_ns, meta.mtime_ns))


def _copy_bytes(fd_in: int, fd_out: int, size: int) -> None:
    """Copy in the kernel (no trip through Python's memory)."""
    done = 0
    while done < size:
        n = os.copy_file_range(fd_in, fd_out, size - done)
        if n == 0:
            raise ContextError("a file shrank while the build was copying it")
        done += n
