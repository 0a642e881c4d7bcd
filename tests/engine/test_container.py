"""Containers for real: an image run in the RUN steps' sandbox, its writable layer read as a diff,
committed as one more layer, removed; and `manage.py run` as a user types it."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from builds.engine import container
from builds.engine.sandbox import Limits
from builds.engine.store import Image, Store

from .conftest import BASE, Project

PROJECT = Path(__file__).resolve().parents[2]
LIMITS = Limits(timeout_s=20, memory_bytes=256 << 20, pids=64, output_bytes=1 << 20, disk_bytes=16 << 20)
WRITES = "echo hi > /new; echo x >> /etc/passwd; rm /bin/ls; echo done"


@pytest.fixture
def app(project: Callable[[dict[str, str]], Project]) -> Image:
    """An image with a config a container must honour: ENV, WORKDIR, USER, ENTRYPOINT, CMD."""
    proj = project({"Dockerfile": (
        f"FROM {BASE}\n"
        "RUN echo studio > /etc/hostname && mkdir -p /srv/app && chown 1000:1000 /srv/app\n"
        "ENV GREETING=hello\nWORKDIR /srv/app\nUSER 1000\n"
        'ENTRYPOINT ["/bin/sh", "-c"]\nCMD ["echo $GREETING from $(pwd) as $(id -u)"]\n'
    )})
    built = proj.build(tag="app:1")
    assert built.result.exit_code == 0, built.events[-1]
    image = proj.store.get_image("app:1")
    assert image is not None
    return image


def diff_ids(store: Store, image: Image) -> list[str]:
    """Each layer's diff_id, recomputed from the bytes on disk (write_tar checks them too)."""
    return [store.write_layer_tar(layer, io.BytesIO()) for layer in image.layers]


def run(store: Store, image: Image, cmd: list[str] | None = None, **options: object
        ) -> tuple[container.Ran, str]:
    printed: list[str] = []
    options.setdefault("limits", LIMITS)
    ran = container.run(store, image, cmd, on_output=lambda stream, text: printed.append(text),
                        **options)  # type: ignore[arg-type]
    return ran, "".join(printed)


def changes(diff: container.Diff) -> set[tuple[str, str]]:
    return {(c.change, c.path) for c in diff.changes}


def test_a_container_runs_with_the_images_env_workdir_user_and_cmd(store: Store, app: Image) -> None:
    ran, printed = run(store, app)
    assert ran.exit_code == 0, ran.result
    assert printed == "hello from /srv/app as 1000\n"


def test_a_command_given_replaces_the_cmd_and_keeps_the_entrypoint(store: Store, app: Image) -> None:
    ran, printed = run(store, app, ["echo other; exit 7"])
    assert (ran.exit_code, printed) == (7, "other\n")


def test_the_writable_layer_holds_exactly_what_the_container_wrote_changed_and_deleted(store: Store) -> None:
    base = store.get_image(BASE)
    assert base is not None
    before = diff_ids(store, base)
    ran, printed = run(store, base, ["/bin/sh", "-c", WRITES])
    assert (ran.exit_code, printed) == (0, "done\n")
    assert changes(ran.diff) == {("added", "new"), ("modified", "etc/passwd"), ("deleted", "bin/ls")}
    sizes = {c.path: c.size for c in ran.diff.changes}
    assert sizes["new"] == 3
    assert (ran.diff.added, ran.diff.modified, ran.diff.deleted, ran.diff.truncated) == (1, 1, 1, False)
    # The image is what it was: its layers' bytes hash to the same diff_ids, and a new
    # container on it still has /bin/ls and no /new.
    assert diff_ids(store, base) == before == [store.layer(layer).diff_id for layer in base.layers]
    again, out = run(store, base, ["/bin/sh", "-c", "ls /bin/ls; test -e /new || echo clean"])
    assert out == "/bin/ls\nclean\n"
    assert changes(again.diff) == set()


def test_removing_the_container_discards_its_layer(store: Store) -> None:
    base = store.get_image(BASE)
    assert base is not None
    ran, _ = run(store, base, ["/bin/sh", "-c", WRITES])
    assert container.exists(store, ran.container_id)
    assert container.remove(store, ran.container_id)
    assert not container.exists(store, ran.container_id)
    with pytest.raises(container.ContainerError, match="no writable layer"):
        container.diff(store, base, ran.container_id)
    assert not container.remove(store, ran.container_id)


def test_commit_makes_an_image_whose_top_layer_is_exactly_the_diff(store: Store) -> None:
    base = store.get_image(BASE)
    assert base is not None
    before = diff_ids(store, base)
    ran, _ = run(store, base, ["/bin/sh", "-c", WRITES])
    new = container.commit(store, base, ran.container_id, created_by="test", tag="committed:1")
    assert new.layers[:-1] == base.layers and len(new.layers) == len(base.layers) + 1
    top = store.layer(new.layers[-1], changes=True)
    assert {(c.change, c.path) for c in top.changes} == changes(ran.diff)
    assert new.config["rootfs"]["diff_ids"] == [*before, top.diff_id]
    assert store.get_image("committed:1") is not None and store.get_image("committed:1").digest == new.digest
    assert diff_ids(store, base) == before
    # The committed image runs with the container's changes in it.
    _, out = run(store, new, ["/bin/sh", "-c", "cat /new; test -e /bin/ls || echo gone"])
    assert out == "hi\ngone\n"
    assert not container.exists(store, ran.container_id)


def test_a_hundred_thousand_files_are_counted_but_not_all_listed(store: Store) -> None:
    base = store.get_image(BASE)
    assert base is not None
    ran, _ = run(store, base, ["/bin/sh", "-c", "mkdir /many && cd /many && seq 100000 | xargs touch"])
    assert ran.exit_code == 0, ran.result
    found = ran.diff
    assert (found.total, found.added, found.truncated) == (100_001, 100_001, True)
    assert len(found.changes) == container.MAX_LISTED
    assert len(json.dumps(found.to_json())) < 100_000  # what a page is sent stays small


def test_a_container_filling_the_disk_is_stopped_at_its_limit(store: Store) -> None:
    base = store.get_image(BASE)
    assert base is not None
    ran, _ = run(store, base, ["/bin/sh", "-c", "dd if=/dev/zero of=/big bs=1M count=200"],
                 limits=Limits(timeout_s=20, disk_bytes=4 << 20))
    assert (ran.exit_code, ran.result.limit) == (container.KILLED_EXIT, "disk")
    assert "disk limit" in ran.result.message and ran.result.message.startswith("the container ")


def test_a_container_past_its_time_limit_is_stopped(store: Store) -> None:
    base = store.get_image(BASE)
    assert base is not None
    ran, _ = run(store, base, ["sleep", "30"], limits=Limits(timeout_s=1))
    assert (ran.exit_code, ran.result.limit) == (container.KILLED_EXIT, "timeout")
    assert ran.result.duration_ms < 10_000


def test_a_file_name_with_a_newline_is_listed_as_it_is(store: Store) -> None:
    base = store.get_image(BASE)
    assert base is not None
    ran, _ = run(store, base, ["/bin/sh", "-c", "touch \"/a\nb<img src=x>\""])
    assert changes(ran.diff) == {("added", "a\nb<img src=x>")}


def test_an_image_without_a_command_needs_one(store: Store) -> None:
    base = store.get_image(BASE)
    assert base is not None
    with pytest.raises(container.ContainerError, match="no CMD or ENTRYPOINT"):
        container.run(store, base)


def with_config(store: Store, tag: str, **section: object) -> Image:
    """The base image with its config's `config` section changed (Env, WorkingDir, Cmd...), as an
    image imported from anywhere may have it."""
    base = store.get_image(BASE)
    assert base is not None
    config = copy.deepcopy(base.config)
    config.setdefault("config", {}).update({"Cmd": ["env"], **section})
    image = Image(config=config, layers=list(base.layers))
    store.put_image(image)
    store.tag(tag, image.digest)
    return image


@pytest.mark.parametrize(("section", "message"), [
    ({"Env": ["PATH=/bin", "BAD=a\x00b"]}, 'the image\'s Env variable "BAD" holds a NUL character'),
    ({"Env": ["B\x00AD=1"]}, 'the image\'s Env variable "B\\u0000AD" holds a NUL character'),
    ({"Env": ["PATH=/bin", "=x"]}, 'the image\'s Env has an entry without a name ("=x")'),
    ({"WorkingDir": "/a\x00b"}, "the image's WorkingDir holds a NUL character"),
    ({"Entrypoint": ["/bin/e\x00cho"]}, "the container's command holds a NUL character"),
])
def test_an_image_no_process_can_be_given_is_refused_before_a_container_is_made(
        store: Store, section: dict[str, object], message: str) -> None:
    image = with_config(store, "odd:1", **section)
    with pytest.raises(container.ContainerError) as refused:
        container.run(store, image)
    assert message in refused.value.describe()
    assert not (store.root / "containers").exists() or not list((store.root / "containers").iterdir())


# -- manage.py run ----------------------------------------------------------------------------


def manage(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STUDIO_DATA_DIR=str(data))
    return subprocess.run([sys.executable, str(PROJECT / "manage.py"), *args], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_manage_run_exits_with_the_containers_code_and_shows_its_layer(store: Store) -> None:
    done = manage("run", BASE, "sh", "-c", WRITES + "; exit 3", data=store.root)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "done\n"  # the container's own output only
    assert "writable layer: 1 added, 1 changed, 1 deleted" in done.stderr
    for line in ("  A /new  3 bytes", "  C /etc/passwd", "  D /bin/ls"):
        assert line in done.stderr
    assert not list((store.root / "containers").iterdir())  # removed with the command


def test_manage_run_commit_tags_a_new_image(store: Store) -> None:
    done = manage("run", "--commit", "mine:2", "--json", BASE, "sh", "-c", WRITES, data=store.root)
    assert done.returncode == 0, done.stderr
    diff = json.loads(done.stderr.splitlines()[0])
    assert {(c["change"], c["path"]) for c in diff["changes"]} == {
        ("added", "new"), ("modified", "etc/passwd"), ("deleted", "bin/ls")}
    new = store.get_image("mine:2")
    assert new is not None and len(new.layers) == 2
    listed = manage("images", "ls", data=store.root)
    assert "mine:2" in listed.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("run", "nope:1", "true"), "no image 'nope:1'"),
    (("run", BASE), "no CMD or ENTRYPOINT"),
    (("run", "--commit", "Bad Name", BASE, "true"), "invalid image reference"),
    (("run", "--timeout", "zero", BASE, "true"), "--timeout='zero' is not a whole number"),
    (("run",), "the following arguments are required: image"),
])
def test_manage_run_refuses_bad_input_with_exit_2(store: Store, args: tuple[str, ...], message: str) -> None:
    done = manage(*args, data=store.root)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (store.root / "containers").exists() or not list((store.root / "containers").iterdir())


def test_manage_run_refuses_an_image_whose_env_holds_a_nul_naming_the_variable(store: Store) -> None:
    with_config(store, "nul-env:1", Env=["PATH=/bin", "GREETING=hi\x00there"])
    done = manage("run", "nul-env:1", data=store.root)
    assert done.returncode == 2, done.stderr
    assert done.stderr == ('error: the image\'s Env variable "GREETING" holds a NUL character, '
                           "which no process's environment can carry\n")
    assert done.stdout == ""
    assert not (store.root / "containers").exists() or not list((store.root / "containers").iterdir())


def test_manage_run_stopped_at_its_time_limit_exits_137(store: Store) -> None:
    done = manage("run", "--timeout", "1", BASE, "sleep", "30", data=store.root)
    assert done.returncode == 137
    assert "the container ran longer than its time limit of 1 second" in done.stderr
