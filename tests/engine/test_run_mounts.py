"""RUN --mount in real sandboxed builds: cache, bind and tmpfs mounts, what they add to the
step's cache key, and that none of them leaves anything in the layer."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack

import pytest

from builds.engine.instructions.mounts import MountError, MountSpec, cache_dir, parse
from builds.engine.store import Store

from .conftest import BASE, Built, Project
from .test_planner import foretell


def layer_names(store: Store, built: Built, instruction: str) -> set[str]:
    layer = built.step(instruction)["layer"]
    if layer is None:
        return set()
    out = io.BytesIO()
    store.write_layer_tar(layer["digest"][7:23], out)
    out.seek(0)
    return {m.name.rstrip("/") for m in tarfile.open(fileobj=out).getmembers()}


def read(store: Store, built: Built, path: str) -> str:
    image = store.get_image(built.finished["image"]["digest"])
    assert image is not None
    for layer in reversed(image.layers):
        found = store.layer_path(layer) / path
        if found.exists():
            return found.read_text()
    raise AssertionError(f"{path} is in no layer")


class TestCacheMounts:
    DOCKERFILE = (f"FROM {BASE}\n"
                  "RUN --mount=type=cache,target=/var/cache/app sh -c "
                  "'echo run >> /var/cache/app/log; wc -l < /var/cache/app/log > /count'\n")

    def test_the_cache_outlives_the_build_and_stays_out_of_the_layer(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({"Dockerfile": self.DOCKERFILE})
        first = proj.build()
        assert first.result.status == "succeeded", first.finished
        again = proj.build(no_cache=True)
        assert read(proj.store, again, "count").strip() == "2"
        names = layer_names(proj.store, again, "RUN")
        assert names == {"count"}  # no var/cache/app, not even its mount point

    def test_its_contents_are_not_in_the_key_but_its_options_are(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({"Dockerfile": self.DOCKERFILE})
        proj.build()
        proj.build(no_cache=True)  # the cache now holds more
        assert proj.build().step("RUN")["status"] == "cached"
        proj.write({"Dockerfile": self.DOCKERFILE.replace("target=/var/cache/app",
                                                          "target=/var/cache/app,id=other")})
        changed = proj.build()
        assert changed.step("RUN")["status"] == "built"
        assert "mount" in changed.step("RUN")["reason"]["message"]
        # Another id is another cache: it starts empty.
        assert read(proj.store, changed, "count").strip() == "1"

    def test_uid_gid_and_mode_make_the_cache_directory(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\n"
                                      "RUN --mount=type=cache,target=/c,uid=1000,gid=1001,mode=0750 "
                                      "stat -c '%u %g %a' /c > /owner\n"})
        built = proj.build()
        assert read(proj.store, built, "owner").strip() == "1000 1001 750"


    def test_a_cache_from_a_stage_starts_with_its_files(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": f"FROM {BASE} AS seed\nRUN mkdir /data && echo warm > /data/hit\n"
                                      f"FROM {BASE}\nRUN --mount=type=cache,target=/c,from=seed,source=/data "
                                      "cat /c/hit > /out\n"})
        built = proj.build()
        assert built.result.status == "succeeded", built.finished
        assert read(proj.store, built, "out") == "warm\n"


class TestBindMounts:
    def test_a_context_directory_is_bound_read_only_and_keyed_by_its_content(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({
            "Dockerfile": f"FROM {BASE}\nRUN --mount=source=config,target=/cfg cat /cfg/a > /out\n",
            "config/a": "one\n", "other.txt": "x\n",
        })
        built = proj.build()
        assert read(proj.store, built, "out") == "one\n"
        assert layer_names(proj.store, built, "RUN") == {"out"}
        proj.write({"other.txt": "y\n"})
        assert proj.build().step("RUN")["status"] == "cached"
        proj.write({"config/a": "two\n"})
        rebuilt = proj.build()
        assert rebuilt.step("RUN")["status"] == "built"
        assert rebuilt.step("RUN")["reason"]["code"] == "mount_files_changed"
        assert "/cfg" in rebuilt.step("RUN")["reason"]["message"]
        assert read(proj.store, rebuilt, "out") == "two\n"

    def test_writing_to_a_read_only_bind_fails_and_rw_writes_are_thrown_away(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nRUN --mount=target=/src echo no > /src/a\n", "a": "a\n"})
        failed = proj.build()
        assert failed.result.status == "failed"
        proj.write({"Dockerfile": f"FROM {BASE}\n"
                                  "RUN --mount=target=/src,rw echo yes > /src/a && cat /src/a > /seen\n"})
        built = proj.build()
        assert read(proj.store, built, "seen") == "yes\n"
        assert (proj.root / "a").read_text() == "a\n"
        assert layer_names(proj.store, built, "RUN") == {"seen"}
        again = proj.build(no_cache=True)
        assert again.result.status == "succeeded"
        assert (proj.root / "a").read_text() == "a\n"

    def test_a_file_from_an_earlier_stage_is_bound_and_the_stage_is_built_first(
        self, project: Callable[..., Project]
    ) -> None:
        proj = project({"Dockerfile": f"FROM {BASE} AS tools\nRUN echo made > /tool\nFROM {BASE}\n"
                                      "RUN --mount=from=tools,source=/tool,target=/opt/t cat /opt/t >/out\n"})
        built = proj.build()
        assert built.result.status == "succeeded", built.finished
        assert read(proj.store, built, "out") == "made\n"
        assert layer_names(proj.store, built, "RUN --mount") == {"out"}

    def test_a_tmpfs_is_empty_and_leaves_nothing(self, project: Callable[..., Project]) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\nRUN --mount=type=tmpfs,target=/tmp/t,size=1m "
                                      "sh -c 'echo x > /tmp/t/x && df -k /tmp/t | tail -1 > /df'\n"})
        built = proj.build()
        assert built.result.status == "succeeded", built.finished
        assert read(proj.store, built, "df").split()[1] == "1024"
        assert layer_names(proj.store, built, "RUN") == {"df"}


class TestRefused:
    @pytest.mark.parametrize("mount", ["type=secret,id=token,required", "type=ssh,required=true"])
    def test_a_required_secret_or_ssh_agent_is_refused(
        self, project: Callable[..., Project], mount: str
    ) -> None:
        proj = project({"Dockerfile": f"FROM {BASE}\n\nRUN --mount={mount} true\n"})
        built = proj.build()
        error = built.finished["error"]
        assert built.result.exit_code == 2
        assert error["line"] == 3
        assert "is required, but this builder has no secrets or SSH agent" in error["message"]

    def test_a_secret_not_given_mounts_nothing_and_keys_the_run_by_its_id(
        self, project: Callable[..., Project]
    ) -> None:
        """As BuildKit does when the client gives no such secret and it is not required."""
        run = "RUN --mount=type=secret,id={} sh -c 'cat /run/secrets/{} > /seen 2>&1 || echo none > /seen'\n"
        proj = project({"Dockerfile": f"FROM {BASE}\n" + run.format("tok", "tok")})
        built = proj.build()
        assert built.result.status == "succeeded", built.finished
        assert read(proj.store, built, "seen") == "none\n"
        assert [s["cached"] for s in proj.build().steps if s["instruction"].startswith("RUN")] == [True]
        proj.write({"Dockerfile": f"FROM {BASE}\n" + run.format("key", "key")})
        assert [s["cached"] for s in proj.build().steps if s["instruction"].startswith("RUN")] == [False]

    @pytest.mark.parametrize(("text", "message"), [
        ("type=volume,target=/x", 'unsupported mount type "volume"'),
        ("type=bind,target=/x,mode=0755", 'mode not allowed for "bind" type mounts'),
        ("type=cache,target=/x,sharing=sometimes", 'unsupported sharing value "sometimes"'),
        ("type=cache,target=/x,colour=red", "unexpected key 'colour' in 'colour=red'"),
        ("type=cache,target=/", 'invalid mount target "/"'),
        ("type=cache,target=/x,uid=me", "invalid value me for uid"),
    ])
    def test_bad_options_are_named(self, text: str, message: str) -> None:
        with pytest.raises(MountError) as caught:
            parse(text, workdir="/", expand=lambda word: word)
        assert message in str(caught.value)

    def test_a_relative_target_is_under_the_workdir_and_the_id_defaults_to_it(self) -> None:
        spec = parse("type=cache,target=cache", workdir="/app", expand=lambda word: word)
        assert (spec.target, spec.id, spec.readonly) == ("/app/cache", "/app/cache", False)
        assert spec.sharing == "shared"
        assert parse("target=/src", workdir="/", expand=lambda word: word).readonly is True


class TestForetold:
    def test_a_mount_from_a_stage_that_will_be_rebuilt_is_an_uncertain_rebuild(
        self, project: Callable[..., Project]
    ) -> None:
        dockerfile = (f"FROM {BASE} AS tools\nRUN echo made > /tool && echo {{}} > /noise\n"
                      f"FROM {BASE}\nRUN --mount=from=tools,source=/tool,target=/t cat /t > /out\n")
        proj = project({"Dockerfile": dockerfile.format("a")})
        foretell(proj)
        proj.write({"Dockerfile": dockerfile.format("b")})
        predicted, built = foretell(proj)
        run = next(r for r in predicted.steps if r["instruction"].startswith("RUN --mount"))
        assert run["prediction"] == "built" and run["certain"] is False
        assert run["reason"]["code"] == "source_rebuilt"
        assert "mounts files from stage tools" in run["reason"]["message"]
        # /tool came out the same: only the build could know the RUN stays cached.
        assert built.step("RUN --mount")["status"] == "cached"


class TestCacheSharing:
    def spec(self, sharing: str) -> MountSpec:
        return parse(f"type=cache,target=/c,sharing={sharing}", workdir="/", expand=lambda word: word)

    def test_a_private_cache_in_use_gives_the_next_step_a_directory_of_its_own(self, store: Store) -> None:
        with ExitStack() as stack:
            first = stack.enter_context(cache_dir(store, self.spec("private"), lambda spec: []))
            second = stack.enter_context(cache_dir(store, self.spec("private"), lambda spec: []))
            assert first != second and first.is_dir() and second.is_dir()
        with cache_dir(store, self.spec("private"), lambda spec: []) as again:
            assert again == first  # free again: the first directory is reused

    def test_a_locked_cache_waits_for_the_step_using_it(self, store: Store) -> None:
        order: list[str] = []
        holding = threading.Event()

        def other() -> None:
            holding.wait(5)
            with cache_dir(store, self.spec("locked"), lambda spec: []):
                order.append("second")

        thread = threading.Thread(target=other)
        thread.start()
        with cache_dir(store, self.spec("locked"), lambda spec: []) as path:
            holding.set()
            time.sleep(0.3)
            order.append("first")
            assert path.is_dir()
        thread.join(5)
        assert order == ["first", "second"]

    def test_a_shared_cache_is_one_directory_for_everyone(self, store: Store) -> None:
        with cache_dir(store, self.spec("shared"), lambda spec: []) as one, \
                cache_dir(store, self.spec("shared"), lambda spec: []) as two:
            assert one == two
