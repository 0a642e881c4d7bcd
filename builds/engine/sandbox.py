"""Run one RUN step under bubblewrap over an overlay of the parent layers.

INTERFACE STUB: the implementation fills in the bodies; the types and signatures are the
contract the rest of the engine is written against.

The overlay's upper directory *is* the new layer: nothing diffs whole trees. After the run the
mount points bubblewrap itself made in the upper directory (dev/, proc/, and any parent
directories it created for them) are removed when the lower layers did not have them, so
the layer holds only what the command wrote.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 600.0  # wall clock
    memory_bytes: int = 1 << 30
    pids: int = 256  # processes and threads at once
    output_bytes: int = 8 << 20  # stdout + stderr together; the step fails past it
    disk_bytes: int = 4 << 30  # bytes written into the layer (the upper directory)


@dataclass
class RunResult:
    exit_code: int | None  # None when killed for a limit or a cancel
    limit: str | None  # None | "timeout" | "memory" | "pids" | "output" | "disk" | "cancelled"
    message: str  # "" on success; else a sentence a student understands, naming the limit
    tail: list[str]  # the last lines of output (at most 20)
    duration_ms: int


OutputCallback = Callable[[str, str], None]  # (stream "stdout"|"stderr", text)


def run(
    argv: list[str],
    *,
    lower: list[Path],
    upper: Path,
    env: Mapping[str, str],
    cwd: str,
    user: str | None = None,
    network: bool = False,
    limits: Limits = Limits(),
    on_output: OutputCallback | None = None,
    cancel: threading.Event | None = None,
) -> RunResult:
    """Run `argv` as the step's process. `lower` are the parent layers' directories, bottom
    first (the base image's first); `upper` an empty directory that receives the writes; `cwd`
    the working directory inside (created when missing, as BuildKit does); `user` the USER
    ("name", "uid", "uid:gid", "name:group", resolved against the image's /etc/passwd and
    /etc/group). Own PID, IPC, UTS, network (unless `network`) and mount namespaces; the
    process dies with its parent. Output streams to `on_output` as it arrives, line-buffered
    where possible. Never raises for the command's own failure: the result says what happened."""
    raise NotImplementedError


def available() -> tuple[bool, str]:
    """Whether the sandbox can run here, and if not, why (for /healthz)."""
    raise NotImplementedError
