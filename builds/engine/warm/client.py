"""The command line's side of the warm engine: hand a `build` to the store's engine process.

Imports only the standard library, so that a build the warm engine serves costs a Python start
and one round trip. `run` answers None whenever the caller should build in this process instead:
no engine is running (one is started for the next build), it refused (stale code, another
environment), or it went away before it began.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import signal
import socket
import struct
import sys
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

from ..location import PROJECT_DIR, data_dir

IDLE_SETTING = "STUDIO_ENGINE_IDLE_S"
DEFAULT_IDLE_S = 600.0
SOCKET_NAME = "engine.sock"
LOCK_NAME = "engine.lock"  # held by the running engine
LOG_NAME = "engine.log"
HEADER = struct.Struct(">I")
# sockaddr_un's path holds 108 bytes with its terminating NUL.
MAX_SOCKET_PATH = 107
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def idle_s() -> float:
    """STUDIO_ENGINE_IDLE_S: how long an engine process waits for a build before it ends; 0 (or a
    value that is not a number) means no warm engine at all."""
    try:
        value = float(os.environ.get(IDLE_SETTING, "") or DEFAULT_IDLE_S)
    except ValueError:
        return 0.0
    return value if value > 0 else 0.0


def socket_path(store: Path) -> Path | None:
    path = store.absolute() / SOCKET_NAME
    return path if len(os.fsencode(path)) <= MAX_SOCKET_PATH else None


def run(argv: list[str]) -> int | None:
    """The build's exit code from the warm engine, or None: build in this process."""
    idle = idle_s()
    store = data_dir()
    path = socket_path(store)
    if not idle or path is None:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        conn.connect(os.fspath(path))
    except (FileNotFoundError, ConnectionRefusedError):
        conn.close()
        _start_engine(store, idle)
        return None
    except OSError:
        conn.close()
        return None
    with conn:
        return _ask(conn, argv)


def start_for_next_build() -> None:
    """After a command that readied the store for builds (an image imported or pulled), start
    its engine now if none runs, so that the next build finds one, as `docker build` finds
    buildkitd running. Asks the engine's lock, not its socket: a connection is a build."""
    idle = idle_s()
    store = data_dir()
    if not idle or socket_path(store) is None or _engine_running(store):
        return
    _start_engine(store, idle)


def _engine_running(store: Path) -> bool:
    try:
        fd = os.open(store / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False  # never started here (or not ours to read): a start finds out
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # and with it the lock, if it was taken
    return False


def _ask(conn: socket.socket, argv: list[str]) -> int | None:
    umask = os.umask(0)
    os.umask(umask)
    fds = array.array("i", [0, 1, 2])
    try:
        request = json.dumps({
            "argv": argv,
            "cwd": os.getcwd(),  # fails when the directory was removed: the build in-process says so
            "env": dict(os.environ),
            "umask": umask,
            "executable": sys.executable,
            "encoding": [sys.stdout.encoding, sys.stdout.errors, sys.stderr.encoding, sys.stderr.errors],
        }).encode("utf-8", "surrogateescape")
        sys.stdout.flush()
        conn.sendmsg([HEADER.pack(len(request)) + request],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])
        answers = conn.makefile("rb")
        first = _answer(answers)
    except OSError:
        return None
    if first is None or "started" not in first:
        return None  # refused, or gone before it began: nothing ran
    child = int(first["started"])
    forwarded: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        forwarded.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    try:
        last = _answer(answers)
    except OSError:
        last = None
    if last is not None and "exit" in last:
        return int(last["exit"])
    if forwarded:
        return 128 + forwarded[-1]
    print("error: the warm engine stopped during the build (see engine.log in the store)", file=sys.stderr)
    return 1


def _answer(answers: BinaryIO) -> dict[str, Any] | None:
    line = answers.readline()
    if not line:
        return None
    found: dict[str, Any] = json.loads(line)
    return found


def _start_engine(store: Path, idle: float) -> None:
    """Start the store's engine process for the next build, detached, unless the store is not made
    yet (the first build makes it; the next starts the engine)."""
    if not store.is_dir():
        return
    import subprocess

    try:
        with open(store / LOG_NAME, "ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "builds.engine.warm.server", os.fspath(store.absolute()), str(idle)],
                cwd=PROJECT_DIR, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, close_fds=True,
            )
    except OSError:
        pass  # the warm engine only saves time; this build runs in-process either way
