"""`images ls` and `images df`: every layer's size, the images sharing it, and what sharing saves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from builds.engine.image.usage import disk_usage
from builds.engine.store import Store

from .conftest import BASE

PROJECT = Path(__file__).resolve().parents[2]


def manage(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PROJECT / "manage.py"), *args], capture_output=True, text=True,
                          env={**os.environ, "STUDIO_DATA_DIR": str(data)}, timeout=60, check=True)


def two_apps(project: Any) -> None:
    for n in (1, 2):
        proj = project({"Dockerfile": f"FROM {BASE}\nRUN head -c {n}000 /dev/zero > /app{n}\n"})
        assert proj.build(tag=f"app:{n}").result.status == "succeeded"


def test_a_base_layer_under_two_images_is_counted_once_on_disk(store: Store, project: Any) -> None:
    two_apps(project)
    store.tag("busybox:again", store.get_image(BASE).digest)  # one image, two names: counted once
    usage = disk_usage(store)
    base = store.layer(store.get_image(BASE).layers[0])
    assert len(usage.images) == 3
    shared = usage.layers[0]
    assert (shared.id, shared.size, len(shared.images)) == (base.id, base.size, 3)
    assert [layer.size for layer in usage.layers[1:]] == [2000, 1000]
    assert usage.stored == base.size + 3000
    assert usage.images_total == 3 * base.size + 3000
    assert usage.saved == 2 * base.size


def test_ls_and_df_say_what_sharing_saves(store: Store, project: Any) -> None:
    two_apps(project)
    base_size = store.layer(store.get_image(BASE).layers[0]).size
    listed = manage("images", "ls", data=store.root).stdout.splitlines()
    assert listed[0].split() == ["NAME", "ID", "LAYERS", "SIZE", "SHARED"]
    app = next(line.split() for line in listed if line.startswith("app:1"))
    assert app[2] == "2" and app[5] == f"{base_size / 1e6:.1f}"  # SHARED: the base layer
    assert listed[-1].startswith("3 images take")
    df = manage("images", "df", data=store.root).stdout.splitlines()
    assert df[0].split() == ["LAYER", "SIZE", "SHARED", "BY", "IMAGES"]
    assert df[1].split()[3] == "3" and "app:1, app:2" in df[1]
    mb = [f"{n / 1e6:.1f}" for n in (3 * base_size + 3000, base_size + 3000, 2 * base_size)]
    assert df[-1] == f"images {mb[0]} MB, stored {mb[1]} MB, saved by sharing {mb[2]} MB"
    doc = json.loads(manage("images", "df", "--json", data=store.root).stdout)
    assert doc["saved"] == 2 * base_size and doc["layers"][0]["shared_by"] == 3
