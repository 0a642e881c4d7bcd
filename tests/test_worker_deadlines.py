"""A worker that cannot hang: a parse that never answers and a build that outlasts its time are
stopped from outside, the build fails at once saying why, and the same worker builds the next one.
Real Redis, a real Celery worker (prefork, as `make run` has it), the real engine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import dockerfile
import pytest

from .conftest import Browser, Worker
from .test_builds_live import project, start, wait_for_status

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


def test_a_hung_parse_fails_its_build_and_the_same_worker_builds_the_next(
    browser: Browser, strict_worker: Worker
) -> None:
    browser.sign_up("alice-hung-parse")
    hung = start(browser, project(browser, f"FROM studio/busybox:1.35\n# {HANG}\nRUN echo never\n"))
    started = time.monotonic()
    done = wait_for_status(browser, hung["id"], {"failed", "succeeded"}, 30)
    assert done["status"] == "failed", done
    assert "parsing the Dockerfile took longer than 2 s" in done["error"]["message"]
    assert time.monotonic() - started < 15

    after = start(browser, project(browser, "FROM studio/busybox:1.35\nRUN echo back\n"))
    assert wait_for_status(browser, after["id"], {"succeeded", "failed"}, 30)["status"] == "succeeded"


def test_a_build_past_its_time_limit_is_stopped_and_fails_at_once(
    browser: Browser, strict_worker: Worker
) -> None:
    browser.sign_up("alice-time-limit")
    slow = start(browser, project(browser, "FROM studio/busybox:1.35\nRUN sleep 60\n"), no_cache=True)
    started = time.monotonic()
    done = wait_for_status(browser, slow["id"], {"failed", "succeeded"}, 40)
    assert done["status"] == "failed", done
    assert "STUDIO_BUILD_TIME_LIMIT_S" in done["error"]["message"]
    # Failed by the pool when it stopped the process (8 s), not by the stale-heartbeat reaper.
    assert time.monotonic() - started < 20

    after = start(browser, project(browser, "FROM studio/busybox:1.35\nRUN echo back\n"))
    assert wait_for_status(browser, after["id"], {"succeeded", "failed"}, 30)["status"] == "succeeded"


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
