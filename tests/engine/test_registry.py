"""Pull and push against a real registry on loopback (Debian's docker-registry), with images
these tests push there first."""
# ruff: noqa: F811 (the registry fixtures are imported, then named as arguments)

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import zstandard
from dxf import DXF

from builds.engine import image as images
from builds.engine.builder import BuildOptions, BuildResult, build
from builds.engine.events import TransferEvent, wire
from builds.engine.registry.client import RegistryError
from builds.engine.registry.pull import pull
from builds.engine.registry.push import push
from builds.engine.registry.settings import Platform, RegistrySettings
from builds.engine.store import Image, Store, canonical_json
from tests.engine.registry_server import (  # noqa: F401 (fixtures)
    PASSWORD,
    USER,
    RegistryServer,
    TokenService,
    registry,
    secure_registry,
    token_registry,
)

from .conftest import BASE, Project, busybox_tarball

PROJECT = Path(__file__).resolve().parents[2]
LOOPBACK = RegistrySettings()


def events_of(kind: str) -> tuple[list[dict[str, Any]], Any]:
    seen: list[dict[str, Any]] = []

    def report(event: TransferEvent) -> None:
        fields = wire(event, seq=1)
        assert fields.pop("type") == kind
        del fields["seq"]
        seen.append(fields)

    return seen, report


def app_image(project: Any) -> Project:
    proj = project({"Dockerfile": f'FROM {BASE}\nRUN echo made-by-run > /msg\nCMD ["cat", "/msg"]\n'})
    assert proj.build(tag="app:1").result.status == "succeeded"
    return proj


def build_fresh(tmp_path: Path, dockerfile: str) -> tuple[Store, BuildResult, list[dict[str, Any]]]:
    """Build `dockerfile` into a new store holding only the base image."""
    context = tmp_path / "fresh-ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    fresh = Store(tmp_path / "fresh")
    images.import_any(fresh, busybox_tarball(), BASE)
    events: list[dict[str, Any]] = []
    return fresh, build(fresh, BuildOptions(context=context), events.append), events


def layer_dirs(store: Store) -> list[str]:
    return sorted(p.name for p in store.layers.iterdir() if p.is_dir())


def manage(*args: str, data: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROJECT / "manage.py"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "STUDIO_DATA_DIR": str(data), **env},
        timeout=120,
    )


class TestPull:
    def test_an_image_pushed_there_comes_back_the_same(
        self, store: Store, registry: RegistryServer, tmp_path: Path
    ) -> None:
        original = store.get_image(BASE)
        push(store, BASE, f"{registry.host}/busybox:test", settings=LOOPBACK)
        fresh = Store(tmp_path / "fresh")
        seen, report = events_of("image.pull")
        result = pull(fresh, f"{registry.host}/busybox:test", settings=LOOPBACK, report=report)
        assert result.image.digest == original.digest
        assert fresh.get_image(f"{registry.host}/busybox:test").digest == original.digest
        statuses = [e["status"] for e in seen]
        assert statuses[0] == "resolved" and statuses[-1] == "done"
        assert {"waiting", "downloading", "extracting"} <= set(statuses)
        progress = [e for e in seen if e["status"] == "downloading"]
        assert progress[-1]["current"] == progress[-1]["total"] == result.fetched > 1_000_000

    def test_a_second_pull_fetches_nothing(
        self, store: Store, registry: RegistryServer, tmp_path: Path
    ) -> None:
        push(store, BASE, f"{registry.host}/busybox:test", settings=LOOPBACK)
        fresh = Store(tmp_path / "fresh")
        pull(fresh, f"{registry.host}/busybox:test", settings=LOOPBACK)
        downloads = registry.blob_downloads()
        assert downloads == 2  # its config and its one layer
        seen, report = events_of("image.pull")
        again = pull(fresh, f"{registry.host}/busybox:test", settings=LOOPBACK, report=report)
        assert registry.blob_downloads() == downloads
        assert again.fetched == 0
        assert [e["status"] for e in seen if e["layer"]] == ["exists"]

    def test_two_builds_pulling_one_image_at_once_fetch_it_once(
        self, store: Store, registry: RegistryServer, tmp_path: Path
    ) -> None:
        push(store, BASE, f"{registry.host}/busybox:test", settings=LOOPBACK)
        fresh = Store(tmp_path / "fresh")
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: pull(fresh, f"{registry.host}/busybox:test", settings=LOOPBACK),
                                    range(2)))
        assert sorted(r.fetched > 0 for r in results) == [False, True]
        assert results[0].image.digest == results[1].image.digest == store.get_image(BASE).digest
        assert registry.blob_downloads() == 2

    def test_layers_come_side_by_side_once_each_and_are_reported_from_the_pulling_thread(
        self, store: Store, project: Any, registry: RegistryServer, tmp_path: Path
    ) -> None:
        app_image(project)
        app = store.get_image("app:1")
        base, top = app.layers
        twice = Image(config={**app.config, "rootfs": {"type": "layers", "diff_ids": [
            store.layer(layer).diff_id for layer in (base, top, base)]}}, layers=[base, top, base])
        store.put_image(twice)
        store.tag("twice:1", twice.digest)
        push(store, "twice:1", f"{registry.host}/twice:1", settings=LOOPBACK)
        threads: set[int] = set()

        def report(type_: str, **fields: Any) -> None:
            threads.add(threading.get_ident())

        pulled = pull(Store(tmp_path / "fresh"), f"{registry.host}/twice:1", settings=LOOPBACK, report=report)
        assert pulled.image.digest == twice.digest
        assert pulled.fetched == store.layer_tar_size(base) + store.layer_tar_size(top)
        assert registry.blob_downloads() == 3  # the config and each layer once
        assert threads == {threading.get_ident()}

    def test_only_the_layers_the_store_lacks_are_fetched(
        self, store: Store, project: Any, registry: RegistryServer, tmp_path: Path, busybox_tar: Path
    ) -> None:
        app_image(project)
        push(store, "app:1", f"{registry.host}/app:1", settings=LOOPBACK)
        fresh = Store(tmp_path / "fresh")
        images.import_any(fresh, busybox_tar, "busybox:local")  # the same base, imported here
        result = pull(fresh, f"{registry.host}/app:1", settings=LOOPBACK)
        assert [layer["status"] for layer in result.layers] == ["exists", "pulled"]
        assert registry.blob_downloads() == 2  # the config and the top layer, not the base
        assert result.image.digest == store.get_image("app:1").digest

    @pytest.mark.parametrize(
        "index_type",
        [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ],
    )
    def test_a_multi_platform_image_gives_the_configured_platform(
        self, store: Store, registry: RegistryServer, tmp_path: Path, index_type: str
    ) -> None:
        base = store.get_image(BASE)
        arm = Image(config={**base.config, "architecture": "arm64", "variant": "v8"}, layers=base.layers)
        store.put_image(arm)
        store.tag("busybox:arm", arm.digest)
        pushed = {
            arch: push(store, name, f"{registry.host}/multi:{arch}", settings=LOOPBACK)
            for arch, name in (("amd64", BASE), ("arm64", "busybox:arm"))
        }
        index = {
            "schemaVersion": 2,
            "mediaType": index_type,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": pushed[arch].manifest_digest,
                    "size": len(_manifest(registry, pushed[arch].manifest_digest)),
                    "platform": platform,
                }
                for arch, platform in (
                    ("arm64", {"os": "linux", "architecture": "arm64", "variant": "v8"}),
                    ("amd64", {"os": "linux", "architecture": "amd64"}),
                )
            ],
        }
        DXF(registry.host, "multi", insecure=True).set_manifest("latest", json.dumps(index))

        amd = pull(Store(tmp_path / "a"), f"{registry.host}/multi", settings=LOOPBACK)
        assert amd.image.config["architecture"] == "amd64"
        assert amd.manifest_digest == pushed["amd64"].manifest_digest
        arm_pull = manage("images", "pull", "--platform", "linux/arm64", f"{registry.host}/multi:latest",
                          data=tmp_path / "b")
        assert arm_pull.returncode == 0, arm_pull.stderr
        assert Store(tmp_path / "b").get_image(f"{registry.host}/multi").config["architecture"] == "arm64"
        bad = manage("images", "pull", "--platform", "arm64", f"{registry.host}/multi", data=tmp_path / "b")
        assert bad.returncode == 2 and "--platform='arm64': expected OS/ARCH" in bad.stderr
        with pytest.raises(
            RegistryError, match=r"no image for linux/s390x \(it has: linux/arm64/v8, linux/amd64\)"
        ):
            pull(
                Store(tmp_path / "c"),
                f"{registry.host}/multi",
                settings=RegistrySettings(platform=Platform.parse("linux/s390x")),
            )

    def test_a_zstd_layer_is_pulled_and_checked_against_its_diff_id(
        self, store: Store, registry: RegistryServer, tmp_path: Path
    ) -> None:
        base = store.get_image(BASE)
        tar = io.BytesIO()
        diff_id = store.write_layer_tar(base.layers[0], tar)
        blob = zstandard.ZstdCompressor().compress(tar.getvalue())
        repo = DXF(registry.host, "zstd", insecure=True)

        def publish(tag: str, said_diff_id: str) -> None:
            config = canonical_json({**base.config, "rootfs": {"type": "layers", "diff_ids": [said_diff_id]}})
            digests = [repo.push_blob(data=data, digest=_sha256(data)) for data in (blob, config)]
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digests[1],
                           "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": digests[0],
                            "size": len(blob)}],
            }
            repo.set_manifest(tag, json.dumps(manifest))

        publish("good", diff_id)
        publish("lying", "sha256:" + "1" * 64)
        pulled = pull(Store(tmp_path / "a"), f"{registry.host}/zstd:good", settings=LOOPBACK)
        assert pulled.image.digest == base.digest
        lied_to = Store(tmp_path / "b")
        with pytest.raises(RegistryError, match=f"unpacks to {diff_id}, but the image config says sha256:1"):
            pull(lied_to, f"{registry.host}/zstd:lying", settings=LOOPBACK)
        assert lied_to.tags() == {}

    def test_a_pull_by_digest_checks_the_manifest_and_finds_it_again(
        self, store: Store, registry: RegistryServer, tmp_path: Path
    ) -> None:
        pushed = push(store, BASE, f"{registry.host}/busybox:test", settings=LOOPBACK)
        fresh = Store(tmp_path / "fresh")
        pinned = f"{registry.host}/busybox@{pushed.manifest_digest}"
        result = pull(fresh, pinned, settings=LOOPBACK)
        assert result.image.digest == store.get_image(BASE).digest
        wrong = f"{registry.host}/busybox@sha256:" + "0" * 64
        with pytest.raises(RegistryError, match="not found"):
            pull(fresh, wrong, settings=LOOPBACK)

    def test_a_corrupt_blob_is_refused_and_nothing_is_stored(
        self, store: Store, project: Any, registry: RegistryServer, tmp_path: Path
    ) -> None:
        app_image(project)
        pushed = push(store, "app:1", f"{registry.host}/app:1", settings=LOOPBACK)
        base_blob = registry.blob_file(pushed.layers[0]["digest"])
        data = bytearray(base_blob.read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size, one byte changed
        base_blob.write_bytes(bytes(data))
        fresh_dir = tmp_path / "fresh"
        done = manage("images", "pull", f"{registry.host}/app:1", data=fresh_dir)
        assert done.returncode == 2
        assert f"{registry.host}/app:1" in done.stderr and "does not match its digest" in done.stderr
        fresh = Store(fresh_dir)
        assert fresh.tags() == {} and layer_dirs(fresh) == []
        assert list(fresh.tmp.glob("pull-*")) == []

    def test_an_unknown_image_or_an_absent_registry_is_named_with_exit_code_2(
        self, registry: RegistryServer, tmp_path: Path
    ) -> None:
        missing = manage("images", "pull", f"{registry.host}/nothing:1", data=tmp_path / "s")
        assert missing.returncode == 2
        assert missing.stderr.strip() == f"error: {registry.host}/nothing:1 was not found on {registry.host}"
        closed = manage("images", "pull", "127.0.0.1:9/nothing:1", data=tmp_path / "s")
        assert closed.returncode == 2 and "cannot reach the registry 127.0.0.1:9" in closed.stderr
        bad = manage("images", "pull", "Not/Valid:tag", data=tmp_path / "s")
        assert bad.returncode == 2 and "invalid image reference 'Not/Valid:tag'" in bad.stderr

    def test_pull_progress_streams_as_json_events(
        self, store: Store, registry: RegistryServer, tmp_path: Path
    ) -> None:
        push(store, BASE, f"{registry.host}/busybox:test", settings=LOOPBACK)
        done = manage(
            "images", "pull", f"{registry.host}/busybox:test", "--progress", "json", data=tmp_path / "s"
        )
        assert done.returncode == 0, done.stderr
        events = [json.loads(line) for line in done.stdout.splitlines()]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert {e["type"] for e in events} == {"image.pull"}
        assert all(set(e) >= {"image", "layer", "current", "total", "status"} for e in events)
        assert events[-1]["status"] == "done" and events[-1]["layer"] is None


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _manifest(registry: RegistryServer, digest: str) -> bytes:
    _, response = DXF(registry.host, "multi", insecure=True).get_manifest_and_response(digest)
    return response.content


class TestPush:
    def test_a_push_uploads_only_the_layers_the_registry_lacks(
        self, store: Store, project: Any, registry: RegistryServer
    ) -> None:
        first = push(store, BASE, f"{registry.host}/busybox:test", settings=LOOPBACK)
        assert [layer["status"] for layer in first.layers] == ["pushed"]
        app_image(project)
        uploads = registry.blob_uploads()
        second = push(store, "app:1", f"{registry.host}/app:1", settings=LOOPBACK)
        assert [layer["status"] for layer in second.layers] == ["mounted", "pushed"]
        assert second.layers[0]["source"] == f"{registry.host}/busybox"
        assert registry.blob_uploads() == uploads + 2  # the top layer and the config
        again = manage("images", "push", "app:1", f"{registry.host}/app:2", data=store.root)
        assert again.returncode == 0, again.stderr
        assert "0 layer(s) uploaded, 2 skipped as already there" in again.stdout
        assert registry.blob_uploads() == uploads + 2

    def test_a_gzip_push_is_smaller_pulls_back_the_same_and_is_found_again(
        self, store: Store, project: Any, registry: RegistryServer, tmp_path: Path
    ) -> None:
        app_image(project)
        image = store.get_image("app:1")
        first = push(store, "app:1", f"{registry.host}/app:1", settings=LOOPBACK, compress=True)
        assert [layer["status"] for layer in first.layers] == ["pushed", "pushed"]
        base = first.layers[0]
        assert registry.blob_file(base["digest"]).read_bytes()[:2] == b"\x1f\x8b"
        assert base["size"] < store.layer_tar_size(image.layers[0]) * 0.7
        _, response = DXF(registry.host, "app", insecure=True).get_manifest_and_response("1")
        assert {layer["mediaType"] for layer in response.json()["layers"]} == {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        pulled = pull(Store(tmp_path / "fresh"), f"{registry.host}/app:1", settings=LOOPBACK)
        assert pulled.image.digest == image.digest
        # Compressed again by a store that forgot what it pushed, the blobs are byte for byte
        # the ones the registry has: nothing is uploaded.
        shutil.rmtree(store.root / "registry")
        uploads = registry.blob_uploads()
        again = push(store, "app:1", f"{registry.host}/app:2", settings=LOOPBACK, compress=True)
        assert [layer["status"] for layer in again.layers] == ["exists", "exists"]
        assert registry.blob_uploads() == uploads + 0

    def test_a_pushed_image_is_the_one_pulled_by_its_name(
        self, store: Store, project: Any, registry: RegistryServer, tmp_path: Path
    ) -> None:
        app_image(project)
        push(store, "app:1", f"{registry.host}/app:1", settings=LOOPBACK)
        proj = project({"Dockerfile": f"FROM {BASE}\nRUN echo changed > /msg\n"})
        assert proj.build(tag="app:1").result.status == "succeeded"
        push(store, "app:1", f"{registry.host}/app:1", settings=LOOPBACK)
        pulled = pull(Store(tmp_path / "fresh"), f"{registry.host}/app:1", settings=LOOPBACK)
        assert pulled.image.digest == store.get_image("app:1").digest


class TestLogin:
    def test_a_registry_with_a_login_takes_it_over_tls_and_refuses_strangers(
        self, store: Store, secure_registry: RegistryServer, tmp_path: Path
    ) -> None:
        host = secure_registry.host
        assert secure_registry.ca is not None
        auth_file = tmp_path / "config.json"
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        auth_file.write_text(json.dumps({"auths": {host: {"auth": token}}}))
        env = {"STUDIO_REGISTRY_CA": str(secure_registry.ca), "STUDIO_REGISTRY_AUTH_FILE": str(auth_file)}
        pushed = manage("images", "push", BASE, f"{host}/busybox:test", data=store.root, **env)
        assert pushed.returncode == 0, pushed.stderr
        pulled = manage("images", "pull", f"{host}/busybox:test", data=tmp_path / "s", **env)
        assert pulled.returncode == 0, pulled.stderr

        auth_file.write_text(json.dumps({"auths": {host: {"username": USER, "password": "wrong"}}}))
        refused = manage("images", "pull", f"{host}/busybox:test", data=tmp_path / "t", **env)
        assert refused.returncode == 2
        assert f"{host} refused access to {host}/busybox:test" in refused.stderr
        untrusted = manage(
            "images",
            "pull",
            f"{host}/busybox:test",
            data=tmp_path / "t",
            STUDIO_REGISTRY_AUTH_FILE=str(auth_file),
        )
        assert untrusted.returncode == 2 and "STUDIO_REGISTRY_CA" in untrusted.stderr
        assert Store(tmp_path / "t").tags() == {}


    def test_a_token_registry_lets_anyone_pull_and_only_a_login_push(
        self, store: Store, token_registry: tuple[RegistryServer, TokenService], tmp_path: Path
    ) -> None:
        server, tokens = token_registry
        host = server.host
        auth_file = tmp_path / "config.json"
        auth_file.write_text(json.dumps({"auths": {host: {"username": USER, "password": PASSWORD}}}))
        ca = {"STUDIO_REGISTRY_CA": str(server.ca)}
        nobody = {**ca, "STUDIO_REGISTRY_AUTH_FILE": str(tmp_path / "none.json")}
        refused = manage("images", "push", BASE, f"{host}/busybox:test", data=store.root, **nobody)
        assert refused.returncode == 2
        assert f"{host} refused access to {host}/busybox:test" in refused.stderr
        pushed = manage("images", "push", BASE, f"{host}/busybox:test", data=store.root,
                        STUDIO_REGISTRY_AUTH_FILE=str(auth_file), **ca)
        assert pushed.returncode == 0, pushed.stderr
        assert (USER, {"pull", "push"}) in [(a["user"], set(a["scope"].rsplit(":", 1)[1].split(",")))
                                            for a in tokens.asked]
        pulled = manage("images", "pull", f"{host}/busybox:test", data=tmp_path / "s", **nobody)
        assert pulled.returncode == 0, pulled.stderr
        assert tokens.asked[-1] == {"user": "", "scope": "repository:busybox:pull"}
        assert Store(tmp_path / "s").get_image(f"{host}/busybox:test").digest == store.get_image(BASE).digest


class TestFromPulls:
    def test_a_from_naming_a_registry_image_pulls_it_once(
        self, store: Store, registry: RegistryServer, tmp_path: Path
    ) -> None:
        push(store, BASE, f"{registry.host}/busybox:test", settings=LOOPBACK)
        context = tmp_path / "ctx"
        context.mkdir()
        (context / "Dockerfile").write_text(f"FROM {registry.host}/busybox:test\nRUN echo hi > /hi\n")
        fresh = Store(tmp_path / "fresh")
        events: list[dict[str, Any]] = []
        result = build(fresh, BuildOptions(context=context), events.append)
        assert result.status == "succeeded", result.error
        pulls = [e for e in events if e["type"] == "image.pull"]
        assert pulls and all(e["step"] == 1 for e in pulls)
        assert pulls[-1]["status"] == "done"
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        again: list[dict[str, Any]] = []
        assert build(fresh, BuildOptions(context=context), again.append).status == "succeeded"
        assert not [e for e in again if e["type"] == "image.pull"]

    def test_a_cancel_stops_a_pull_and_stores_nothing(
        self, store: Store, registry: RegistryServer, tmp_path: Path
    ) -> None:
        push(store, BASE, f"{registry.host}/busybox:test", settings=LOOPBACK)
        context = tmp_path / "ctx"
        context.mkdir()
        (context / "Dockerfile").write_text(f"FROM {registry.host}/busybox:test\nRUN true\n")
        fresh = Store(tmp_path / "fresh")
        cancel = threading.Event()
        events: list[dict[str, Any]] = []

        def sink(event: dict[str, Any]) -> None:
            events.append(event)
            if event["type"] == "image.pull" and event["status"] == "resolved":
                cancel.set()  # as a person pressing Cancel once the pull has begun

        result = build(fresh, BuildOptions(context=context, cancel=cancel), sink)
        assert result.status == "cancelled"
        assert events[-1]["error"]["line"] == 1
        assert registry.blob_downloads() == 1  # the config only: no layer was fetched
        assert fresh.tags() == {} and layer_dirs(fresh) == []

    def test_a_from_that_cannot_be_pulled_names_the_image_and_the_line(
        self, registry: RegistryServer, tmp_path: Path
    ) -> None:
        context = tmp_path / "ctx"
        context.mkdir()
        (context / "Dockerfile").write_text(f"ARG V=1\nFROM {registry.host}/nothing:$V\nRUN true\n")
        done = manage("build", str(context), data=tmp_path / "s")
        assert done.returncode == 2
        assert (
            f"line 2: base image '{registry.host}/nothing:1' is not in the store, and pulling it "
            f"failed: {registry.host}/nothing:1 was not found on {registry.host}"
        ) in done.stdout
        assert Store(tmp_path / "s").tags() == {}

    def test_a_copy_from_naming_a_registry_image_pulls_it_and_copies_its_files(
        self, project: Any, registry: RegistryServer, tmp_path: Path
    ) -> None:
        tools = app_image(project)
        push(tools.store, "app:1", f"{registry.host}/tools:1", settings=LOOPBACK)
        fresh, result, events = build_fresh(
            tmp_path, f"FROM {BASE}\nCOPY --from={registry.host}/tools:1 /msg /copied\nRUN cat /copied\n")
        assert result.status == "succeeded", result.error
        pulls = [e for e in events if e["type"] == "image.pull"]
        assert pulls and all(e["step"] == 2 for e in pulls) and pulls[-1]["status"] == "done"
        assert "made-by-run\n" in [e["text"] for e in events if e["type"] == "step.log"]
        # The pulled image stays in the store under its name, as a FROM's does.
        assert fresh.get_image(f"{registry.host}/tools:1") is not None

    def test_a_copy_from_that_names_neither_a_stage_nor_a_pullable_image_says_both(
        self, registry: RegistryServer, tmp_path: Path
    ) -> None:
        _, result, events = build_fresh(tmp_path,
                                        f"FROM {BASE}\nCOPY --from={registry.host}/nothing:1 /x /x\n")
        assert result.status == "failed"
        error = events[-1]["error"]
        assert error["line"] == 2
        assert error["message"] == (
            f"COPY --from={registry.host}/nothing:1: no earlier stage or stored image of that name, and "
            f"pulling it failed: {registry.host}/nothing:1 was not found on {registry.host}")
