"""The parse process: BuildKit's parser (the `dockerfile` package, a Go library) behind a pipe.

Started by `syntax.py` as a program of its own (`python -I parse_server.py PARENT_PID`), never by
a bare fork, so the Go runtime always starts in a fresh process and no process that forks ever has
it loaded: a process forked after loading a Go library can hang forever in the child. Imports only
the standard library and the package, never the project.

Protocol, on stdin and stdout: each request is a 4-byte big-endian length and that many bytes of
UTF-8 Dockerfile text; each answer a 4-byte length and a JSON object, either {"commands": [...]}
(one list per command, in `syntax.Command`'s field order) or {"error": message}.

STUDIO_FAULT_PARSE_HANG (for tests only): when set, a Dockerfile whose text contains its value
makes this process hang for good instead of answering, as a Go runtime deadlock would.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import struct
import sys
import threading
from typing import Any, BinaryIO

PR_SET_PDEATHSIG = 1
HEADER = struct.Struct(">I")


def _die_with_parent(parent: int) -> None:
    """Killed the moment the process that started us goes, even when stuck inside Go."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it went before the prctl took effect
        os._exit(1)


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _command(found: Any) -> list[Any]:
    return [
        found.cmd, found.sub_cmd, found.json, found.original, found.start_line, found.end_line,
        list(found.flags), list(found.value),
        [[doc.name, doc.file_descriptor, doc.content] for doc in found.heredocs],
    ]


def main() -> int:
    _die_with_parent(int(sys.argv[1]))
    # The answers get a descriptor of their own, and anything else that writes to stdout (the Go
    # library, a warning) goes to stderr instead of into the protocol.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    import dockerfile

    hang_marker = os.environ.get("STUDIO_FAULT_PARSE_HANG", "")
    while True:
        header = _read_exactly(requests, HEADER.size)
        if header is None:
            return 0  # the parent closed the pipe: done
        body = _read_exactly(requests, HEADER.unpack(header)[0])
        if body is None:
            return 0
        text = body.decode("utf-8")
        if hang_marker and hang_marker in text:
            threading.Event().wait()
        try:
            answer: dict[str, Any] = {"commands": [_command(c) for c in dockerfile.parse_string(text)]}
        except dockerfile.GoParseError as exc:
            answer = {"error": str(exc)}
        data = json.dumps(answer).encode()
        answers.write(HEADER.pack(len(data)) + data)
        answers.flush()


if __name__ == "__main__":
    sys.exit(main())
