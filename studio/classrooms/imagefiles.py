"""Which paths a built image holds, read from its layers' change lists in the store: each layer
adds or modifies paths and deletes some (whiteouts), bottom layer first, as a container's
filesystem would stack them."""

from __future__ import annotations

from builds.engine.store import Store
from builds.stores import image_here


def image_paths(store: Store, digest: str) -> set[str]:
    """Every path in the image `digest` (no leading "/"). Empty when neither the store nor the
    shared cache has it (an image built on another host is fetched)."""
    image = image_here(store, digest)
    if image is None:
        return set()
    paths: set[str] = set()
    for layer_id in image.layers:
        for change in store.layer(layer_id, changes=True).changes:
            if change.change == "deleted":
                gone = change.path
                paths = {p for p in paths if p != gone and not p.startswith(gone + "/")}
            else:
                paths.add(change.path)
    return paths
