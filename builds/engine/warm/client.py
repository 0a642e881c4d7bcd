"""The command line's side of the warm engine: hand a `build` to the store's engine process.

Imports only modules built into the interpreter (`_socket`, not `socket`, which loads `enum` and
`selectors`; no `json`, `pathlib` or `typing`, which load `re` and `collections`), so that a
build the warm engine serves costs a Python start and one round trip. `run` answers None
whenever the caller should build in this process instead: no engine is running (one is started
for the next build), it refused (stale code, another environment), or it went away before it
began. The request is JSON, written here with the C encoder of JSON's strings; the engine's
answers are one JSON line each, of which this side needs only two exact shapes.
"""

import _json
import _signal  # type: ignore[import-not-found]  # no stub; `signal` loads enum
import _socket
import os
import struct
import sys

from ..location import PROJECT_DIR, store_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType

IDLE_SETTING = "STUDIO_ENGINE_IDLE_S"
DEFAULT_IDLE_S = 600.0
SOCKET_NAME = "engine.sock"
LOCK_NAME = "engine.lock"  # held by the running engine
LOG_NAME = "engine.log"
HEADER = struct.Struct(">I")
# sockaddr_un's path holds 108 bytes with its terminating NUL.
MAX_SOCKET_PATH = 107
FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT)
MAX_ANSWER = 1 << 16


def idle_s() -> float:
    """STUDIO_ENGINE_IDLE_S: how long an engine process waits for a build before it ends; 0 (or a
    value that is not a number) means no warm engine at all."""
    try:
        value = float(os.environ.get(IDLE_SETTING, "") or DEFAULT_IDLE_S)
    except ValueError:
        return 0.0
    return value if value > 0 else 0.0


def socket_path(store: str) -> str | None:
    path = os.path.join(os.path.abspath(store), SOCKET_NAME)
    return path if len(os.fsencode(path)) <= MAX_SOCKET_PATH else None


def run(argv: list[str]) -> int | None:
    """The build's exit code from the warm engine, or None: build in this process."""
    idle = idle_s()
    store = store_dir()
    path = socket_path(store)
    if not idle or path is None:
        return None
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        conn.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        conn.close()
        _start_engine(store, idle)
        return None
    except OSError:
        conn.close()
        return None
    try:
        return _ask(conn, argv)
    finally:
        conn.close()


def start_for_next_build() -> None:
    """After a command that readied the store for builds (an image imported or pulled), start
    its engine now if none runs, so that the next build finds one, as `docker build` finds
    buildkitd running. Asks the engine's lock, not its socket: a connection is a build."""
    idle = idle_s()
    store = store_dir()
    if not idle or socket_path(store) is None or _engine_running(store):
        return
    _start_engine(store, idle)


def _engine_running(store: str) -> bool:
    try:
        fd = os.open(os.path.join(store, LOCK_NAME), os.O_RDONLY | os.O_CLOEXEC)
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


def _to_json(value: object) -> str:
    """`value` (str, int, list and dict of them) as JSON, as json.dumps writes it: strings
    ASCII-only, a lone surrogate (a name that was not UTF-8) as its escape."""
    if isinstance(value, str):
        return str(_json.encode_basestring_ascii(value))
    if isinstance(value, bool) or value is None:
        raise TypeError(f"not in a request: {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_to_json(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_to_json(key)}: {_to_json(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"not in a request: {value!r}")


def _ask(conn: _socket.socket, argv: list[str]) -> int | None:
    umask = os.umask(0)
    os.umask(umask)
    try:
        request = _to_json({
            "argv": argv,
            "cwd": os.getcwd(),  # fails when the directory was removed: the build in-process says so
            "env": dict(os.environ),
            "umask": umask,
            "executable": sys.executable,
            "encoding": [sys.stdout.encoding, sys.stdout.errors, sys.stderr.encoding, sys.stderr.errors],
        }).encode("ascii")
        sys.stdout.flush()
        conn.sendmsg([HEADER.pack(len(request)) + request],
                     [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("3i", 0, 1, 2))])
        answers = _Lines(conn)
        first = _answer(answers.next(), "started")
    except OSError:
        return None
    if first is None:
        return None  # refused, or gone before it began: nothing ran
    child = first
    forwarded: list[int] = []

    def forward(signum: int, _frame: "FrameType | None") -> None:
        forwarded.append(signum)
        try:  # noqa: SIM105 (contextlib is one import more)
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        _signal.signal(signum, forward)
    try:
        last = _answer(answers.next(), "exit")
    except OSError:
        last = None
    if last is not None:
        return last
    if forwarded:
        return 128 + forwarded[-1]
    print("error: the warm engine stopped during the build (see engine.log in the store)", file=sys.stderr)
    return 1


class _Lines:
    """The engine's answers, a line at a time, as the socket's bytes come."""

    def __init__(self, conn: _socket.socket) -> None:
        self.conn = conn
        self.pending = b""

    def next(self) -> bytes:
        while b"\n" not in self.pending and len(self.pending) < MAX_ANSWER:
            chunk = self.conn.recv(4096)
            if not chunk:
                break
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line


def _answer(line: bytes, key: str) -> int | None:
    """N from the engine's `{"KEY": N}`; None for any other answer (a refusal) or none at all."""
    head = b'{"' + key.encode() + b'": '
    if not (line.startswith(head) and line.endswith(b"}")):
        return None
    number = line[len(head):-1]
    return int(number) if number.lstrip(b"-").isdigit() else None


def _start_engine(store: str, idle: float) -> None:
    """Start the store's engine process for the next build, detached, unless the store is not made
    yet (the first build makes it; the next starts the engine)."""
    if not os.path.isdir(store):
        return
    import subprocess

    try:
        with open(os.path.join(store, LOG_NAME), "ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "builds.engine.warm.server", os.path.abspath(store), str(idle)],
                cwd=PROJECT_DIR, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, close_fds=True,
            )
    except OSError:
        pass  # the warm engine only saves time; this build runs in-process either way
