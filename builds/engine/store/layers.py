"""Layers: unpacked trees under l/<id> (the overlay's lower directories), each with its facts
(l/<id>.json) and file list (in the facts when short, else l/<id>.changes.json); made from a
finished upper directory or imported from a tar, and streamed back out as the tar they were
hashed as."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import IO

from ..errors import InputError
from ..parallel import Sha256Behind
from .housekeeping import Housekeeping
from .objects import FileChange, Layer
from .tarstream import OPAQUE_XATTRS, LayerFormatError, StoredLayers, Walked, walk_layer


class LayerError(InputError):
    """A layer that cannot be stored: an unsafe or unreadable tar, or a tree a tar cannot carry."""


# A file list this short is kept in the layer's facts file instead of a file of its own: a new
# file is the slowest thing a small step writes on a disk without a journal, and most steps
# change a few files.
INLINE_CHANGES = 64


class Layers:
    """l/ under a store's root."""

    # Paths made so far, by layer id: every step asks for the path of each layer below it, so a
    # 50-step build made 3,000 Path objects for the same few dozen directories.
    MAX_PATHS = 4096

    def __init__(self, directory: Path, keeping: Housekeeping) -> None:
        self.directory = directory
        self.keeping = keeping
        self._paths: dict[str, Path] = {}
        self._facts_file: tuple[int, int] | None = None  # (pid, fd): see open_facts_file
        self._facts_lock = threading.Lock()
        self._unnamed_files = True  # until l/'s filesystem says otherwise
        self._stored = StoredLayers()

    def open_facts_file(self) -> None:
        """Make the next layer's facts file now, unnamed, in l/: its new inode is the slowest part
        of a small step's commit on a disk without a journal, and a builder calls this while a
        step runs, so the commit after it only writes the file and names it. Where l/'s
        filesystem has no unnamed files, commits write theirs through tmp/."""
        with self._facts_lock:
            if self._facts_file is not None or not self._unnamed_files:
                return
            try:
                fd = os.open(self.directory, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666)
            except OSError:
                self._unnamed_files = False
                return
            self._facts_file = (os.getpid(), fd)

    def _write_facts(self, path: Path, data: bytes) -> None:
        """Write a layer's facts file, keeping one a racing writer made first."""
        with self._facts_lock:
            made, self._facts_file = self._facts_file, None
        if made is not None and made[0] != os.getpid():
            made = None  # opened before a fork: the parent's (the copy is closed on its exec or exit)
        if made is None:
            self.keeping.write_atomic(path, data, exclusive=True)
            return
        fd = made[1]
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, "short write of", str(path))
            # Relative to a directory descriptor, so that it is linkat() following the link to
            # the open, unnamed file (os.link(src, dst) alone is link(), which does not).
            directory = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.link(f"/proc/self/fd/{fd}", path.name, dst_dir_fd=directory)
            finally:
                os.close(directory)
        except FileExistsError:
            pass
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise
            self._unnamed_files = False  # no /proc to name it through: as where there are none
            self.keeping.write_atomic(path, data, exclusive=True)
        finally:
            os.close(fd)

    def path(self, layer_id: str) -> Path:
        found = self._paths.get(layer_id)
        if found is None:
            if len(self._paths) >= self.MAX_PATHS:
                self._paths.clear()
            found = self._paths[layer_id] = self.directory / layer_id
        return found

    def has(self, layer_id: str) -> bool:
        return self.path(layer_id).is_dir()

    def facts(self, layer_id: str, *, changes: bool = False) -> Layer:
        """The layer's facts. Its file list is read only when `changes` is asked for: it can
        be long, and the fully cached path reads the facts of every layer."""
        data = json.loads((self.directory / f"{layer_id}.json").read_bytes())
        layer = Layer.from_json(data)
        if changes and "changes" not in data:
            rows = json.loads((self.directory / f"{layer_id}.changes.json").read_bytes())
            layer.changes = [FileChange.from_row(row) for row in rows]
        return layer

    def commit(self, upper: Path, lower: list[str]) -> Layer | None:
        """Turn a finished upper directory into a stored layer. `lower` is the layer ids below
        it, bottom first, used to tell added from modified and to describe whiteouts. Computes
        the diff_id by streaming the layer's tar (OCI whiteouts `.wh.x` / `.wh..wh..opq`, sorted
        entries, mtimes kept, numeric uid/gid, no user/group names) through sha256 without
        writing it, then renames `upper` to l/<id> (or drops it when that layer already
        exists). Returns None, and removes `upper`, when it holds no change at all."""
        lowers = [self.path(layer_id) for layer_id in reversed(lower)]
        digest = Sha256Behind()  # hashes on the other core while the walk reads the tree
        try:
            walked = walk_layer(upper, digest.update, lowers, self._stored)
        except LayerFormatError as exc:
            raise LayerError(str(exc)) from None
        finally:
            diff_id = "sha256:" + digest.hexdigest()  # which also ends its thread
        if not walked.changes:
            self.keeping.discard(upper)
            return None
        return self._keep(upper, _layer(diff_id, walked), walked.opaque_dirs)

    def import_tar(self, tar: IO[bytes]) -> Layer:
        """Unpack a layer tar (plain, gzip or zstd), turning OCI whiteouts into overlay ones."""
        from .budget import UnsafeLayer
        from .unpack import unpack  # tarfile and friends: not for a build's path

        work = self.keeping.work_dir("import")
        try:
            unpack(tar, str(work))
            digest = hashlib.sha256()
            walked = walk_layer(work, digest.update, [])
        except (UnsafeLayer, LayerFormatError) as exc:
            self.keeping.discard(work)
            raise LayerError(f"cannot import the layer: {exc}") from None
        except BaseException:
            self.keeping.discard(work)
            raise
        return self._keep(work, _layer("sha256:" + digest.hexdigest(), walked), walked.opaque_dirs)

    def _keep(self, tree: Path, layer: Layer, opaque_dirs: list[bytes]) -> Layer:
        """Move `tree` in as l/<id> unless that layer is there already. The facts go first, so
        a layer directory that exists always has them; a racing writer of the same layer
        finds them and its directory rename fails, and its tree goes to the trash."""
        target = self.path(layer.id)
        if target.exists():
            self.keeping.discard(tree)
            return layer
        for path in opaque_dirs:
            # The sandbox marks opaque directories with one of the two names; give them both,
            # so the layer reads the same under any overlay mount and to rootfs.RootFS.
            for name in OPAQUE_XATTRS:
                os.setxattr(path, name, b"y")
        if len(layer.changes) <= INLINE_CHANGES:
            facts = layer.to_json()
        else:
            facts = layer.summary()
            self.keeping.write_atomic(
                self.directory / f"{layer.id}.changes.json",
                json.dumps([c.to_row() for c in layer.changes], ensure_ascii=False).encode(), exclusive=True,
            )
        self._write_facts(self.directory / f"{layer.id}.json", json.dumps(facts, ensure_ascii=False).encode())
        try:
            os.rename(tree, target)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            self.keeping.discard(tree)
        return layer

    def write_tar(self, layer_id: str, out: IO[bytes]) -> str:
        """Write the layer's tar (the same bytes commit() hashed); returns its diff_id.
        Hashes what it writes, and raises if the layer no longer matches its diff_id."""
        digest = hashlib.sha256()

        def emit(data: bytes | memoryview) -> None:
            digest.update(data)
            out.write(data)

        walk_layer(self.path(layer_id), emit)
        diff_id = "sha256:" + digest.hexdigest()
        if not diff_id.startswith("sha256:" + layer_id):
            raise LayerError(f"layer {layer_id} changed after it was stored (its tar is now {diff_id})")
        return diff_id

    def tar_size(self, layer_id: str) -> int:
        """Bytes of the layer's tar, from its facts (or by making the stream, for facts that
        predate the field)."""
        size = self.facts(layer_id).tar_size
        return size if size else walk_layer(self.path(layer_id), _discard_bytes).tar_size


def _layer(diff_id: str, walked: Walked) -> Layer:
    counts = {"added": 0, "modified": 0, "deleted": 0}
    for change in walked.changes:
        counts[change.change] += 1
    return Layer(id=diff_id[7:23], diff_id=diff_id, size=walked.size, changes=walked.changes,
                 tar_size=walked.tar_size, **counts)


def _discard_bytes(data: bytes | memoryview) -> None:
    pass
