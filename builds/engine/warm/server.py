"""The warm engine: one process per store that has the engine loaded, so a cached build from the
command line costs a Python start and a round trip instead of importing the engine each time (as
`docker build` talks to a running buildkitd).

    python -m builds.engine.warm.server STORE IDLE_S

Started by the command line (warm/client.py) when no engine answers; ends after IDLE_S seconds
without a build, when its store or socket goes away, or when the code it loaded changed on disk.

The process keeps one spare child, forked ahead, which has already started its own parse process
(this process never loads the Go parser: see dockerfile/syntax.py), started the sandbox for the
build's first RUN (in a thread of its own) and read the store's hash cache (a build takes it if
no other build has saved the file since; told that a build saved it, the spare reads it again).
The spare accepts the next connection, tells this process to fork a new spare, checks the caller
(same uid, same Python, same code), takes over the caller's descriptors 0-2, directory, umask
and environment, and runs the command line's `main` as the caller would have, then reports its
exit code, tells this process it ended, and ends. The build also tells which context it reads;
this process passes that on to the new spare, which reads the same context ahead, under an
inotify watch (context/watched.py), for the next build. Once no build has run for a while, this
process tidies the store (tidy.py) in a child of its own.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .client import HEADER, LOCK_NAME, SOCKET_NAME

MAX_REQUEST = 16 << 20  # a whole environment and argv; more is not a command line
# What a child tells this process, a line each: a spare was taken; the code changed; and, passed
# on to the waiting spare, a build saved the store's hash cache (the spare reads it again), a
# build reads a context (CONTEXT and the JSON of its watched.Key: the spare reads it ahead),
# a build has ended.
TAKEN, STALE, SAVED, CONTEXT, ENDED = b"t", b"s", b"h", b"c", b"e"
# A build's context is read ahead once the build has run this long, or when it ends: a cached
# build ends sooner, and reading beside it would take the core it runs on.
READ_AHEAD_AFTER_S = 0.3
TIDY_AFTER_S = 1.0


_log_stream = sys.stderr  # engine.log; a build's child keeps it after taking the caller's stderr


def _log(message: str) -> None:
    now = time.time()
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
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
    # Everything loaded so far is frozen out of the collector before a spare is forked: a spare's
    # collections then leave these objects (and the pages it shares with this process) alone.
    gc.collect()
    gc.freeze()
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
    status = _Lines(status_r)
    _log(f"serving {store}")
    spare, tell_spare = _fork_spare(store, listener, status_w, files)
    last_used = time.monotonic()
    why = "idle"
    tidy_at: float | None = None  # a while after the last build ended, the store is tidied
    try:
        while True:
            now = time.monotonic()
            if tidy_at is not None and now >= tidy_at:
                _tidy(store)
                tidy_at = None
            remaining = last_used + idle - now
            if remaining <= 0:
                break
            wait = min(remaining, 1.0)
            if tidy_at is not None:
                wait = min(wait, max(0.0, tidy_at - now))
            ready, _, _ = select.select([status_r], [], [], wait)
            _reap()
            if ready:
                news = status.read()
                if STALE in news:
                    why = "its code changed on disk"
                    break
                for line in news:
                    if line == TAKEN:
                        last_used = time.monotonic()
                        tidy_at = None
                        os.close(tell_spare)
                        spare, tell_spare = _fork_spare(store, listener, status_w, files)
                    else:  # the spare is told of what a build does
                        if line == ENDED:
                            tidy_at = time.monotonic() + TIDY_AFTER_S
                        with contextlib.suppress(OSError):  # a spare that is gone
                            os.write(tell_spare, line + b"\n")
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


def _tidy(store: Path) -> None:
    """Tidy the store in a child of low priority (tidy.py: it stops when a build starts)."""

    def child() -> int:
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the socket, the spare's pipe: not its to hold
        from ..tidy import tidy_at_low_priority

        tidy_at_low_priority(store)
        return 0

    _fork(child)


def _fork(child: Callable[[], int]) -> int:
    """Fork: the child runs `child` and exits with its code (1 for an exception, printed to the
    engine's log); it never returns into this process's loop. Returns the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        code = child()
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


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

    def child() -> int:
        os.close(tell)
        return _spare(store, listener, status_w, files, told)

    pid = _fork(child)
    os.close(told)
    return pid, tell


def _spare(store: Path, listener: socket.socket, status_w: int, files: dict[str, int], told: int) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from ..context import hashcache, watched
    from ..dockerfile import syntax
    from ..sandbox import runner

    syntax.start()
    runner.start_ahead()  # the sandbox's spawner and cgroups, for the build's first RUN
    cache_file = store / hashcache.HASH_CACHE_FILE

    def ready() -> bool:
        # The store's hash cache, read while no one waits (a build takes it only if the file is
        # still the one read), and handed to the context being read ahead; then a collection
        # (of what this process made: its parent froze what it had before the fork).
        read = hashcache.preload_again(cache_file)
        watched.digests_known(hashcache.preloaded(cache_file))
        if read:
            gc.collect()
            gc.freeze()
        return read

    ready()
    # Told that a build saved the hash cache: read it again then, or the next build (often the
    # very next command) would read all of it itself. Told the context a build reads: read it
    # ahead, once that build has run a while or ended. (A pipe, not a signal: one delivered to
    # another thread of this process would not end a wait in accept().)
    listener.setblocking(False)  # another spare may take a connection this one was woken for
    waiting: list[socket.socket | int] = [listener, told]
    news = _Lines(told)
    ahead: bytes | None = None  # the context of the running build, until it is read ahead
    ahead_at = 0.0
    while True:
        wait = None if ahead is None else max(0.0, ahead_at - time.monotonic())
        readable, _, _ = select.select(waiting, [], [], wait)
        if told in readable:
            lines = news.read()
            if news.closed:
                waiting.remove(told)  # this process's parent is gone
            for line in lines:
                if line == SAVED:
                    _log("a build saved the hash cache: " + ("read it again" if ready() else "unchanged"))
                elif line.startswith(CONTEXT):
                    ahead, ahead_at = line[len(CONTEXT):], time.monotonic() + READ_AHEAD_AFTER_S
                elif line == ENDED:
                    ahead_at = 0.0
                    if ready():  # saved by a process this engine did not serve
                        _log("a build ended: read the store's hash cache again")
        if ahead is not None and time.monotonic() >= ahead_at:
            _log(_read_ahead(ahead))
            ready()
            ahead = None
        if listener in readable:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                continue
            conn.setblocking(True)
            break
    os.close(told)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # from here on, this build is the caller's
    _tell(status_w, TAKEN)
    watched.stop()
    listener.close()
    with conn:
        request, fds = _receive(conn)
        refusal = _refusal(conn, request, fds, files)
        if refusal == "stale":
            _tell(status_w, STALE)
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
    from ..context import hashcache, watched

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
    cli.on_build = lambda options: _announce(status_w, options)
    hashcache.on_save = lambda path: _tell(status_w, SAVED)
    cli.tidy_when_done = False  # this process's parent tidies once no build runs
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
        if watched.outcome is not None:
            _log(watched.outcome)
        _tell(status_w, ENDED)
        with contextlib.suppress(OSError):
            os.close(status_w)
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
    return 0


def _tell(status_w: int, message: bytes) -> None:
    with contextlib.suppress(OSError):
        os.write(status_w, message + b"\n")


def _announce(status_w: int, options: Any) -> None:
    """Tell this process's parent the context this build reads, for the next spare to read ahead
    (one write, whole: a longer line than the pipe writes at once is left unsaid)."""
    from ..context import watched

    found = watched.key(options.context, options.dockerfile, options.limits.dockerfile_bytes)
    line = CONTEXT + json.dumps(found).encode("ascii")
    if len(line) < select.PIPE_BUF:
        _tell(status_w, line)


def _read_ahead(message: bytes) -> str:
    from ..context import watched

    try:
        context, dockerfile, limit = json.loads(message)
        found = (str(context), str(dockerfile), int(limit))
    except (ValueError, TypeError):
        return "not reading a context ahead: a message that could not be read"
    return watched.start(found)


class _Lines:
    """The lines written to a pipe, as they come (each written whole, in one write)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = b""
        self.closed = False

    def read(self) -> list[bytes]:
        data = os.read(self.fd, 1 << 16)
        self.closed = not data
        *lines, self.pending = (self.pending + data).split(b"\n")
        return lines


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
