"""Where an image's bytes go: its layers merged into one file tree (dive's view), and the bytes
its layers ship that the image never shows (wasted).

Every layer's copy of a file costs its bytes in that layer's tar, whether or not a later layer
hides it. A copy is wasted when a later layer hides it: writes the path again (overwritten),
deletes it (a whiteout), replaces a directory above it, or makes that directory opaque. Each
copy is counted once, in the layer that holds it, against the first layer that hid it: a file
written in layer 1, overwritten in layer 2 and deleted in layer 3 wastes layer 1's bytes and
layer 2's bytes, once each (dive#684 counted them again per later change). A file made and
deleted in one layer never reaches that layer's tar and costs nothing.

The layers are read from their change lists (`Store.layer(id, changes=True)`), applied bottom
first. The lists are not trusted for what a layer hides: a layer imported from a tar lists all it
has as `added` and none of the names its opaque directories hide, so opaque directories are read
from the layer's tree and every path is compared with the merged view below it. Sizes are of
regular file content, each hard-linked inode once per layer, as the layer's own `size` counts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..rootfs import is_opaque
from ..store import Store
from ..store.objects import FileChange

# Why a copy is no longer in the image.
OVERWRITTEN, DELETED, OPAQUE, REPLACED = "overwritten", "deleted", "opaque", "replaced"


@dataclass
class Entry:
    """A path as the merged view shows it: which layer's copy, and what it is."""

    layer: int  # index into the image's layers, bottom first
    kind: str  # "file" | "dir" | "symlink"
    size: int  # bytes this copy adds to its layer (0 for a second name of a hard-linked file)
    touched: list[tuple[int, str]] = field(default_factory=list)  # (layer, "added"|"modified") below it


@dataclass
class Wasted:
    """One layer's copy of a path that the image does not show."""

    path: str
    size: int  # bytes it costs its layer
    layer: int  # the layer holding the bytes
    hidden_by: int  # the first layer that hid it
    how: str  # OVERWRITTEN | DELETED | OPAQUE | REPLACED


@dataclass
class LayerBytes:
    index: int
    id: str
    size: int  # bytes of file content in the layer, as stored
    added: int
    modified: int
    deleted: int
    kept: int = 0  # of `size`, bytes the image still shows
    wasted: int = 0  # of `size`, bytes a later layer hid
    hides: int = 0  # bytes of earlier layers this one hid
    changes: list[FileChange] = field(default_factory=list)


@dataclass
class ImageBytes:
    layers: list[LayerBytes]
    entries: dict[str, Entry]  # the merged view: path -> the copy that shows
    wasted: list[Wasted]
    hidden: dict[tuple[int, str], tuple[int, str]] = field(default_factory=dict)  # every hidden copy

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def wasted_bytes(self) -> int:
        return sum(item.size for item in self.wasted)

    @property
    def shown_bytes(self) -> int:
        return sum(entry.size for entry in self.entries.values())


# Given a layer index and a path in it: its (inode, link count), or None when it cannot be read.
Inode = Callable[[int, str], "tuple[int, int] | None"]
Opaque = Callable[[int, str], bool]


class Merge:
    """The merged view as the layers are applied one by one."""

    def __init__(self, opaque: Opaque, inode: Inode) -> None:
        self.opaque = opaque
        self.inode = inode
        self.entries: dict[str, Entry] = {}
        self.children: dict[str, set[str]] = {}
        self.wasted: list[Wasted] = []
        # (layer, path) -> (the layer that hid it, how): every copy hidden, directories too
        self.hidden: dict[tuple[int, str], tuple[int, str]] = {}
        # (layer, inode) -> (its size, the names the layer gives it)
        self.links: dict[tuple[int, int], tuple[int, list[str]]] = {}

    def apply(self, index: int, changes: list[FileChange]) -> None:
        for change in changes:
            path = change.path
            if change.change == "deleted":
                self.hide(path, index, DELETED)
                continue
            old = self.entries.get(path)
            if change.kind == "dir":
                if old is not None and old.kind != "dir":
                    self.hide(path, index, REPLACED)
                    old = None
                if old is not None and self.opaque(index, path):
                    for child in list(self.children.get(path, ())):
                        self.hide(child, index, OPAQUE)
                self.put(path, index, "dir", 0, old)
                continue
            if old is not None:
                self.hide(path, index, OVERWRITTEN if old.kind != "dir" else REPLACED)
            self.put(path, index, "file" if change.kind not in ("dir", "symlink") else change.kind,
                     self.bytes_of(index, path, change), old)

    def bytes_of(self, index: int, path: str, change: FileChange) -> int:
        """A regular file's bytes in its layer: a second name of an inode the layer already
        holds costs nothing more."""
        if change.kind != "file" or change.size <= 0:
            return 0
        found = self.inode(index, path)
        if found is None or found[1] <= 1:
            return change.size
        _, names = self.links.setdefault((index, found[0]), (change.size, []))
        names.append(path)
        return change.size if len(names) == 1 else 0

    def put(self, path: str, index: int, kind: str, size: int, old: Entry | None) -> None:
        touched = [*old.touched, (old.layer, "added" if not old.touched else "modified")] if old else []
        self.entries[path] = Entry(index, kind, size, touched)
        parent, _, _ = path.rpartition("/")
        while True:
            kids = self.children.setdefault(parent, set())
            if path in kids:
                break
            kids.add(path)
            if not parent or parent in self.entries:
                break
            # A directory the change lists do not name (unchanged in its layer): it is there.
            self.entries[parent] = Entry(index, "dir", 0)
            path, (parent, _, _) = parent, parent.rpartition("/")

    def hide(self, path: str, index: int, how: str) -> None:
        """Take `path` and everything under it out of the view; every copy it takes out is
        wasted, once, in the layer that holds it."""
        if path not in self.entries:
            return
        parent = path.rpartition("/")[0]
        self.children.get(parent, set()).discard(path)
        for gone, entry in self._subtree(path):
            self.hidden[(entry.layer, gone)] = (index, how)
            if entry.kind == "file":
                self.wasted.append(Wasted(gone, entry.size, entry.layer, index, how))

    def _subtree(self, path: str) -> Iterator[tuple[str, Entry]]:
        stack = [path]
        while stack:
            at = stack.pop()
            entry = self.entries.pop(at, None)
            stack.extend(self.children.pop(at, ()))
            if entry is not None:
                yield at, entry

    def settle_links(self) -> None:
        """A hard-linked inode costs its bytes once in its layer: to a name that still shows
        when one does, else to one of its wasted names."""
        wasted = {(item.layer, item.path): item for item in self.wasted}
        for (layer, _), (size, names) in self.links.items():
            if len(names) < 2:
                continue
            shown: list[Entry | Wasted] = [
                entry for name in names
                if (entry := self.entries.get(name)) is not None and entry.layer == layer]
            copies = shown + [item for name in names if (item := wasted.get((layer, name))) is not None]
            for n, copy in enumerate(copies):
                copy.size = size if n == 0 else 0


def merge_layers(changes: list[list[FileChange]], *, opaque: Opaque | None = None,
                 inode: Inode | None = None) -> Merge:
    """Apply the layers' change lists (bottom first): the merged view (`entries`), what the layers
    ship that it does not show (`wasted`) and every copy hidden (`hidden`). `opaque(layer, path)`
    says whether a directory of a layer is opaque; `inode(layer, path)` names a file's inode (for
    hard links)."""
    merge = Merge(opaque or (lambda _i, _p: False), inode or (lambda _i, _p: None))
    for index, rows in enumerate(changes):
        merge.apply(index, rows)
    merge.settle_links()
    return merge


def image_bytes(store: Store, layer_ids: list[str]) -> ImageBytes:
    """Where the bytes of the image made of `layer_ids` (bottom first, all in `store`) go."""
    facts = [store.layer(layer_id, changes=True) for layer_id in layer_ids]
    paths = [store.layer_path(layer_id) for layer_id in layer_ids]

    def opaque(index: int, path: str) -> bool:
        return is_opaque(paths[index] / path)

    def inode(index: int, path: str) -> tuple[int, int] | None:
        try:
            st = os.lstat(paths[index] / path)
        except (OSError, ValueError):
            return None
        return st.st_ino, st.st_nlink

    merged = merge_layers([layer.changes for layer in facts], opaque=opaque, inode=inode)
    layers = [LayerBytes(index=i, id=layer.id, size=layer.size, added=layer.added,
                         modified=layer.modified, deleted=layer.deleted, changes=layer.changes)
              for i, layer in enumerate(facts)]
    for entry in merged.entries.values():
        layers[entry.layer].kept += entry.size
    for item in merged.wasted:
        layers[item.layer].wasted += item.size
        layers[item.hidden_by].hides += item.size
    return ImageBytes(layers=layers, entries=merged.entries, wasted=merged.wasted, hidden=merged.hidden)


# -- as JSON, capped: a base image alone can hold ten thousand paths --------------------------


def tree_json(entries: dict[str, Entry], *, max_nodes: int, per_dir: int) -> dict[str, object]:
    """The merged view as a tree, biggest first: every directory's total counts everything under
    it, but only `max_nodes` nodes (level by level) and `per_dir` children each are listed; the
    rest is summed in `more` / `more_size`."""
    kids: dict[str, list[str]] = {}
    for path in entries:
        kids.setdefault(path.rpartition("/")[0], []).append(path)
    totals: dict[str, tuple[int, int]] = {}  # path -> (bytes, regular files) under it
    for path in sorted(entries, key=lambda p: p.count("/"), reverse=True):
        entry = entries[path]
        size, files = (entry.size, 1) if entry.kind == "file" else (0, 0)
        for child in kids.get(path, ()):
            size, files = size + totals[child][0], files + totals[child][1]
        totals[path] = (size, files)
    top = kids.get("", [])
    root: dict[str, object] = {"name": "/", "path": "", "kind": "dir", "layer": None,
                               "size": sum(totals[p][0] for p in top),
                               "files": sum(totals[p][1] for p in top)}
    queue = [(root, "")]
    budget = max_nodes
    while queue:
        node, path = queue.pop(0)
        children = sorted(kids.get(path, ()), key=lambda p: (-totals[p][0], p))
        listed = children[:max(0, min(per_dir, budget))]
        budget -= len(listed)
        rows = []
        for child in listed:
            entry = entries[child]
            row: dict[str, object] = {"name": child.rpartition("/")[2], "path": child, "kind": entry.kind,
                                      "size": totals[child][0], "files": totals[child][1],
                                      "layer": entry.layer, "earlier": [layer for layer, _ in entry.touched]}
            rows.append(row)
            if child in kids:
                queue.append((row, child))
        node["children"] = rows
        node["more"] = len(children) - len(listed)
        node["more_size"] = sum(totals[p][0] for p in children[len(listed):])
    return root


def layer_rows(image: ImageBytes, index: int, *, limit: int) -> list[dict[str, object]]:
    """A layer's changes, biggest first, each with what became of it: `shown` in the image,
    `wasted` (hidden by a later layer), or `deleted` (a whiteout: this layer hid it)."""
    wasted = {item.path: item.size for item in image.wasted if item.layer == index}
    rows = []
    for change in image.layers[index].changes:
        entry = image.entries.get(change.path)
        if change.change == "deleted":
            status, size, hidden_by = "deleted", 0, None
        elif entry is not None and entry.layer == index:
            status, size, hidden_by = "shown", entry.size, None
        else:
            status, size = "wasted", wasted.get(change.path, 0)
            hidden_by = image.hidden.get((index, change.path), (None, ""))[0]
        rows.append({"path": change.path, "change": change.change, "kind": change.kind, "size": size,
                     "status": status, "hidden_by": hidden_by})
    rows.sort(key=lambda row: (-int(row["size"]), str(row["path"])))  # type: ignore[call-overload]
    return rows[:limit]
