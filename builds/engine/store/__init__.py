"""The content-addressed store under STUDIO_DATA_DIR.

Layout (all writes are temp file or temp dir in `tmp/` + rename, so a crash never leaves a
half-written object, and two processes writing the same object leave one good copy):

    blobs/sha256/<hex>        immutable blobs: image configs, manifests, JSON documents,
                              compressed layer tarballs made on export
    f/<h[:2]>/<h>-<mode>-<uid>-<gid>-<mtime_ns>
                              file contents that layers hard-link (store/contents.py): named by
                              the content's sha256 and the inode metadata every link shares
    l/<id>/                   unpacked layers (overlay lowerdirs); <id> = first 16 hex of the
                              layer's diff_id, short because overlay mount options are <= 4 KB.
                              Deletions are overlay whiteouts (char device 0/0), opaque
                              directories carry the xattrs trusted.overlay.opaque=y and
                              user.overlay.opaque=y (the latter for overlays mounted `userxattr`).
    l/<id>.json               the layer's facts (Layer.summary: digest, sizes, change counts),
                              with its file list when that has at most 64 rows
    l/<id>.changes.json       a longer file list ([path, kind, size, change] rows), apart
                              because the cached path never needs it
    images/<hex>.json         an image record (Image.to_json) by config digest
    tags.json                 "name:tag" -> config digest
    cache/<k[:2]>/<key>.json  the cache index: a step's cache key -> its record
    children/<parent>.jsonl   the records built on top of a parent key (one JSON per line),
                              for finding the nearest earlier build of a step
    mounts/<id>               RUN --mount=type=cache directories
                              (cache/, children/ and mounts/ at the root are the store's own
                              scope, the command line's default)
    scopes/<h>/               another scope's cache/, children/ and mounts/, <h> a hash of the
                              scope's name ("user:7", "class:3"), which scope.txt holds. Layers
                              and blobs are shared by every scope; a scope's index is not.
    containers/<id>/upper/    a container's writable layer (builds/engine/container.py): not in
                              tmp/, since it outlives the process that ran it; committed by
                              renaming it into l/, removed by moving it to the trash
    tmp/                      work directories and temp files (same filesystem as everything
                              else), each named with the token of the process that made it
    tmp/trash/                what was discarded, deleted later by Store.empty_trash()
    locks/                    lock files; holder-<token> is held by a live process that has
                              things in tmp/: Store.reclaim() moves a dead one's to the trash

The store is one object, `Store` (core.py), over parts that each keep one kind of thing:
housekeeping.py (tmp/, tokens, locks, reclaim, trash, atomic writes), blobs.py, layers.py,
images.py (images and tags) and cacheindex.py (the cache index, per scope).

Stored objects are never changed. The same layer committed on two different parents is one
directory; its facts are those of the first commit (the returned Layer has each commit's own).
"""

from __future__ import annotations

from .cacheindex import DEFAULT_SCOPE, CacheIndex, ScopedCache
from .contents import FileBlobs, FileMeta, SourceChanged, copy_file
from .core import Store
from .layers import LayerError
from .names import key_file_name
from .objects import FileChange, Image, Layer, canonical_json

__all__ = [
    "DEFAULT_SCOPE", "CacheIndex", "FileBlobs", "FileChange", "FileMeta", "Image", "Layer", "LayerError",
    "ScopedCache", "SourceChanged", "Store", "canonical_json", "copy_file", "key_file_name",
]
