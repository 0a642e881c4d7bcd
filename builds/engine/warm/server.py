"""The warm engine: one process per store that has the engine loaded, so a cached build from the
command line costs a Python start and a round trip instead of importing the engine each time (as
`docker build` talks to a running buildkitd).

    python -m builds.engine.warm.server STORE IDLE_S

Started by the command line (warm/client.py) when no engine answers; ends after IDLE_S seconds
without a build, when its store or socket goes away, or when the code it loaded changed on disk.

The process keeps one spare child, forked ahead, which has already started its own parse process
(this process never loads the Go parser: see dockerfile/syntax.py), started the sandbox for the
build's first RUN (in a thread of its own) and read the store's hash cache (a build takes it if
no other build has saved the file since; told that a build ended, the spare reads it again if it
changed). The spare accepts the next connection, tells this process to fork a new spare, checks
the caller (same uid, same Python, same code), takes over the caller's descriptors 0-2,
directory, umask and environment, and runs the command line's `main` as the caller would have,
then reports its exit code, tells this process it ended, and ends.
"""

from __future__ import annotations

import array
import atexit
import contextlib
import fcntl
import gc
import io
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from .client import HEADER, LOCK_NAME, SOCKET_NAME

MAX_REQUEST = 16 << 20  # a whole environment and argv; more is not a command line
# What a child tells this process: a spare was taken; the code changed; a build has ended
# (and may have saved the store's hash cache, which the waiting spare then reads again).
TAKEN, STALE, ENDED = b"t", b"s", b"e"


_log_stream = sys.stderr  # engine.log; a build's child keeps it after taking the caller's stderr


def _log(message: str) -> None:
    when = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{when} engine {os.getpid()}: {message}", file=_log_stream, flush=True)


def _loaded_files() -> dict[str, int]:
    """Every loaded module's file and its mtime: a changed one makes this process stale."""
    found: dict[str, int] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path:
            with contextlib.suppress(OSError):
                found[path] = os.stat(path).st_mtime_ns
    return found


def _changed(files: dict[str, int]) -> bool:
    for path, mtime in files.items():
        try:
            if os.stat(path).st_mtime_ns != mtime:
                return True
        except OSError:
            return True
    return False


def serve(store: Path, idle: float) -> int:
    lock_fd = os.open(store / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another engine serves this store
    with contextlib.suppress(OSError):  # engine.log (opened to append) tells of this engine only
        os.ftruncate(sys.stderr.fileno(), 0)
    # What a build needs, loaded once here; the parser stays out (it is Go, and this process forks).
    from .. import builder, cli, planner, predict, progress  # noqa: F401
    from ..store import Store  # noqa: F401

    cli.prepare()

    files = _loaded_files()
    path = store / SOCKET_NAME
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        listener.bind(os.fspath(path))
    finally:
        os.umask(old_umask)
    listener.listen(64)
    inode = path.stat().st_ino
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    _log(f"serving {store}")
    spare, tell_spare = _fork_spare(store, listener, status_w, files)
    last_used = time.monotonic()
    why = "idle"
    try:
        while True:
            remaining = last_used + idle - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = select.select([status_r], [], [], min(remaining, 1.0))
            _reap()
            if ready:
                news = os.read(status_r, 64)
                if STALE in news:
                    why = "its code changed on disk"
                    break
                for _ in range(news.count(TAKEN)):
                    last_used = time.monotonic()
                    os.close(tell_spare)
                    spare, tell_spare = _fork_spare(store, listener, status_w, files)
                if ENDED in news:
                    with contextlib.suppress(OSError):  # a spare that is gone
                        os.write(tell_spare, ENDED)
            if not _still_ours(path, inode):
                why = "its store or socket is gone"
                break
    finally:
        if _still_ours(path, inode):
            with contextlib.suppress(OSError):
                path.unlink()
        listener.close()
        # A spare that accepted just now ignores this and finishes its build; one still waiting dies,
        # and a caller that reached it before it began builds in its own process.
        with contextlib.suppress(ProcessLookupError):
            os.kill(spare, signal.SIGTERM)
        _log(f"stopping: {why}")
    return 0


def _still_ours(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino == inode
    except OSError:
        return False


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _fork_spare(
    store: Path, listener: socket.socket, status_w: int, files: dict[str, int]
) -> tuple[int, int]:
    """The new spare's pid, and the pipe this process tells it of ended builds through."""
    told, tell = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid:
        os.close(told)
        return pid, tell
    os.close(tell)
    code = 1
    try:
        code = _spare(store, listener, status_w, files, told)
    except BaseException:  # a spare must never return into the parent's loop
        traceback.print_exc()
    finally:
        os._exit(code)


def _spare(store: Path, listener: socket.socket, status_w: int, files: dict[str, int], told: int) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from ..context import hashcache
    from ..dockerfile import syntax
    from ..sandbox import runner

    syntax.start()
    runner.start_ahead()  # the sandbox's spawner and cgroups, for the build's first RUN
    cache_file = store / hashcache.HASH_CACHE_FILE

    def ready() -> bool:
        # The store's hash cache, read while no one waits (a build takes it only if the file is
        # still the one read); then a full collection. Every object this process shares with
        # its parent is copied on its first write, and a collection writes to them all: it
        # copies them now, not during the build.
        if not hashcache.preload_again(cache_file):
            return False
        gc.collect()
        gc.freeze()
        return True

    ready()
    # Told that a build ended, which may have saved the hash cache: read it again then, or the
    # next build (often the very next command) would read all of it itself. (A pipe, not a
    # signal: one delivered to another thread of this process would not end a wait in accept().)
    listener.setblocking(False)  # another spare may take a connection this one was woken for
    waiting: list[socket.socket | int] = [listener, told]
    while True:
        readable, _, _ = select.select(waiting, [], [])
        if told in readable:
            if os.read(told, 64):
                _log("a build ended: " + ("read the store's hash cache again" if ready()
                                          else "its hash cache is unchanged"))
            else:
                waiting.remove(told)  # this process's parent is gone
        if listener in readable:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                continue
            conn.setblocking(True)
            break
    os.close(told)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # from here on, this build is the caller's
    os.write(status_w, TAKEN)
    listener.close()
    with conn:
        request, fds = _receive(conn)
        refusal = _refusal(conn, request, fds, files)
        if refusal == "stale":
            os.write(status_w, STALE)
        if refusal is not None:
            os.close(status_w)
            for fd in fds:
                os.close(fd)
            _log(f"refused a build: {refusal}")
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"refused": refusal}).encode() + b"\n")
            return 0
        assert request is not None  # _refusal refuses a request that could not be read
        return _serve_one(conn, request, fds, status_w)


def _receive(conn: socket.socket) -> tuple[dict[str, object] | None, list[int]]:
    """The caller's request and the descriptors that came with it; None for one that cannot be
    read (too big, cut short, not JSON, or not in time)."""
    fds: list[int] = []
    conn.settimeout(5)
    try:
        head = _read(conn, HEADER.size, fds)
        size = HEADER.unpack(head)[0] if head is not None else MAX_REQUEST + 1
        body = _read(conn, size, fds) if size <= MAX_REQUEST else None
        found = json.loads(body.decode("utf-8", "surrogateescape")) if body is not None else None
    except (OSError, ValueError):
        found = None
    finally:
        conn.settimeout(None)
    return (found if isinstance(found, dict) else None), fds


def _read(conn: socket.socket, size: int, fds: list[int]) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk, ancillary, _, _ = conn.recvmsg(min(size - len(data), 1 << 16), socket.CMSG_SPACE(3 * 4))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += array.array("i", payload[: len(payload) - len(payload) % 4]).tolist()
        if not chunk:
            return None
        data += chunk
    return data


def _refusal(
    conn: socket.socket, request: dict[str, object] | None, fds: list[int], files: dict[str, int]
) -> str | None:
    pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    if uid != os.geteuid():
        return f"a caller of another user (uid {uid}, pid {pid})"
    if request is None:
        return "a request that could not be read"
    if len(fds) != 3:
        return "a request without the caller's standard input, output and error"
    if request.get("executable") != sys.executable:
        return "another Python"
    env = request.get("env")
    if not isinstance(env, dict):
        return "a request that could not be read"
    # The spare's parse process started with this process's environment; the test-only fault
    # settings it reads must be the caller's.
    faults = {name for name in {*env, *os.environ} if str(name).startswith("STUDIO_FAULT")}
    if any(env.get(name) != os.environ.get(name) for name in faults):
        return "another parser environment"
    if _changed(files):
        return "stale"
    return None


def _serve_one(conn: socket.socket, request: dict[str, Any], fds: list[int], status_w: int) -> int:
    from .. import cli

    global _log_stream
    _log(f"build for pid {_peer_pid(conn)}: {' '.join(str(arg) for arg in request['argv'])}")
    _log_stream = os.fdopen(os.dup(2), "w")
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(str(request["cwd"]))
    os.umask(int(request["umask"]))
    os.environ.clear()
    os.environ.update(request["env"])
    out_encoding, out_errors, err_encoding, err_errors = request["encoding"]
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding=out_encoding,
                                  errors=out_errors, line_buffering=os.isatty(1))
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding=err_encoding,
                                  errors=err_errors, line_buffering=True)
    argv = [str(arg) for arg in request["argv"]]
    sys.argv = ["manage.py", *argv]
    done = threading.Event()
    conn.sendall(json.dumps({"started": os.getpid()}).encode() + b"\n")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=_stop_when_caller_goes, args=(conn, done), daemon=True).start()
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    except KeyboardInterrupt:
        code = 130
    finally:
        done.set()
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        atexit._run_exitfuncs()
        with contextlib.suppress(OSError):
            os.write(status_w, ENDED)
            os.close(status_w)
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
    return 0


def _peer_pid(conn: socket.socket) -> int:
    return int(struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0])


def _stop_when_caller_goes(conn: socket.socket, done: threading.Event) -> None:
    """A caller that went (killed, its terminal closed) stops its build, as Ctrl-C would."""
    with contextlib.suppress(OSError):
        while conn.recv(64):
            pass
    if not done.is_set():
        os.kill(os.getpid(), signal.SIGINT)


if __name__ == "__main__":
    sys.exit(serve(Path(sys.argv[1]), float(sys.argv[2])))
