"""Disk usage of the store's tagged images, and what layer sharing saves.

Every layer is stored once however many images use it, so the images' sizes added up are more
than the store holds; the difference is what sharing saves. Sizes are of file content (as
`images ls` shows them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..store import Store


@dataclass
class LayerUsage:
    id: str
    diff_id: str
    size: int
    images: list[str] = field(default_factory=list)  # the images that have it (each by its first name)


@dataclass
class ImageUsage:
    names: list[str]  # its tags (one image tagged twice is counted once)
    digest: str
    size: int  # all its layers
    unique: int  # its layers no other tagged image has
    layers: list[str] = field(default_factory=list)


@dataclass
class DiskUsage:
    images: list[ImageUsage]
    layers: list[LayerUsage]

    @property
    def images_total(self) -> int:
        """What the images would take if none shared a layer."""
        return sum(image.size for image in self.images)

    @property
    def stored(self) -> int:
        """What their layers take, each once."""
        return sum(layer.size for layer in self.layers)

    @property
    def saved(self) -> int:
        return self.images_total - self.stored

    def to_json(self) -> dict[str, Any]:
        return {
            "images": [vars(image) for image in self.images],
            "layers": [{**vars(layer), "shared_by": len(layer.images)} for layer in self.layers],
            "images_total": self.images_total,
            "stored": self.stored,
            "saved": self.saved,
        }


def disk_usage(store: Store, *, named: dict[str, str] | None = None) -> DiskUsage:
    """The tagged images' usage, or that of the images in `named` (name -> digest)."""
    names: dict[str, list[str]] = {}
    for name, digest in sorted((store.tags() if named is None else named).items()):
        names.setdefault(digest, []).append(name)
    layers: dict[str, LayerUsage] = {}
    found: list[tuple[list[str], str, list[str]]] = []
    for digest, tags in names.items():
        image = store.get_image(digest)
        if image is None or not all(store.has_layer(layer_id) for layer_id in image.layers):
            continue  # gone from the store, or a name for something that is not there
        ids = list(dict.fromkeys(image.layers))
        found.append((tags, digest, ids))
        for layer_id in ids:
            if layer_id not in layers:
                facts = store.layer(layer_id)
                layers[layer_id] = LayerUsage(id=layer_id, diff_id=facts.diff_id, size=facts.size)
            layers[layer_id].images.append(tags[0])
    images = [
        ImageUsage(names=tags, digest=digest, layers=ids,
                   size=sum(layers[i].size for i in ids),
                   unique=sum(layers[i].size for i in ids if len(layers[i].images) == 1))
        for tags, digest, ids in found
    ]
    ordered = sorted(layers.values(), key=lambda layer: (-len(layer.images), -layer.size, layer.id))
    return DiskUsage(images=images, layers=ordered)
