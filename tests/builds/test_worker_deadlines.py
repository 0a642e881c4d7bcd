"""A worker that cannot hang: a parse that never answers and a build that outlasts its time are
stopped from outside, the build fails at once saying why, and the same worker builds the next one.
Real Redis, a real Celery worker (prefork, as `make run` has it), the real engine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dockerfile
import pytest

from tests.builds.test_builds_live import project, start, wait_for_status
from tests.conftest import Browser, Worker

pytestmark = pytest.mark.usefixtures("base_image")

HANG = "hang-the-parser-here"
GO_PARSER = Path(dockerfile.__file__).name  # the package's Go library: dockerfile.abi3.so


@pytest.fixture
def strict_worker(
    worker_process: Worker, studio_env: dict[str, str], tmp_path: Path
) -> Iterator[Worker]:
    """The only worker on the queue while the test runs: parses over 2 s and builds over 8 s are
    stopped, and a Dockerfile holding HANG makes its parse process hang for good."""
    worker_process.stop()
    env = {**studio_env, "STUDIO_PARSE_TIMEOUT_S": "2", "STUDIO_BUILD_TIME_LIMIT_S": "8",
           "STUDIO_FAULT_PARSE_HANG": HANG}
    worker = Worker(env, tmp_path)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def _maps_of_tree(root: int) -> dict[int, str]:
    """/proc/PID/maps of the worker's parent and every process below it, by pid."""
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            found[pid] = Path(f"/proc/{pid}/maps").read_text()
            # Each thread's children (the parse process is started by a thread of its own).
            children = [c for task in Path(f"/proc/{pid}/task").iterdir()
                        for c in (task / "children").read_text().split()]
        except OSError:
            continue
        todo += [int(child) for child in children]
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _outcome(browser: Browser, dockerfile: str, timeout: float) -> tuple[dict[str, Any], float]:
    """Build a new project of this Dockerfile; its build once ended, and how long that took."""
    build = start(browser, project(browser, dockerfile), no_cache=True)
    started = time.monotonic()
    done = wait_for_status(browser, build["id"], {"failed", "succeeded"}, timeout)
    return done, time.monotonic() - started


@pytest.mark.parametrize(
    ("dockerfile", "message", "within_s"),
    [
        # The parse process never answers: killed past STUDIO_PARSE_TIMEOUT_S (2 s).
        (f"FROM studio/busybox:1.35\n# {HANG}\nRUN echo never\n",
         "parsing the Dockerfile took longer than 2 s", 15),
        # The build outlasts STUDIO_BUILD_TIME_LIMIT_S (8 s): failed by the pool when it stops the
        # process, not later by the stale-heartbeat reaper.
        ("FROM studio/busybox:1.35\nRUN sleep 60\n", "STUDIO_BUILD_TIME_LIMIT_S", 20),
    ],
    ids=["a-parse-that-hangs", "a-build-past-its-time"],
)
def test_a_stuck_build_fails_at_once_and_the_same_worker_builds_the_next(
    browser: Browser, strict_worker: Worker, dockerfile: str, message: str, within_s: float
) -> None:
    browser.sign_up(f"alice-stuck-{time.monotonic_ns()}")
    done, took = _outcome(browser, dockerfile, 40)
    assert done["status"] == "failed", done
    assert message in done["error"]["message"]
    assert took < within_s

    after, _ = _outcome(browser, "FROM studio/busybox:1.35\nRUN echo back\n", 30)
    assert after["status"] == "succeeded", after


def test_no_worker_process_that_forks_ever_loads_the_go_parser(
    browser: Browser, strict_worker: Worker
) -> None:
    browser.sign_up("alice-no-go")
    built = start(browser, project(browser, "FROM studio/busybox:1.35\nRUN echo parsed\n"))
    assert wait_for_status(browser, built["id"], {"succeeded", "failed"}, 30)["status"] == "succeeded"
    assert strict_worker.service is not None
    maps = _maps_of_tree(strict_worker.service.process.pid)
    parsers = {pid for pid in maps if "parse_server.py" in _cmdline(pid)}
    assert parsers, "the build parsed its Dockerfile in no parse process"
    loaded = [pid for pid, text in maps.items() if pid not in parsers and GO_PARSER in text]
    assert not loaded, [(pid, _cmdline(pid)) for pid in loaded]
