"""`make run`'s supervisor: it brings up Redis, a worker and the web server, and Ctrl-C takes all
of them down with nothing left running."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

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
