"""The Store: one object for the store under a root, a facade over its parts.

Each part is a module of its own and can be used directly:

    housekeeping   tmp/ and process tokens, locks, reclaim, the trash, atomic writes
    blobs          blobs/sha256/: bytes by digest
    layers         l/: layer trees, their facts and tars
    images         images/ and tags.json
    cacheindex     the cache index, per scope (cache/, children/, scopes/)

The methods here are the ones callers have always used; each passes straight through.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any

from .blobs import Blobs
from .cacheindex import DEFAULT_SCOPE, CacheIndex
from .contents import FileBlobs
from .housekeeping import Housekeeping
from .images import Images
from .layers import LayerError, Layers
from .objects import Image, Layer

__all__ = ["DEFAULT_SCOPE", "LayerError", "Store"]


class Store:
    """The content-addressed store under `root`. Cheap to make: it creates its directories
    if missing and reads nothing."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        # The layout (see the package's docstring), for code and tests that look at the files.
        self.blobs = self.root / "blobs" / "sha256"
        self.layers = self.root / "l"
        self.images = self.root / "images"
        self.cache = self.root / "cache"
        self.children = self.root / "children"
        self.tags_file = self.root / "tags.json"
        self.housekeeping = Housekeeping(self.root)
        self.tmp, self.trash, self.locks = (self.housekeeping.tmp, self.housekeeping.trash,
                                            self.housekeeping.locks)
        self.files = FileBlobs(self.root / "f")
        self.blob_store = Blobs(self.blobs, self.housekeeping)
        self.layer_store = Layers(self.layers, self.housekeeping)
        self.image_store = Images(self.root, self.blob_store, self.housekeeping)
        self.cache_index = CacheIndex(self.root, self.housekeeping)
        if not self.locks.is_dir():
            # locks/ is made last, so when it exists every other directory does too: a store
            # in use costs one stat here.
            for path in (self.blobs, self.layers, self.images, self.cache, self.children, self.trash,
                         self.files.root, self.locks):
                path.mkdir(parents=True, exist_ok=True)

    # -- housekeeping ------------------------------------------------------------------------
    def work_dir(self, prefix: str) -> Path:
        return self.housekeeping.work_dir(prefix)

    def own_token(self) -> str | None:
        return self.housekeeping.own_token()

    def release(self) -> None:
        self.housekeeping.release()

    token_of = staticmethod(Housekeeping.token_of)

    def others_at_work(self) -> bool:
        return self.housekeeping.others_at_work()

    def reclaim(self) -> int:
        return self.housekeeping.reclaim()

    def discard(self, path: Path) -> None:
        self.housekeeping.discard(path)

    def empty_trash(self, *, stop: Callable[[], bool] | None = None, check_every: int = 256) -> int:
        """Delete what was discarded; then, if a layer's tree went with it, the file blobs (f/)
        that no layer holds any more (evict.py)."""
        count = self.housekeeping.empty_trash(stop=stop, check_every=check_every)
        if count and not (stop is not None and stop()):
            self.files.sweep(stop=stop, check_every=check_every)
        return count

    def lock(self, name: str) -> AbstractContextManager[None]:
        return self.housekeeping.lock(name)

    def lock_if_free(self, name: str) -> AbstractContextManager[bool]:
        return self.housekeeping.lock_if_free(name)

    def _temp_path(self, hint: str) -> Path:
        return self.housekeeping.temp_path(hint)

    # -- blobs -------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blob_store.path(digest)

    def put_blob(self, data: bytes) -> str:
        return self.blob_store.put(data)

    def put_json(self, doc: Any) -> str:
        return self.blob_store.put_json(doc)

    def get_json(self, digest: str) -> Any:
        return self.blob_store.get_json(digest)

    # -- layers ------------------------------------------------------------------------------
    def layer_path(self, layer_id: str) -> Path:
        return self.layer_store.path(layer_id)

    def layer(self, layer_id: str, *, changes: bool = False) -> Layer:
        return self.layer_store.facts(layer_id, changes=changes)

    def has_layer(self, layer_id: str) -> bool:
        return self.layer_store.has(layer_id)

    def commit_layer(self, upper: Path, lower: list[str]) -> Layer | None:
        return self.layer_store.commit(upper, lower)

    def import_layer(self, tar: IO[bytes]) -> Layer:
        return self.layer_store.import_tar(tar)

    def write_layer_tar(self, layer_id: str, out: IO[bytes]) -> str:
        return self.layer_store.write_tar(layer_id, out)

    def layer_tar_size(self, layer_id: str) -> int:
        return self.layer_store.tar_size(layer_id)

    # -- images and tags ---------------------------------------------------------------------
    def put_image(self, image: Image) -> str:
        return self.image_store.put(image)

    def get_image(self, ref: str) -> Image | None:
        return self.image_store.get(ref)

    def tag(self, name: str, digest: str) -> None:
        self.image_store.tag(name, digest)

    def untag(self, name: str) -> bool:
        return self.image_store.untag(name)

    def tags(self) -> dict[str, str]:
        return self.image_store.tags()

    # -- cache index -------------------------------------------------------------------------
    def scope_root(self, scope: str) -> Path:
        return self.cache_index.scope_root(scope)

    def cache_get(self, key: str, *, scope: str = DEFAULT_SCOPE) -> dict[str, Any] | None:
        return self.cache_index.scope(scope).lookup(key)

    def cache_put(self, key: str, record: dict[str, Any], *, parent: str, scope: str = DEFAULT_SCOPE) -> None:
        self.cache_index.scope(scope).record(key, record, parent=parent)

    def cache_children(self, parent: str, *, scope: str = DEFAULT_SCOPE) -> list[dict[str, Any]]:
        return self.cache_index.scope(scope).children(parent)
