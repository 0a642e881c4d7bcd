"""Where an image's bytes go: the merged tree and the wasted bytes, against counts made by hand.
Layers are imported from tars, as a pulled image's are: OCI whiteouts, opaque directories and hard
links, and change lists that call everything `added`."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest

from builds.engine.image.waste import (
    DELETED,
    OPAQUE,
    OVERWRITTEN,
    REPLACED,
    ImageBytes,
    image_bytes,
    layer_rows,
    merge_layers,
    tree_json,
)
from builds.engine.store import Image, Store
from builds.engine.store.objects import FileChange

from .test_squash import DOCKERFILE, LIMITS
from .test_store import entry, tar_bytes

Tar = list[tuple[tarfile.TarInfo, bytes | None]]


@pytest.fixture
def bare(tmp_path: Path) -> Store:
    """A store with nothing in it: the layers of each case are all its image has."""
    return Store(tmp_path / "bare")


def d(name: str) -> tuple[tarfile.TarInfo, None]:
    return entry(name, tarfile.DIRTYPE, mode=0o755), None


def f(name: str, size: int) -> tuple[tarfile.TarInfo, bytes]:
    return entry(name), b"x" * size


def gone(name: str) -> tuple[tarfile.TarInfo, bytes]:
    parent, _, base = name.rpartition("/")
    return entry(f"{parent}/.wh.{base}" if parent else f".wh.{base}"), b""


def hard(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    return entry(name, tarfile.LNKTYPE, linkname=target), None


def analyse(store: Store, *layers: Tar) -> ImageBytes:
    ids = [store.import_layer(tar_bytes(layer)).id for layer in layers]
    return image_bytes(store, ids)


def wasted(image: ImageBytes) -> set[tuple[str, int, int, int, str]]:
    return {(w.path, w.size, w.layer, w.hidden_by, w.how) for w in image.wasted}


def balanced(image: ImageBytes) -> None:
    """Every byte the layers ship is either shown by the image or wasted, exactly once."""
    assert image.shown_bytes + image.wasted_bytes == image.size
    for layer in image.layers:
        assert layer.kept + layer.wasted == layer.size


def test_three_layers_of_overwrites_and_deletions_by_a_hand_count(bare: Store) -> None:
    image = analyse(
        bare,
        [d("app"), f("app/a", 1000), f("app/b", 200), f("app/keep", 7), d("tmp"), f("tmp/x", 30)],
        [d("app"), f("app/a", 1500), f("app/c", 40), gone("tmp/x")],
        [d("app"), gone("app/a"), f("app/b", 250), f("app/c", 45)],
    )
    # By hand: layer 0 ships a(1000) b(200) keep(7) x(30); layer 1 a(1500) c(40); layer 2 b(250) c(45).
    # The image shows keep(7) from 0, b(250) and c(45) from 2.
    assert wasted(image) == {
        ("app/a", 1000, 0, 1, OVERWRITTEN),
        ("app/a", 1500, 1, 2, DELETED),
        ("app/b", 200, 0, 2, OVERWRITTEN),
        ("app/c", 40, 1, 2, OVERWRITTEN),
        ("tmp/x", 30, 0, 1, DELETED),
    }
    assert image.wasted_bytes == 1000 + 1500 + 200 + 40 + 30
    assert image.shown_bytes == 7 + 250 + 45
    assert [(layer.wasted, layer.hides) for layer in image.layers] == [(1230, 0), (1540, 1030), (0, 1740)]
    balanced(image)


def test_a_file_written_overwritten_then_deleted_wastes_each_copy_once(bare: Store) -> None:
    # dive#684: three layers change one path; each of the two copies is wasted once, no more.
    image = analyse(bare, [f("big", 100)], [f("big", 300)], [gone("big")])
    assert wasted(image) == {("big", 100, 0, 1, OVERWRITTEN), ("big", 300, 1, 2, DELETED)}
    assert image.wasted_bytes == 400 and image.shown_bytes == 0
    balanced(image)


def test_a_file_made_and_deleted_in_one_layer_costs_nothing() -> None:
    # Such a file is never in its layer: the change list has neither it nor a whiteout for it.
    merged = merge_layers([[FileChange("base", "file", 5, "added")],
                           [FileChange("other", "file", 9, "added")]])
    assert merged.wasted == [] and sorted(merged.entries) == ["base", "other"]


def test_a_whiteout_of_a_directory_wastes_everything_under_it(bare: Store) -> None:
    image = analyse(bare, [d("cache"), d("cache/deep"), f("cache/deep/one", 64), f("cache/two", 36),
                            f("keep", 1)], [gone("cache")])
    assert wasted(image) == {("cache/deep/one", 64, 0, 1, DELETED), ("cache/two", 36, 0, 1, DELETED)}
    assert sorted(image.entries) == ["keep"]
    rows = {row["path"]: (row["status"], row["hidden_by"]) for row in layer_rows(image, 0, limit=10)}
    assert rows == {"cache": ("wasted", 1), "cache/deep": ("wasted", 1), "cache/deep/one": ("wasted", 1),
                    "cache/two": ("wasted", 1), "keep": ("shown", None)}
    balanced(image)


def test_an_opaque_directory_hides_what_it_does_not_bring_again(bare: Store) -> None:
    image = analyse(
        bare,
        [d("srv"), f("srv/old", 80), d("srv/sub"), f("srv/sub/deep", 20), f("srv/same", 10)],
        [d("srv"), (entry("srv/.wh..wh..opq"), b""), f("srv/same", 12), d("srv/sub"), f("srv/sub/new", 3)],
    )
    # srv/sub is in the new layer too, but the opaque srv above it hides the old srv/sub/deep.
    assert wasted(image) == {("srv/old", 80, 0, 1, OPAQUE), ("srv/sub/deep", 20, 0, 1, OPAQUE),
                             ("srv/same", 10, 0, 1, OPAQUE)}
    assert sorted(image.entries) == ["srv", "srv/same", "srv/sub", "srv/sub/new"]
    balanced(image)


def test_a_file_replacing_a_directory_hides_its_contents_and_the_other_way_round(bare: Store) -> None:
    image = analyse(bare, [d("opt"), f("opt/tool", 50), f("lib", 2)], [f("opt", 4), d("lib"), f("lib/y", 1)])
    assert wasted(image) == {("opt/tool", 50, 0, 1, REPLACED), ("lib", 2, 0, 1, REPLACED)}
    balanced(image)


def test_a_hard_linked_file_costs_its_bytes_once(bare: Store) -> None:
    image = analyse(bare, [f("a", 500), hard("b", "a"), f("c", 70), hard("e", "c")],
                    [gone("a"), gone("c"), gone("e")])
    # a and b are one inode of layer 0: b still shows it, so deleting a wastes nothing; c and e
    # are both gone: their 70 bytes are wasted once.
    assert image.layers[0].size == 570
    assert image.wasted_bytes == 70 and image.shown_bytes == 500
    assert sorted(w.size for w in image.wasted) == [0, 0, 70]
    balanced(image)


def test_the_tree_counts_everything_but_lists_only_so_much(bare: Store) -> None:
    many = [d("many")] + [f(f"many/f{n:03}", n) for n in range(1, 101)]
    image = analyse(bare, [d("etc"), f("etc/passwd", 9), *many], [f("many/f100", 1)])
    tree = tree_json(image.entries, max_nodes=20, per_dir=10)
    assert tree["size"] == image.shown_bytes == 9 + sum(range(1, 100)) + 1
    assert tree["files"] == 101
    children = tree["children"]
    assert isinstance(children, list) and [c["path"] for c in children] == ["many", "etc"]
    many_node = children[0]
    listed = many_node["children"]
    assert len(listed) == 10 and many_node["more"] == 90
    assert listed[0]["path"] == "many/f099" and listed[0]["size"] == 99
    assert sum(c["size"] for c in listed) + many_node["more_size"] == many_node["size"]
    f100 = next(c for c in image.layers[1].changes if c.path == "many/f100")
    assert f100.size == 1 and image.entries["many/f100"].touched == [(0, "added")]
    rows = layer_rows(image, 0, limit=3)
    assert [(r["path"], r["status"]) for r in rows] == [
        ("many/f100", "wasted"), ("many/f099", "shown"), ("many/f098", "shown")]
    assert rows[0]["hidden_by"] == 1


def test_a_real_build_wastes_what_its_runs_delete_overwrite_and_hide_under_an_opaque_directory(
        store: Store, project: Any) -> None:
    # Line 2 writes big.bin (200,000 bytes), note ("one\n") and keep ("keep\n"); line 4 deletes
    # big.bin (a whiteout) and writes note again; line 5 replaces /opt/tools (an opaque directory).
    built = project({"Dockerfile": DOCKERFILE, "app.txt": "hello\n"}).build(limits=LIMITS)
    assert built.result.status == "succeeded", built.finished
    image: Image = built.result.image
    found = image_bytes(store, image.layers)
    assert wasted(found) == {("opt/tools/big.bin", 200000, 1, 2, DELETED),
                             ("data/note", 4, 1, 2, OVERWRITTEN), ("opt/tools/keep", 5, 1, 3, OPAQUE)}
    # note and its hard link in line 4's layer are one file, shown once.
    assert found.entries["data/note"].size + found.entries["data/hard"].size == 4
    assert found.size == sum(store.layer(layer).size for layer in image.layers)
    balanced(found)
