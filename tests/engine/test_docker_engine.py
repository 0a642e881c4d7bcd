"""Images in and out of a real Docker engine: what the studio exports, `docker load` takes and
runs; what the studio pushes, Docker pulls; what Docker pushes, the studio pulls and builds on.
A squashed image loads as one layer; the bytes the squash measure says a push sends are the bytes
a registry is sent.

The daemon is Debian's docker.io, started privately (bench/docker_daemon.sh); these tests skip,
saying why, only where no daemon can start.
"""
# ruff: noqa: F811 (the fixtures are imported, then named as arguments)

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from builds.engine import image as images
from builds.engine.builder import BuildOptions, build
from builds.engine.editcost import measure_edit_cost
from builds.engine.image.squash import squash_image
from builds.engine.registry.pull import pull
from builds.engine.registry.push import push
from builds.engine.registry.settings import RegistrySettings
from builds.engine.store import Store
from tests.engine.registry_server import DockerDaemon, RegistryServer, docker, registry  # noqa: F401

from .conftest import BASE

LOOPBACK = RegistrySettings()
DOCKERFILE = f'FROM {BASE}\nRUN echo made-by-run > /msg\nCMD ["cat", "/msg"]\n'


def test_an_exported_image_loads_and_runs_in_docker(
    docker: DockerDaemon, project: Any, tmp_path: Path
) -> None:
    proj = project({"Dockerfile": DOCKERFILE})
    assert proj.build(tag="studio-export:1").result.status == "succeeded"
    archive = tmp_path / "image.tar"
    images.export_docker_archive(
        proj.store, proj.store.get_image("studio-export:1"), archive, ["studio-export:1"]
    )
    loaded = docker("load", "-i", str(archive))
    assert "studio-export:1" in loaded.stdout
    ran = docker("run", "--rm", "--network=none", "studio-export:1")
    assert ran.stdout == "made-by-run\n"  # the CMD, reading the file the RUN step wrote
    docker("rmi", "studio-export:1")


def test_docker_and_the_studio_take_each_others_pushes(
    docker: DockerDaemon, project: Any, registry: RegistryServer, tmp_path: Path
) -> None:
    proj = project({"Dockerfile": DOCKERFILE})
    assert proj.build(tag="app:1").result.status == "succeeded"
    push(proj.store, "app:1", f"{registry.host}/ours:1", settings=LOOPBACK, compress=True)  # gzip, as Docker
    docker("pull", f"{registry.host}/ours:1")
    assert docker("run", "--rm", "--network=none", f"{registry.host}/ours:1").stdout == "made-by-run\n"

    # Docker pushes with its own media types and gzip layers; the studio pulls that and checks
    # every layer against the config's diff_ids.
    docker("tag", f"{registry.host}/ours:1", f"{registry.host}/docker-made:1")
    docker("push", f"{registry.host}/docker-made:1")
    fresh = Store(tmp_path / "fresh")
    pulled = pull(fresh, f"{registry.host}/docker-made:1", settings=LOOPBACK)
    assert pulled.image.config["config"]["Cmd"] == ["cat", "/msg"]
    top = fresh.layer_path(pulled.image.layers[-1]) / "msg"
    assert top.read_text() == "made-by-run\n"

    # The same image through `docker save` and `images import` is the very image pulled.
    saved = tmp_path / "saved.tar"
    docker("save", "-o", str(saved), f"{registry.host}/docker-made:1")
    imported = images.import_any(Store(tmp_path / "imported"), saved, "imported:1")
    assert imported.digest == pulled.image.digest

    # Built on that base and pushed back, the base's gzip blobs are reused, not uploaded again.
    context = tmp_path / "derived"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f'FROM {registry.host}/docker-made:1\nRUN echo more > /more\nCMD ["cat", "/msg", "/more"]\n'
    )
    assert build(fresh, BuildOptions(context=context, tag="derived:1")).status == "succeeded"
    result = push(fresh, "derived:1", f"{registry.host}/derived:1", settings=LOOPBACK)
    assert [layer["status"] for layer in result.layers] == ["mounted", "mounted", "pushed"]
    docker("pull", f"{registry.host}/derived:1")
    ran = docker("run", "--rm", "--network=none", f"{registry.host}/derived:1")
    assert ran.stdout == "made-by-run\nmore\n"
    docker("rmi", f"{registry.host}/ours:1", f"{registry.host}/docker-made:1", f"{registry.host}/derived:1")


def test_file_names_that_are_not_utf8_build_export_and_load(
    docker: DockerDaemon, project: Any, tmp_path: Path
) -> None:
    """Any name a filesystem allows goes into the layer byte for byte, `docker load` takes the
    image, and the change list shows each byte that is not UTF-8 as \\xNN."""
    proj = project({"Dockerfile": f"FROM {BASE}\nCOPY odd /odd/\nCMD [\"ls\", \"/odd\"]\n"})
    odd = proj.root / "odd"
    odd.mkdir()
    names = [b"caf\xe9", b"new\nline", b"tab\tname", b"\x1b[31mred", b"x" * 150 + b"\xff"]
    for name in names:
        (odd / os.fsdecode(name)).write_bytes(b"x")
    built = proj.build(tag="studio-odd:1")
    assert built.result.status == "succeeded", built.finished
    layer = proj.store.layer(proj.store.get_image("studio-odd:1").layers[-1], changes=True)
    shown = {c.path for c in layer.changes}
    assert {"odd/caf\\xe9", "odd/new\nline", "odd/\x1b[31mred", "odd/" + "x" * 150 + "\\xff"} <= shown
    archive = tmp_path / "odd.tar"
    images.export_docker_archive(proj.store, proj.store.get_image("studio-odd:1"), archive, ["studio-odd:1"])
    assert "studio-odd:1" in docker("load", "-i", str(archive)).stdout
    # The names came through as bytes: the shell makes the same bytes and finds each file.
    script = ('for n in "caf\\351" "new\\nline" "tab\\tname" "\\033[31mred" '
              '"$(printf "%0150d" 0 | tr 0 x)\\377"; do test -f "/odd/$(printf "$n")" || exit 1; done; '
              'set -- /odd/*; echo $#')
    ran = docker("run", "--rm", "--network=none", "studio-odd:1", "sh", "-c", script)
    assert ran.stdout.split() == ["5"]
    docker("rmi", "studio-odd:1")


def test_a_squashed_image_loads_and_runs_in_docker_as_one_layer(
    docker: DockerDaemon, project: Any, tmp_path: Path
) -> None:
    proj = project({"Dockerfile": DOCKERFILE + "RUN rm /msg && echo squashed > /msg\n"})
    built = proj.build()
    assert built.result.status == "succeeded"
    squashed = squash_image(proj.store, built.result.image)
    archive = tmp_path / "flat.tar"
    images.export_docker_archive(proj.store, squashed, archive, ["studio-flat:1"])
    assert "studio-flat:1" in docker("load", "-i", str(archive)).stdout
    assert docker("run", "--rm", "--network=none", "studio-flat:1").stdout == "squashed\n"
    layers = docker("image", "inspect", "--format", "{{len .RootFS.Layers}}", "studio-flat:1").stdout
    assert layers.strip() == "1"
    docker("rmi", "studio-flat:1")


def test_the_measured_push_bytes_are_what_a_registry_is_sent(
    project: Any, registry: RegistryServer
) -> None:
    dockerfile = f"FROM {BASE}\nRUN head -c 300000 /dev/urandom > /tools\nCOPY app.txt /app.txt\n"
    proj = project({"Dockerfile": dockerfile, "app.txt": "v1\n"})
    cost = measure_edit_cost(proj.store, BuildOptions(context=proj.root), edit_file="app.txt")
    for name, variant in (("layered", cost.layered), ("squashed", cost.squashed)):
        first = push(proj.store, variant.before, f"{registry.host}/{name}:1", settings=LOOPBACK)
        assert first.uploaded > 0
        second = push(proj.store, variant.digest, f"{registry.host}/{name}:2", settings=LOOPBACK)
        assert second.uploaded == variant.push_bytes, name
        assert len(second.layers) - len(second.skipped) == variant.push_layers, name
    assert cost.layered.push_bytes < 10000 < 300000 < cost.squashed.push_bytes
