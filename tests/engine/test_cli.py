"""The engine's command line, as a user runs it: `manage.py build` and `manage.py images`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

PROJECT = Path(__file__).resolve().parents[2]


def manage(*args: str, data: Path, cwd: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STUDIO_DATA_DIR=str(data))
    return subprocess.run(
        [sys.executable, str(PROJECT / "manage.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def data(tmp_path: Path, busybox_tar: Path) -> Path:
    store = tmp_path / "store"
    done = manage("images", "import", str(busybox_tar), "studio/busybox:1.35", data=store)
    assert done.returncode == 0, done.stderr
    return store


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM studio/busybox:1.35\nCOPY app.txt /app.txt\nRUN cat /app.txt\n")
    (ctx / "app.txt").write_text("one\n")
    return ctx


def test_images_ls_lists_the_imported_image(data: Path) -> None:
    listed = manage("images", "ls", data=data)
    assert listed.returncode == 0
    assert "studio/busybox:1.35" in listed.stdout


def test_json_progress_prints_only_events_in_order(data: Path, context: Path) -> None:
    done = manage("build", str(context), "--progress", "json", "-t", "app:1", data=data)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "build.started" and events[-1]["type"] == "build.finished"
    assert [s["instruction"] for s in events[0]["steps"]][1:] == ["COPY app.txt /app.txt", "RUN cat /app.txt"]
    logs = [e["text"] for e in events if e["type"] == "step.log"]
    assert "one" in "".join(logs)


def test_plain_progress_marks_cached_steps_and_says_why_others_were_rebuilt(
    data: Path, context: Path
) -> None:
    manage("build", str(context), data=data)
    (context / "app.txt").write_text("two\n")
    done = manage("build", str(context), "--progress", "plain", data=data)
    assert done.returncode == 0, done.stderr
    assert "why: Rebuilt because files it copies from the build context changed: app.txt" in done.stdout
    again = manage("build", str(context), data=data)
    assert again.stdout.count("CACHED") == 2


def test_a_broken_dockerfile_exits_2_naming_the_line(data: Path, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM studio/busybox:1.35\nCOPY\n")
    done = manage("build", str(context), data=data)
    assert done.returncode == 2
    assert "Dockerfile:2" in done.stderr or "line 2" in done.stdout


def test_a_failing_step_exits_1(data: Path, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM studio/busybox:1.35\nRUN exit 7\n")
    done = manage("build", str(context), "--progress", "json", data=data)
    assert done.returncode == 1
    finished = json.loads(done.stdout.splitlines()[-1])
    assert finished["status"] == "failed" and finished["error"]["exit_code"] == 7


def test_a_dockerfile_given_with_f_and_a_target_stage(data: Path, context: Path) -> None:
    (context / "build.Dockerfile").write_text(
        "FROM studio/busybox:1.35 AS base\nRUN echo base > /b\nFROM base AS final\nRUN exit 1\n"
    )
    done = manage(
        "build",
        str(context),
        "-f",
        str(context / "build.Dockerfile"),
        "--target",
        "base",
        "--progress",
        "json",
        data=data,
    )
    assert done.returncode == 0, done.stderr
    statuses = {
        json.loads(line)["instruction"]: json.loads(line)["status"]
        for line in done.stdout.splitlines()
        if '"step.finished"' in line
    }
    assert statuses["RUN exit 1"] == "skipped"


def test_an_unknown_target_is_invalid_input(data: Path, context: Path) -> None:
    done = manage("build", str(context), "--target", "nope", data=data)
    assert done.returncode == 2
    assert "nope" in (done.stderr + done.stdout)


def test_seed_makes_busybox_once_and_a_build_can_start_from_it(tmp_path: Path, context: Path) -> None:
    store = tmp_path / "seeded"
    first = manage("images", "seed", data=store)
    assert first.returncode == 0 and "imported busybox" in first.stdout
    assert "already" in manage("images", "seed", data=store).stdout
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo seeded > /s\n")
    assert manage("build", str(context), data=store).returncode == 0


def test_export_writes_an_archive_with_the_image_manifest(data: Path, context: Path, tmp_path: Path) -> None:
    import tarfile

    assert manage("build", str(context), "-t", "app:1", data=data).returncode == 0
    out = tmp_path / "app.tar"
    done = manage("images", "export", "app:1", str(out), data=data)
    assert done.returncode == 0, done.stderr
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["app:1"] and len(manifest[0]["Layers"]) == 2
    missing = manage("images", "export", "nope:1", str(out), data=data)
    assert missing.returncode == 2 and "nope:1" in missing.stderr


def test_the_trash_a_build_leaves_is_emptied_after_the_command_returns(data: Path, context: Path) -> None:
    assert manage("build", str(context), data=data).returncode == 0
    # Built again from scratch, every layer is one the store has: the new copies are set
    # aside in the trash, for a background tidy to delete once the command is done.
    assert manage("build", str(context), "--no-cache", data=data).returncode == 0
    trash = data / "tmp" / "trash"
    deadline = time.monotonic() + 20
    while list(trash.iterdir()):
        assert time.monotonic() < deadline, f"still in the trash: {sorted(p.name for p in trash.iterdir())}"
        time.sleep(0.05)
    assert [p.name for p in (data / "tmp").iterdir()] == ["trash"]


def test_json_events_reach_a_pipe_while_the_build_runs(data: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "slow"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM studio/busybox:1.35\nRUN echo started && sleep 4\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | {"STUDIO_DATA_DIR": str(data)}
    argv = [sys.executable, str(PROJECT / "manage.py"), "build", str(ctx), "--progress", "json"]
    build = subprocess.Popen(argv, cwd=PROJECT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert build.stdout is not None
        seen = []
        while not any(e["type"] == "step.log" for e in seen):
            seen.append(json.loads(build.stdout.readline()))
        heard = time.monotonic()
        assert build.wait(timeout=60) == 0
        # The step's output came while the step still had its sleep ahead of it.
        assert time.monotonic() - heard > 2
    finally:
        build.kill()
        build.wait()


def test_cache_scope_gives_a_build_a_cache_of_its_own(data: Path, context: Path) -> None:
    first = manage("build", str(context), "--progress", "json", data=data)
    assert first.returncode == 0, first.stderr
    scoped = manage("build", str(context), "--progress", "json", "--cache-scope", "ci-runner", data=data)
    events = [json.loads(line) for line in scoped.stdout.splitlines()]
    assert [e["status"] for e in events if e["type"] == "step.finished" and e["keyword"] != "FROM"] == [
        "built", "built"]
    bad = manage("build", str(context), "--cache-scope", " spaced ", data=data)
    assert bad.returncode == 2 and "cache scope" in bad.stderr + bad.stdout


def test_build_finished_keeps_its_wire_form(data: Path, context: Path) -> None:
    """build.finished is made by one typed constructor; the JSON a reader gets is the contract's:
    a success has no `error`, a failure has one, and both carry the counts."""
    done = manage("build", str(context), "--progress", "json", data=data)
    finished = json.loads(done.stdout.splitlines()[-1])
    assert list(finished) == ["type", "seq", "status", "image", "cache", "counts", "duration_ms"]
    assert finished["status"] == "succeeded" and finished["image"]["digest"].startswith("sha256:")
    (context / "Dockerfile").write_text("FROM studio/busybox:1.35\nRUN exit 3\n")
    done = manage("build", str(context), "--progress", "json", data=data)
    failed = json.loads(done.stdout.splitlines()[-1])
    assert list(failed) == ["type", "seq", "status", "image", "cache", "counts", "duration_ms", "error"]
    assert failed["status"] == "failed" and failed["image"] is None and failed["error"]["step"] == 2


def test_a_real_builds_events_hold_to_the_checked_in_schema(data: Path, context: Path) -> None:
    """What the engine emits, not only what was recorded once: a build, a cached rebuild, a
    failing step, a parse error."""
    from builds.engine.events import SCHEMA_FILE

    check = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    dockerfiles = [None, None, "FROM studio/busybox:1.35\nRUN exit 3\n", "FROM studio/busybox:1.35\nNOPE x\n"]
    for text in dockerfiles:
        if text is not None:
            (context / "Dockerfile").write_text(text)
        done = manage("build", str(context), "--progress", "json", data=data)
        for line in done.stdout.splitlines():
            event = json.loads(line)
            assert not [e.message for e in check.iter_errors(event)], event
