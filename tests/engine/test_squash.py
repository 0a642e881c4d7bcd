"""Squashing: one layer holding the image's merged filesystem, and what the next edit costs the
layered image and the squashed one, measured by real rebuilds."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from builds.engine.editcost import EditError, measure_edit_cost
from builds.engine.image.squash import squash_image
from builds.engine.planner import BuildOptions
from builds.engine.rootfs import RootFS
from builds.engine.sandbox import Limits
from builds.engine.store import Image, Store

from .conftest import BASE

PROJECT = Path(__file__).resolve().parents[2]
LIMITS = Limits(timeout_s=30, memory_bytes=256 << 20, pids=64, output_bytes=1 << 20, disk_bytes=64 << 20)

# Three layers over the base: a file written then deleted (a whiteout), a file overwritten, a
# directory replaced wholesale (opaque), a symlink and a hard link.
DOCKERFILE = f"""FROM {BASE}
RUN mkdir -p /opt/tools /data && head -c 200000 /dev/urandom > /opt/tools/big.bin \\
 && echo one > /data/note && echo keep > /opt/tools/keep && ln -s /data/note /data/link
RUN rm /opt/tools/big.bin && echo two > /data/note && ln /data/note /data/hard
RUN rm -rf /opt/tools && mkdir /opt/tools && echo fresh > /opt/tools/new \\
 && head -c 16 /dev/urandom > /opt/stamp
COPY app.txt /app/app.txt
"""


def merged(store: Store, image: Image) -> dict[str, tuple[str, int, int, int, str]]:
    """Every path of the image's merged view: kind, mode, uid, gid and content (or link)."""
    root = RootFS([store.layer_path(layer) for layer in image.layers])
    out: dict[str, tuple[str, int, int, int, str]] = {}
    top = root.resolve("", follow=False)
    assert top is not None
    for found in root.walk(top):
        st = found.st
        if stat.S_ISREG(st.st_mode):
            kind, body = "file", found.real.read_bytes().hex()
        elif stat.S_ISLNK(st.st_mode):
            kind, body = "link", os.readlink(found.real)
        else:
            kind, body = ("dir" if stat.S_ISDIR(st.st_mode) else "other"), ""
        out[found.path] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, body)
    return out


def test_a_squashed_image_has_one_layer_and_the_same_files(store: Store, project: Any) -> None:
    proj = project({"Dockerfile": DOCKERFILE, "app.txt": "hello\n"})
    built = proj.build(limits=LIMITS)
    assert built.result.status == "succeeded", built.finished
    layered = built.result.image
    assert len(layered.layers) == 5

    squashed = squash_image(store, layered)

    assert len(squashed.layers) == 1
    assert squashed.config["rootfs"]["diff_ids"] == [store.layer(squashed.layers[0]).diff_id]
    assert squashed.config["config"] == layered.config["config"]
    assert merged(store, squashed) == merged(store, layered)
    files = merged(store, squashed)
    assert "opt/tools/big.bin" not in files and "opt/tools/keep" not in files
    assert files["data/note"][4] == b"two\n".hex()
    # The deleted 200 KB is shipped by the layered image, not by the squashed one.
    layered_size = sum(store.layer(layer).size for layer in layered.layers)
    squashed_size = store.layer(squashed.layers[0]).size
    assert layered_size - squashed_size >= 200000
    # No whiteout survives in the squashed layer's tar.
    out = io.BytesIO()
    store.write_layer_tar(squashed.layers[0], out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        names = tar.getnames()
    assert not [name for name in names if ".wh." in name]
    assert "data/hard" in names and "app/app.txt" in names


def test_the_cli_squashes_and_tags(store: Store, project: Any) -> None:
    proj = project({"Dockerfile": DOCKERFILE, "app.txt": "hello\n"})
    assert proj.build(limits=LIMITS, tag="app:layered").result.status == "succeeded"
    done = subprocess.run([sys.executable, str(PROJECT / "manage.py"), "images", "squash", "app:layered",
                           "app:flat"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "STUDIO_DATA_DIR": str(store.root)})
    assert done.returncode == 0, done.stderr
    assert "into app:flat (1 layer" in done.stdout
    flat = store.get_image("app:flat")
    assert flat is not None and len(flat.layers) == 1
    missing = subprocess.run([sys.executable, str(PROJECT / "manage.py"), "images", "squash", "nope:1", "x"],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "STUDIO_DATA_DIR": str(store.root)})
    assert missing.returncode == 2 and "no image 'nope:1'" in missing.stderr
    assert "Traceback" not in missing.stderr


def options(root: Path) -> BuildOptions:
    return BuildOptions(context=root, limits=LIMITS, cache_scope="user:7")


def test_the_next_edit_resends_everything_squashed_and_little_layered(store: Store, project: Any) -> None:
    proj = project({"Dockerfile": DOCKERFILE, "app.txt": "hello\n"})

    cost = measure_edit_cost(store, options(proj.root), edit_file="app.txt")

    layered, squashed = cost.layered, cost.squashed
    assert cost.edit == "a line appended to app.txt"
    # Only the COPY's layer is new for the layered image; the squashed one is one new layer.
    assert (layered.push_layers, squashed.push_layers) == (1, 1)
    assert layered.push_bytes < 10000 < squashed.push_bytes
    assert squashed.push_bytes == squashed.tar_size
    assert layered.layers == 5 and squashed.layers == 1
    assert squashed.size < layered.size
    assert squashed.rebuild_ms >= layered.rebuild_ms > 0
    assert (proj.root / "app.txt").read_text() == "hello\n"  # the edit went into a copy


def test_editing_the_last_run_rebuilds_it_and_what_follows(store: Store, project: Any) -> None:
    # Into / : a COPY that makes /app stamps it with the time of the build, so the rebuild's
    # layer would match the first only when both fell in the same second.
    dockerfile = DOCKERFILE.replace("COPY app.txt /app/app.txt", "COPY app.txt /app.txt")
    proj = project({"Dockerfile": dockerfile, "app.txt": "hello\n"})
    cost = measure_edit_cost(store, options(proj.root))
    assert cost.edit == "a comment added to the RUN on line 5"
    # The RUN's new layer; the COPY above it rebuilds into the same bytes, which the registry has.
    assert cost.layered.push_layers == 1
    assert cost.layered.push_bytes < cost.squashed.push_bytes


@pytest.mark.parametrize("name", ["../etc/passwd", "/nope", "missing.txt", "", "link"])
def test_an_edit_outside_the_context_is_refused(store: Store, project: Any, name: str) -> None:
    proj = project({"Dockerfile": DOCKERFILE, "app.txt": "hello\n"})
    (proj.root / "link").symlink_to("/etc/passwd")
    with pytest.raises(EditError):
        measure_edit_cost(store, options(proj.root), edit_file=name or "..")
