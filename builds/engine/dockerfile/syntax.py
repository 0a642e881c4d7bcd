"""The one way into BuildKit's parser (the `dockerfile` package, a Go library): a parse process.

The Go runtime must never be loaded in a process that forks afterwards (the Celery worker's
parent, a web server): a child forked from it can deadlock inside Go and hang forever. So this
process never loads it. Each process that parses starts its own parse process
(`parse_server.py`, by exec, never a bare fork) the first time it parses, keeps it for later
parses, and gives every parse a deadline (STUDIO_PARSE_TIMEOUT_S): a parse that does not answer
in time has its process killed (the next parse starts a fresh one) and fails with ParseTimeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import EngineError

SERVER = Path(__file__).with_name("parse_server.py")
HEADER = struct.Struct(">I")
DEFAULT_TIMEOUT_S = 10.0
TIMEOUT_SETTING = "STUDIO_PARSE_TIMEOUT_S"


class Heredoc(NamedTuple):
    name: str
    file_descriptor: int
    content: str


class Command(NamedTuple):
    """One instruction as the package reports it (its `Command`, with the same fields)."""

    cmd: str | None
    sub_cmd: str | None
    json: bool
    original: str | None
    start_line: int
    end_line: int
    flags: tuple[str, ...]
    value: tuple[str, ...]
    heredocs: tuple[Heredoc, ...]


class GoParseError(Exception):
    """BuildKit's parser rejected the text; the message is its own."""


class ParseTimeout(EngineError):
    """The parser did not answer within the deadline; its process was killed."""

    exit_code = 1


def timeout_s() -> float:
    """STUDIO_PARSE_TIMEOUT_S, or the default when unset or not a positive number (the studio's
    settings refuse such a value at start-up; the command line falls back quietly)."""
    try:
        value = float(os.environ.get(TIMEOUT_SETTING, "") or DEFAULT_TIMEOUT_S)
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


class _Died(Exception):
    """The parse process went away before answering (killed from outside, or crashed)."""


class _Server:
    """One parse process and the pipes to it."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(SERVER), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests = self.process.stdin
        self.answers = self.process.stdout.fileno()

    def ask(self, data: bytes, deadline: float) -> dict[str, Any]:
        try:
            self.requests.write(HEADER.pack(len(data)) + data)
            self.requests.flush()
        except (BrokenPipeError, OSError):
            raise _Died() from None
        size = HEADER.unpack(self._read(HEADER.size, deadline))[0]
        answer: dict[str, Any] = json.loads(self._read(size, deadline))
        return answer

    def _read(self, size: int, deadline: float) -> bytes:
        data = bytearray()
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.answers], [], [], remaining)[0]:
                raise TimeoutError
            chunk = os.read(self.answers, size - len(data))
            if not chunk:
                raise _Died()
            data += chunk
        return bytes(data)

    def kill(self) -> None:
        self.process.kill()
        self.close()
        self.process.wait()

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):  # a dead process's pipe cannot take the flush
                    stream.close()


_server: _Server | None = None
_lock = threading.Lock()
# The parse process dies with the thread that started it (PR_SET_PDEATHSIG follows threads), and a
# web server's request threads come and go: one thread that lives as long as the process starts them.
_starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse-process-starter")


def _new_server() -> _Server:
    return _starter.submit(_Server).result()


def _forget_in_child() -> None:
    """A forked child must not talk to its parent's parse process: it starts its own."""
    global _server, _lock, _starter
    _lock = threading.Lock()
    _starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse-process-starter")
    if _server is not None:
        _server.close()
        _server.process.returncode = -1  # not this process's child: nothing to wait for
        _server = None


os.register_at_fork(after_in_child=_forget_in_child)


def start() -> None:
    """Start this process's parse process now, without waiting for it: a command line that is
    about to parse lets it load the parser while the rest of the engine loads."""
    global _server
    with _lock:
        if _server is None:
            _server = _new_server()


def parse_string(text: str) -> tuple[Command, ...]:
    """The package's parse_string, in the parse process, within STUDIO_PARSE_TIMEOUT_S.
    Raises GoParseError for text BuildKit rejects, ParseTimeout when no answer came in time."""
    limit = timeout_s()
    deadline = time.monotonic() + limit
    data = text.encode("utf-8")
    if not _lock.acquire(timeout=limit):
        raise _timeout(limit)
    try:
        answer = _ask(data, deadline)
    finally:
        _lock.release()
    if "error" in answer:
        raise GoParseError(answer["error"])
    return tuple(_command(found) for found in answer["commands"])


def _ask(data: bytes, deadline: float) -> dict[str, Any]:
    global _server
    for attempt in (1, 2):
        if _server is None:
            _server = _new_server()
        try:
            return _server.ask(data, deadline)
        except TimeoutError:
            _server.kill()
            _server = None
            raise _timeout(timeout_s()) from None
        except _Died:
            # Killed from outside (its parent thread ended: PR_SET_PDEATHSIG follows threads) or
            # crashed: once more with a fresh one, then give up.
            _server.kill()
            _server = None
            if attempt == 2:
                raise EngineError("the Dockerfile parser stopped unexpectedly") from None
    raise AssertionError("unreachable")


def _timeout(limit: float) -> ParseTimeout:
    return ParseTimeout(
        f"parsing the Dockerfile took longer than {limit:g} s ({TIMEOUT_SETTING}); the parser was stopped"
    )


def _command(found: list[Any]) -> Command:
    cmd, sub_cmd, json_form, original, start, end, flags, value, heredocs = found
    return Command(cmd, sub_cmd, json_form, original, start, end, tuple(flags), tuple(value),
                   tuple(Heredoc(*doc) for doc in heredocs))
