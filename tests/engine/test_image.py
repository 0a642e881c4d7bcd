"""Images: a busybox root filesystem imported like `docker import`, configs made from a stage,
and archives written for `docker load` (and OCI tools) and read back."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from builds.engine import image as images
from builds.engine.errors import InputError
from builds.engine.instructions.base import StageState
from builds.engine.store import Image, Store
from builds.engine.store.unpack import extract_archive

from .conftest import busybox_tarball

BUSYBOX = busybox_tarball()
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def busybox(store: Store) -> Image:
    return images.import_rootfs(store, BUSYBOX, "busybox:base")


def with_a_layer(store: Store, base: Image) -> Image:
    """`base` plus a layer writing /hello, and some config, as a build would make it."""
    upper = store.work_dir("step")
    (upper / "hello").write_text("hello\n")
    layer = store.commit_layer(upper, base.layers)
    assert layer is not None
    state = StageState(label="app", key="k", layers=[*base.layers, layer.id], env={"PATH": "/bin", "A": "1"},
                       args={}, workdir="/srv",
                       config={"Cmd": ["cat", "/hello"], "ExposedPorts": {"80/tcp": {}}},
                       history=[*base.config["history"], {"created_by": "RUN echo hello > /hello"},
                                {"created_by": "CMD", "empty_layer": True}])
    image = images.image_from_state(store, state)
    store.put_image(image)
    return image


def read_archive(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class TestImportRootfs:
    def test_a_rootfs_tarball_becomes_a_one_layer_image(self, store: Store, busybox: Image) -> None:
        assert len(busybox.layers) == 1
        root = store.layer_path(busybox.layers[0])
        assert (root / "bin/busybox").stat().st_size > 100_000
        assert os.readlink(root / "bin/sh") == "/bin/busybox"  # symlinks kept as written
        config = busybox.config
        assert (config["architecture"], config["os"]) == ("amd64", "linux")
        assert config["config"]["Env"] == [PATH_ENV]
        assert config["rootfs"] == {"type": "layers", "diff_ids": [store.layer(busybox.layers[0]).diff_id]}
        assert [h.get("empty_layer", False) for h in config["history"]] == [False]
        found = store.get_image("busybox:base")
        assert found is not None and found.digest == busybox.digest

    def test_the_same_tarball_imports_to_the_same_digest(self, tmp_path: Path, busybox: Image) -> None:
        again = images.import_rootfs(Store(tmp_path / "other"), BUSYBOX, "busybox:again")
        assert again.digest == busybox.digest

    def test_import_any_knows_a_rootfs_from_an_image_archive(self, store: Store, busybox: Image,
                                                             tmp_path: Path) -> None:
        archive = tmp_path / "busybox.tar"
        images.export_docker_archive(store, busybox, archive, ["busybox:saved"])
        assert images.archive_kind(BUSYBOX) == "rootfs"
        assert images.archive_kind(archive) == "docker"
        assert images.import_any(store, BUSYBOX, "x").digest == busybox.digest

    def test_a_missing_file_is_an_input_error(self, store: Store, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="no file"):
            images.import_any(store, tmp_path / "nothing.tar", "x")


class TestConfig:
    def test_make_config_uses_oci_field_names(self) -> None:
        config = images.make_config(
            {}, env={"PATH": "/bin", "A": "1"}, cmd=["sh"], entrypoint=["/init"], workdir="/app", user="app",
            labels={"team": "blue"}, exposed_ports=["80", "53/udp"], volumes=["/data"], stop_signal="SIGTERM",
            healthcheck={"Test": ["CMD", "true"]}, shell=["/bin/bash", "-c"], diff_ids=["sha256:" + "a" * 64],
            history=[{"created_by": "RUN x"}, {"created_by": "CMD", "empty_layer": True}],
        )
        assert config["config"] == {
            "Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Entrypoint": ["/init"], "WorkingDir": "/app",
            "User": "app", "Labels": {"team": "blue"}, "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "Volumes": {"/data": {}}, "StopSignal": "SIGTERM", "Healthcheck": {"Test": ["CMD", "true"]},
            "Shell": ["/bin/bash", "-c"],
        }
        assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]}
        assert config["history"][1]["empty_layer"] is True
        assert (config["architecture"], config["os"]) == ("amd64", "linux")

    def test_none_keeps_the_base_value_and_empty_removes_it(self) -> None:
        base = {"architecture": "arm64", "os": "linux",
                "config": {"Cmd": ["sh"], "User": "nobody", "Env": ["A=1"]}}
        config = images.make_config(base, user="", env=["B=2"], diff_ids=[], history=[])
        assert config["config"] == {"Cmd": ["sh"], "Env": ["B=2"]}
        assert config["architecture"] == "arm64"
        assert base["config"]["User"] == "nobody"  # the base is not changed

    def test_an_image_from_a_stage_carries_its_state(self, store: Store, busybox: Image) -> None:
        image = with_a_layer(store, busybox)
        config = image.config
        assert config["config"] == {"Env": ["PATH=/bin", "A=1"], "WorkingDir": "/srv",
                                    "Cmd": ["cat", "/hello"], "ExposedPorts": {"80/tcp": {}}}
        assert config["rootfs"]["diff_ids"] == [store.layer(layer).diff_id for layer in image.layers]
        assert image.digest == sha(image.config_bytes())


class TestExport:
    def test_the_manifest_lists_uncompressed_layers_and_sizes(self, store: Store, busybox: Image) -> None:
        image = with_a_layer(store, busybox)
        manifest = images.manifest_for(store, image)
        assert manifest["config"]["digest"] == image.digest
        assert manifest["config"]["size"] == len(image.config_bytes())
        for descriptor, layer in zip(manifest["layers"], image.layers, strict=True):
            out = io.BytesIO()
            store.write_layer_tar(layer, out)
            assert descriptor["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
            assert (descriptor["digest"], descriptor["size"]) == (sha(out.getvalue()), len(out.getvalue()))

    def test_a_docker_archive_holds_both_layouts_with_matching_digests(self, store: Store, busybox: Image,
                                                                       tmp_path: Path) -> None:
        image = with_a_layer(store, busybox)
        path = tmp_path / "app.tar"
        images.export_docker_archive(store, image, path, ["app:1", "docker.io/library/app:latest"])
        files = read_archive(path)
        [entry] = json.loads(files["manifest.json"])
        assert entry["RepoTags"] == ["app:1", "app:latest"]
        config = files[entry["Config"]]
        assert sha(config) == image.digest
        assert [sha(files[name]) for name in entry["Layers"]] == json.loads(config)["rootfs"]["diff_ids"]
        index = json.loads(files["index.json"])
        names = [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]]
        assert names == ["docker.io/library/app:1", "docker.io/library/app:latest"]
        manifest_bytes = files["blobs/sha256/" + index["manifests"][0]["digest"][7:]]
        assert sha(manifest_bytes) == index["manifests"][0]["digest"]
        assert json.loads(manifest_bytes)["config"]["digest"] == image.digest
        assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    @pytest.mark.parametrize("kind", ["docker", "oci"])
    def test_an_exported_image_imports_back_to_the_same_digest(self, store: Store, busybox: Image,
                                                               tmp_path: Path, kind: str) -> None:
        image = with_a_layer(store, busybox)
        path = tmp_path / "app.tar"
        export = images.export_docker_archive if kind == "docker" else images.export_oci_archive
        export(store, image, path, ["app:1"])
        assert images.archive_kind(path) == kind
        again = images.import_any(Store(tmp_path / "other"), path, "app:again")
        assert again.digest == image.digest

    def test_an_oci_layout_directory_imports(self, store: Store, busybox: Image, tmp_path: Path) -> None:
        image = with_a_layer(store, busybox)
        path = tmp_path / "app.tar"
        images.export_oci_archive(store, image, path)
        layout = tmp_path / "layout"
        layout.mkdir()
        extract_archive(str(path), str(layout))
        assert images.import_any(Store(tmp_path / "other"), layout, "app").digest == image.digest


class TestForeignArchives:
    def legacy_archive(self, tmp_path: Path) -> Path:
        """A `docker save` archive as Docker before 25 wrote it: <id>/layer.tar, a config
        named by its hex, a repeated layer as a symlink to the first; here gzip-compressed."""
        layer = io.BytesIO()
        with tarfile.open(fileobj=layer, mode="w") as tar:
            info = tarfile.TarInfo("etc/motd")
            data = b"welcome\n"
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        layer_bytes = gzip.compress(layer.getvalue())
        diff_id = sha(layer.getvalue())
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                             "rootfs": {"type": "layers", "diff_ids": [diff_id, diff_id]},
                             "history": [{"created_by": "ADD motd"}, {"created_by": "ADD again"}]}).encode()
        manifest = [{"Config": f"{sha(config)[7:]}.json", "RepoTags": ["old:1"],
                     "Layers": ["aaaa/layer.tar", "bbbb/layer.tar"]}]
        path = tmp_path / "legacy.tar"
        with tarfile.open(path, "w") as tar:
            _add(tar, "aaaa/layer.tar", layer_bytes)
            link = tarfile.TarInfo("bbbb/layer.tar")
            link.type, link.linkname = tarfile.SYMTYPE, "../aaaa/layer.tar"
            tar.addfile(link)
            _add(tar, f"{sha(config)[7:]}.json", config)
            _add(tar, "manifest.json", json.dumps(manifest).encode())
        return path

    def test_a_legacy_docker_save_archive_imports(self, store: Store, tmp_path: Path) -> None:
        image = images.import_any(store, self.legacy_archive(tmp_path), "old:1")
        assert len(image.layers) == 2 and image.layers[0] == image.layers[1]
        assert (store.layer_path(image.layers[0]) / "etc/motd").read_text() == "welcome\n"
        assert image.config["config"]["Cmd"] == ["sh"]
        assert image.config["rootfs"]["diff_ids"] == [store.layer(image.layers[0]).diff_id] * 2
        assert store.get_image("old:1") is not None

    def test_an_archive_naming_a_file_outside_it_is_refused(self, store: Store, tmp_path: Path) -> None:
        config = json.dumps({"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
        path = tmp_path / "bad.tar"
        with tarfile.open(path, "w") as tar:
            _add(tar, "c.json", config)
            link = tarfile.TarInfo("layer.tar")
            link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
            tar.addfile(link)
            _add(tar, "manifest.json", json.dumps([{"Config": "c.json", "Layers": ["layer.tar"]}]).encode())
        with pytest.raises(InputError, match="does not hold it"):
            images.import_archive(store, path, "bad")

    def test_a_config_escaping_half_a_character_is_refused(self, store: Store, tmp_path: Path) -> None:
        # Valid JSON, but "\\ud800" is half of a character: no store file could hold it as text.
        legacy = self.legacy_archive(tmp_path)
        with tarfile.open(legacy) as tar:
            members = {m.name: (m, tar.extractfile(m).read() if m.isfile() else b"")  # type: ignore[union-attr]
                       for m in tar.getmembers()}
        manifest = json.loads(members["manifest.json"][1])
        config_name = manifest[0]["Config"]
        config = json.loads(members[config_name][1])
        config["config"]["Env"] = ["HALF=\ud800"]
        path = tmp_path / "half.tar"
        with tarfile.open(path, "w") as tar:
            for name, (member, data) in members.items():
                if name == config_name:
                    data = json.dumps(config).encode()  # ASCII: the escape stays an escape
                    member.size = len(data)
                tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
        before = store.tags()

        with pytest.raises(InputError, match=rf"{config_name} is not valid JSON .*half of a character"):
            images.import_archive(store, path, "half:1")

        assert store.tags() == before


def _add(tar: tarfile.TarFile, name: str, data: bytes, **fields: Any) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data))
