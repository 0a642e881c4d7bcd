"""The warm engine: `manage.py build` hands its build to the store's engine process once one runs,
with the same output, exit codes, environment and Ctrl-C as a build in its own process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
WARM = "30"


def start(*args: str, store: Path, idle: str = WARM, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(PROJECT / "manage.py"), *args],
        cwd=PROJECT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(os.environ, STUDIO_DATA_DIR=str(store), STUDIO_ENGINE_IDLE_S=idle, **env),
    )


def run(*args: str, store: Path, idle: str = WARM, **env: str) -> tuple[subprocess.Popen[str], str, str]:
    process = start(*args, store=store, idle=idle, **env)
    out, err = process.communicate(timeout=120)
    return process, out, err


def log(store: Path) -> str:
    path = store / "engine.log"
    return path.read_text() if path.exists() else ""


def served_warm(store: Path, process: subprocess.Popen[str]) -> bool:
    return f"build for pid {process.pid}:" in log(store)


def engine_pid(store: Path) -> int:
    line = next(line for line in log(store).splitlines() if line.endswith(f"serving {store}"))
    return int(line.split("engine ")[1].split(":")[0])


def wait_for(condition, seconds: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def running(text: str) -> bool:
    return text in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.fixture
def store(busybox_tar: Path) -> Iterator[Path]:
    # Not under pytest's tmp_path: another user's test below must be able to reach the socket.
    root = Path(tempfile.mkdtemp(prefix="warm-"))
    root.chmod(0o755)
    store = root / "store"
    done = subprocess.run(
        [sys.executable, str(PROJECT / "manage.py"), "images", "import", str(busybox_tar),
         "studio/busybox:1.35"],
        cwd=PROJECT, env=dict(os.environ, STUDIO_DATA_DIR=str(store)), capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    yield store
    subprocess.run(["rm", "-rf", str(root)], check=False)


def context(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "app.txt").write_text("hello\n")
    return ctx


def warmed(store: Path, ctx: Path) -> None:
    """A first build, in its own process, which starts the engine for the next ones."""
    process, _, err = run("build", str(ctx), store=store)
    assert process.returncode == 0, err
    assert not served_warm(store, process)
    wait_for(lambda: (store / "engine.sock").exists())


def statuses(out: str) -> list[str]:
    events = [json.loads(line) for line in out.splitlines()]
    return [e["status"] for e in events if e["type"] == "step.finished"]


def test_a_cached_rebuild_is_served_warm_with_the_same_events(store: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, "FROM studio/busybox:1.35\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copy\n")
    warmed(store, ctx)
    process, warm_out, err = run("build", str(ctx), "--progress", "json", store=store)
    assert process.returncode == 0, err
    assert served_warm(store, process)
    process, cold_out, err = run("build", str(ctx), "--progress", "json", store=store, idle="0")
    assert process.returncode == 0, err
    assert not served_warm(store, process)
    assert statuses(warm_out) == statuses(cold_out) == ["cached", "cached", "cached"]
    finished = [json.loads(line) for line in warm_out.splitlines()][-1]
    assert finished["type"] == "build.finished" and finished["status"] == "succeeded"


def test_a_build_that_saved_the_hash_cache_has_the_waiting_engine_read_it_again(
    store: Path, tmp_path: Path
) -> None:
    # The RUN gives the spare forked when the first build below starts a second to read the
    # hash cache before that build saves it.
    ctx = context(tmp_path, "FROM studio/busybox:1.35\nCOPY . /app\nRUN sleep 1\n")
    warmed(store, ctx)
    (ctx / "new.txt").write_text("new\n")
    time.sleep(2.1)  # every file older than the racy window: their digests are saved
    said = []
    for expected in (["cached", "built", "built"], ["cached", "cached", "cached"], ["cached"] * 3):
        process, out, err = run("build", str(ctx), "--progress", "json", store=store)
        assert process.returncode == 0, err
        assert served_warm(store, process) and statuses(out) == expected
        said.append([line.split(": ", 1)[1] for line in log(store).splitlines()
                     if "saved the hash cache" in line])
    # Saved as the RUN after the COPY started, and read then by the spare that serves the next
    # build (unless that spare started after the save and read it first); the builds after it
    # hashed nothing new and saved nothing.
    saved = "a build saved the hash cache: "
    assert said[0] in ([saved + "read it again"], [saved + "unchanged"])
    assert said[1] == said[2] == said[0]


def test_the_waiting_engine_has_its_sandbox_started_for_the_next_builds_steps(
    store: Path, tmp_path: Path
) -> None:
    ctx = context(tmp_path, "FROM studio/busybox:1.35\nRUN exec sleep 2.25\n")
    warmed(store, ctx)

    def parents() -> dict[int, int]:
        return dict(_processes())

    def spawners() -> set[int]:
        found = set()
        for pid in parents():
            with contextlib.suppress(OSError):
                if b"studio-sandbox-spawner" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.add(pid)
        return found

    engine = engine_pid(store)
    # The spare is the engine's child; the spawner it started is the spare's.
    wait_for(lambda: any(parents().get(parents().get(pid, 0)) == engine for pid in spawners()))
    ahead = next(pid for pid in spawners() if parents().get(parents().get(pid, 0)) == engine)

    process = start("build", str(ctx), "--no-cache", "--progress", "json", store=store)
    try:
        def step_spawner() -> int | None:
            table, ours = parents(), spawners()
            for pid in table:
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x002.25\x00":
                        # sleep <- bwrap <- the launcher <- its spawner (both the spawner's program)
                        up = table.get(pid, 0)
                        while up and not (up in ours and table.get(up, 0) not in ours):
                            up = table.get(up, 0)
                        return up or None
            return None

        wait_for(lambda: step_spawner() is not None)
        assert step_spawner() == ahead
    finally:
        out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert served_warm(store, process) and statuses(out) == ["cached", "built"]


def test_the_next_build_takes_the_context_read_ahead_and_still_sees_an_edit_that_keeps_every_stat(
    store: Path, tmp_path: Path
) -> None:
    ctx = context(tmp_path, "FROM studio/busybox:1.35\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copy\n")
    warmed(store, ctx)

    def readings() -> int:
        return log(store).count("reading the context ahead")

    outcomes = []
    for edit in (False, False, True):
        before = readings()
        if edit:
            app = ctx / "app.txt"
            st = app.stat()
            app.write_text("HELLO\n")  # the same size, and the same times below
            os.utime(app, ns=(st.st_atime_ns, st.st_mtime_ns))
        process, out, err = run("build", str(ctx), "--progress", "json", store=store)
        assert process.returncode == 0, err
        assert served_warm(store, process)
        outcomes.append(statuses(out))
        wait_for(lambda: readings() > before)  # noqa: B023 (the next spare reads this build's context)
    took = [line.split(": ", 1)[1] for line in log(store).splitlines() if "the context read ahead" in line]
    assert took[-1] == "the context read ahead had changed"
    assert took[0].startswith("took the context read ahead (")
    assert outcomes == [["cached"] * 3, ["cached"] * 3, ["cached", "built", "built"]]


def test_the_engine_empties_the_trash_once_no_build_runs(store: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, "FROM studio/busybox:1.35\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copy\n")
    warmed(store, ctx)
    # Built again from scratch, every layer is one the store has: the new copies go to the trash.
    process, _, err = run("build", str(ctx), "--no-cache", store=store)
    assert process.returncode == 0, err
    assert served_warm(store, process)
    trash = store / "tmp" / "trash"
    wait_for(lambda: trash.is_dir() and not list(trash.iterdir()), seconds=20)
    assert not running("builds.engine.tidy")  # the engine's own child did it


def _processes() -> list[tuple[int, int]]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
                found.append((int(entry.name), int(stat.rsplit(")", 1)[1].split()[1])))
            except (OSError, IndexError, ValueError):
                continue
    return found


def test_importing_a_base_image_starts_the_engine_for_the_first_build(
    store: Path, tmp_path: Path, busybox_tar: Path
) -> None:
    imported, _, err = run("images", "import", str(busybox_tar), "studio/busybox:1.35", store=store)
    assert imported.returncode == 0, err
    wait_for(lambda: (store / "engine.sock").exists())
    again, _, err = run("images", "import", str(busybox_tar), "studio/busybox:1.35", store=store)
    assert again.returncode == 0, err
    ctx = context(tmp_path, "FROM studio/busybox:1.35\nRUN echo first > /first\n")
    process, out, err = run("build", str(ctx), "--progress", "json", store=store)
    assert process.returncode == 0, err
    assert served_warm(store, process)  # the very first build: nothing ran in its own process
    assert statuses(out)[-1] == "built"
    assert log(store).count("serving") == 1  # the second import found the engine running


def test_each_build_gets_its_callers_environment(store: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, "FROM studio/busybox:1.35\nARG GREETING\nRUN echo $GREETING > /greeting\n")
    warmed(store, ctx)
    args = ("build", str(ctx), "--build-arg", "GREETING", "--progress", "json")
    first, out_one, _ = run(*args, store=store, GREETING="one")
    second, out_two, _ = run(*args, store=store, GREETING="two")
    third, out_again, _ = run(*args, store=store, GREETING="two")
    assert all(served_warm(store, p) for p in (first, second, third))
    assert statuses(out_one)[-1] == "built"
    assert statuses(out_two)[-1] == "built"  # GREETING came from this caller, not the engine's first
    assert statuses(out_again)[-1] == "cached"


def test_names_and_values_that_are_not_plain_ascii_reach_the_build_as_they_were(
    store: Path, tmp_path: Path
) -> None:
    """The client writes the request's JSON itself: quotes, backslashes, newlines, non-ASCII text
    and bytes that are not UTF-8 (a lone surrogate in Python) must all arrive unchanged."""
    value = 'a "quoted" \\ back\nslash, café, \u2603'
    ctx = context(tmp_path, "FROM studio/busybox:1.35\nARG GREETING\nRUN printf '%s' \"$GREETING\" > /g\n")
    odd = tmp_path / "ctx-\udcff-dir"
    os.rename(ctx, odd)  # a context directory whose name is not UTF-8
    warmed(store, odd)
    process = subprocess.Popen(
        [sys.executable, str(PROJECT / "manage.py"), "build", str(odd), "--build-arg", "GREETING",
         "--progress", "json", "-t", "odd:1"],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "STUDIO_DATA_DIR": str(store), "STUDIO_ENGINE_IDLE_S": WARM,
             "GREETING": value, "OTHER": "\udcfe"},
    )
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert served_warm(store, process)
    assert statuses(out.decode())[-1] == "built"
    again, out_again, err = run("build", str(odd), "--build-arg", "GREETING", "--progress", "json",
                                store=store, GREETING=value)
    assert again.returncode == 0 and served_warm(store, again), err
    assert statuses(out_again)[-1] == "cached"  # the same value, so the same cache key


def test_the_command_lines_side_loads_only_the_interpreters_own_modules() -> None:
    """What a served build costs the caller is a Python start and this import: nothing that loads
    `re`, `enum`, `json`, `pathlib`, `typing` or `collections` (each some milliseconds)."""
    probe = "import sys, builds.engine.warm.client; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, capture_output=True, text=True,
                          check=True)
    loaded = set(done.stdout.split())
    assert "builds.engine.warm.client" in loaded
    assert not loaded & {"re", "enum", "json", "pathlib", "typing", "collections", "socket", "signal"}


def test_errors_keep_their_message_and_exit_code(store: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, "FROM studio/busybox:1.35\n")
    warmed(store, ctx)
    (ctx / "Dockerfile").write_text("FROM studio/busybox:1.35\nCOPY missing.txt /\n")
    process, out, err = run("build", str(ctx), store=store)
    assert served_warm(store, process)
    cold, cold_out, _ = run("build", str(ctx), store=store, idle="0")
    assert process.returncode == cold.returncode == 2  # input the build refuses
    assert "missing.txt" in out
    assert out.splitlines()[-1].split(",")[0] == cold_out.splitlines()[-1].split(",")[0]
    process, _, err = run("build", "--no-such-flag", str(ctx), store=store)
    assert served_warm(store, process)
    assert process.returncode == 2 and "--no-such-flag" in err


def test_ctrl_c_stops_the_build_and_its_step(store: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, "FROM studio/busybox:1.35\n")
    warmed(store, ctx)
    (ctx / "Dockerfile").write_text("FROM studio/busybox:1.35\nRUN sleep 37\n")
    process = start("build", str(ctx), store=store)
    wait_for(lambda: served_warm(store, process))
    wait_for(lambda: running("sleep 37"))
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=20)
    assert process.returncode == 130
    wait_for(lambda: not running("sleep 37"))


def test_the_engine_ends_with_its_store(store: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, "FROM studio/busybox:1.35\n")
    warmed(store, ctx)
    pid = engine_pid(store)
    assert alive(pid)
    subprocess.run(["rm", "-rf", str(store)], check=True)
    wait_for(lambda: not alive(pid), 10)


def test_the_engine_ends_when_idle(store: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, "FROM studio/busybox:1.35\n")
    process, _, _ = run("build", str(ctx), store=store, idle="1")
    assert process.returncode == 0
    wait_for(lambda: "serving" in log(store))
    pid = engine_pid(store)
    wait_for(lambda: not alive(pid), 10)
    assert not (store / "engine.sock").exists()
    assert "stopping: idle" in log(store)


def test_changed_code_is_never_served_stale(store: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, "FROM studio/busybox:1.35\n")
    warmed(store, ctx)
    pid = engine_pid(store)
    source = PROJECT / "builds" / "engine" / "progress.py"
    before = source.stat()
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    try:
        process, _, err = run("build", str(ctx), store=store)
        assert process.returncode == 0, err
        assert not served_warm(store, process)  # built in its own process, with the new code
        wait_for(lambda: not alive(pid), 10)
        assert "its code changed on disk" in log(store)
    finally:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.parametrize("request_bytes", [
    b"\x00\x00\x00\x05{oops",  # not JSON
    b"\x7f\xff\xff\xff",  # a 2 GiB request announced
    b"\x00\x00\x00\x02[]",  # JSON, but not a request
    b"\x00\x00\x00\x10" + b'{"env": [1, 2]}' + b" ",  # a request of the wrong shape
])
def test_a_malformed_request_is_refused_and_the_engine_serves_on(
    store: Path, tmp_path: Path, request_bytes: bytes
) -> None:
    ctx = context(tmp_path, "FROM studio/busybox:1.35\n")
    warmed(store, ctx)
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(20)
        conn.connect(str(store / "engine.sock"))
        conn.sendall(request_bytes)
        conn.shutdown(socket.SHUT_WR)
        answer = conn.makefile().readline()
    assert "refused" in json.loads(answer)
    process, _, err = run("build", str(ctx), store=store)
    assert process.returncode == 0, err
    assert served_warm(store, process)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_another_user_is_refused(store: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, "FROM studio/busybox:1.35\n")
    warmed(store, ctx)
    store.chmod(0o755)
    (store / "engine.sock").chmod(0o666)  # as a careless operator might
    probe = (
        "import json, socket, struct, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        f"s.connect({str(store / 'engine.sock')!r})\n"
        "body = json.dumps({'argv': ['build', '.'], 'cwd': '/', 'env': {}, 'umask': 18,"
        " 'executable': sys.executable, 'encoding': ['utf-8', 'strict', 'utf-8', 'strict']}).encode()\n"
        "s.sendall(struct.pack('>I', len(body)) + body)\n"
        "print(s.makefile().readline())\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], user=65534, group=65534, capture_output=True,
                          text=True, timeout=30, cwd="/")
    assert json.loads(done.stdout)["refused"].startswith("a caller of another user")
    assert "build for pid" not in log(store).split("refused")[-1]
