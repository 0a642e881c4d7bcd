"""`make run`'s supervisor: it brings up Redis, a worker and the web server, and Ctrl-C takes all
of them down with nothing left running."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from studio.runner import Service, free_port, stop

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process, or None once it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else (int(fields[1]), fields[19])


def descendants(root: int) -> dict[int, str]:
    """Every live process below `root`, as pid -> start time (which tells a reused pid apart)."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
            started[int(entry.name)] = stat[1]
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = started[pid]
        todo.extend(children.get(pid, []))
    return found


def survivors(processes: dict[int, str]) -> list[int]:
    return [
        pid for pid, started in processes.items() if (stat := _stat(pid)) is not None and stat[1] == started
    ]


def still_running(processes: dict[int, str]) -> list[str]:
    """The command lines of those `processes` still alive."""
    return [
        Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        for pid in survivors(processes)
    ]


def test_the_studio_starts_serves_and_ctrl_c_leaves_no_process_behind(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
    env |= {
        "STUDIO_VAR_DIR": str(tmp_path),
        "PORT": str(port),
        "STUDIO_REDIS_PORT": str(free_port()),
        "WORKER_CONCURRENCY": "1",
    }
    runner = subprocess.Popen(
        [sys.executable, "-m", "studio.runner"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    services: dict[int, str] = {}
    lines: list[str] = []
    announced = threading.Event()

    def read() -> None:  # the runner's output, as its user reads it
        assert runner.stdout is not None
        for line in iter(runner.stdout.readline, b""):
            lines.append(line.decode())
            if f"running at http://127.0.0.1:{port}/" in lines[-1]:
                announced.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # What the user waits for; Ctrl-C before it would find the studio still starting.
        assert announced.wait(60), "".join(lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
            assert reply.status == 200
            assert b"Dockerfile Studio" in reply.read()
        services = descendants(runner.pid)
        running = " | ".join(still_running(services))
        for service in ("redis-server", "celery -A studio worker", "uvicorn studio.asgi"):
            assert service in running

        os.killpg(runner.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        runner.wait(timeout=60)
        reader.join(timeout=10)
        output = "".join(lines)
    finally:
        stop([Service("studio.runner", runner)])
        for pid in survivors(services):  # a failed run must not leak processes either
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    assert runner.returncode == 0, output
    assert f"running at http://127.0.0.1:{port}/" in output
    assert still_running(services) == []


class Studio:
    """`make run` in a temporary directory, read as its user reads its output."""

    def __init__(self, tmp_path: Path, **extra: str) -> None:
        self.port = free_port()
        env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
        env |= {
            "STUDIO_VAR_DIR": str(tmp_path),
            "PORT": str(self.port),
            "STUDIO_REDIS_PORT": str(free_port()),
            "WORKER_CONCURRENCY": "1",
            **extra,
        }
        self.env = env
        # What `make run` does before it starts the runner.
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=PROJECT_DIR, env=env, check=True, capture_output=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "studio.runner"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in iter(self.process.stdout.readline, b""):
            self.lines.append(line.decode(errors="replace"))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert time.monotonic() < deadline, f"never said {text!r}:\n{self.output}"
            assert self.process.poll() is None, f"stopped before saying {text!r}:\n{self.output}"
            time.sleep(0.1)

    def pid_of(self, command: str) -> int:
        """The process whose command line holds `command`, nearest the runner."""
        for pid in sorted(descendants(self.process.pid)):
            with contextlib.suppress(OSError):
                if command in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                    return pid
        raise AssertionError(f"no {command} below the runner")

    def stop(self) -> None:
        processes = descendants(self.process.pid)
        stop([Service("studio.runner", self.process)])
        for pid in survivors(processes):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _health(browser: Any) -> dict[str, Any]:
    reply = browser.get("/healthz")
    body: dict[str, Any] = reply.json()
    return body


def _wait_healthy(browser: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            body = _health(browser)
            if body["status"] == "ok" or (body["failing"] == ["sandbox"]):
                return body
        assert time.monotonic() < deadline, f"the studio did not recover: {body}"
        time.sleep(0.25)


class Page:
    """A build's page as the studio's script keeps it: one socket at a time, reconnected after
    the last event applied (`?after=`) whenever it closes or cannot open."""

    def __init__(self, browser: Any, build_id: int) -> None:
        self.browser = browser
        self.build_id = build_id
        self.events: list[dict[str, Any]] = []
        self.reconnects = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            after = self.events[-1]["seq"] if self.events else 0
            try:
                with self.browser.websocket(f"/ws/builds/{self.build_id}/?after={after}") as ws:
                    while True:
                        event = json.loads(ws.recv(timeout=60))
                        self.events.append(event)
                        if event["type"] == "build.finished":
                            self.done.set()
                            return
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                self.reconnects += 1
                time.sleep(0.5)

    def wait(self, timeout: float) -> dict[str, Any]:
        assert self.done.wait(timeout), f"the build never finished on the page: {self.events[-3:]}"
        return self.events[-1]

    def wait_for(self, accept: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(accept(e) for e in list(self.events)):
            assert time.monotonic() < deadline, f"never saw it: {self.events[-3:]}"
            time.sleep(0.05)


def _seed_busybox(store_dir: Path, work: Path) -> None:
    from builds.engine import image as images
    from builds.engine.seed import busybox_rootfs
    from builds.engine.store import Store

    tar = busybox_rootfs(work / "busybox.tar")
    images.import_any(Store(str(store_dir)), tar, "studio/busybox:1.35")


SLOW = """\
FROM studio/busybox:1.35
RUN for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do echo tick $i; sleep 0.5; done
RUN echo last
"""


def test_killed_redis_worker_and_web_server_come_back_and_the_builds_page_keeps_every_event(
    tmp_path: Path,
) -> None:
    from tests.builds.test_builds_live import project, start, stored_events

    from .conftest import Browser

    _seed_busybox(tmp_path / "var" / "store", tmp_path)
    # A stale heartbeat would be noticed only after a minute: any faster, the supervisor did it.
    studio = Studio(tmp_path / "var", STUDIO_BUILD_STALE_AFTER_S="60", STUDIO_BUILD_HEARTBEAT_S="1")
    try:
        studio.wait_for("Dockerfile Studio is running", 90)
        browser = Browser(studio.url)
        browser.sign_up("supervised")
        project_id = project(browser, SLOW)
        _wait_healthy(browser, 30)

        # Redis dies in the middle of a build.
        build = start(browser, project_id, no_cache=True)
        page = Page(browser, build["id"])
        page.wait_for(lambda e: e["type"] == "step.log", 60)
        os.kill(studio.pid_of("redis-server"), signal.SIGKILL)
        studio.wait_for("redis-server was killed by SIGKILL; starting it again", 5)
        last = page.wait(60)
        assert last["status"] == "succeeded", last
        seqs = [e["seq"] for e in page.events]
        assert seqs == list(range(1, len(seqs) + 1))
        assert page.events == stored_events(browser, build["id"])
        health = _wait_healthy(browser, 30)
        assert "redis-server running (restarted once; last it was killed by SIGKILL" in (
            health["checks"]["services"]["detail"]
        ), health

        # The worker dies in the middle of a build: the build fails at once, saying why.
        build = start(browser, project_id, no_cache=True)
        page = Page(browser, build["id"])
        page.wait_for(lambda e: e["type"] == "step.log", 60)
        os.kill(studio.pid_of("celery -A studio worker"), signal.SIGKILL)
        killed = time.monotonic()
        last = page.wait(15)
        # Sooner than a worker started again could say (its start alone takes seconds).
        took = time.monotonic() - killed
        print(f"failed {took:.2f} s after the worker was killed")
        assert took < 1.5
        assert last["status"] == "failed"
        assert "the worker running this build stopped (it was killed by SIGKILL)" in last["error"]["message"]
        assert "celery worker was killed by SIGKILL; starting it again" in studio.output
        seqs = [e["seq"] for e in page.events]
        assert seqs == list(range(1, len(seqs) + 1))
        assert page.events == stored_events(browser, build["id"])

        # The web server dies: it answers again within seconds.
        os.kill(studio.pid_of("uvicorn studio.asgi"), signal.SIGKILL)
        studio.wait_for("uvicorn was killed by SIGKILL; starting it again", 5)
        health = _wait_healthy(browser, 30)
        detail = health["checks"]["services"]["detail"]
        assert "celery worker running (restarted once" in detail
        assert "uvicorn running (restarted once" in detail

        # And the studio builds as before.
        build = start(browser, project(browser, "FROM studio/busybox:1.35\nRUN echo back\n"))
        assert Page(browser, build["id"]).wait(60)["status"] == "succeeded"
        assert studio.process.poll() is None
    finally:
        studio.stop()


def test_a_part_that_keeps_dying_at_once_stops_the_studio_with_a_message(tmp_path: Path) -> None:
    studio = Studio(tmp_path / "var")
    try:
        studio.wait_for("Dockerfile Studio is running", 90)
        # Someone else takes the web server's port the moment it is free: every start fails.
        os.kill(studio.pid_of("uvicorn studio.asgi"), signal.SIGKILL)
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            deadline = time.monotonic() + 10
            while True:
                try:
                    squatter.bind(("127.0.0.1", studio.port))
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the port was never free"
                    time.sleep(0.01)
            squatter.listen()
            studio.process.wait(timeout=60)
    finally:
        studio.stop()
    assert studio.process.returncode == 1
    stopped = r"Dockerfile Studio stops: uvicorn exited with code \d+, the 5th time in a row"
    assert re.search(stopped, studio.output)
    assert len(re.findall(r"uvicorn exited with code \d+; starting it again", studio.output)) == 3
