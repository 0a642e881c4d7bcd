"""Running a step and watching it: output, limits, the cancel event, and what the result says."""

from __future__ import annotations

import codecs
import os
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .cgroups import Cgroups
from .model import (
    CANCEL_POLL_S,
    DRAIN_S,
    IDLE_FLUSH_S,
    PARTIAL_FLUSH_CHARS,
    POLL_S,
    TAIL_LINE_CHARS,
    TAIL_LINES,
    Limits,
    OutputCallback,
    Overlay,
    RunResult,
)
from .spawner import Worker, forget_worker
from .upper import disk_usage


def execute(
    worker: Worker, args: list[str], rlimits: list[tuple[int, int]], limits: Limits, out: Output,
    upper: Path, cancel: threading.Event | None, started: float, overlay: Overlay | None = None,
    on_started: Callable[[], object] | None = None,
) -> tuple[int | None, str | None]:
    """Start bwrap (the spawner mounting `overlay` first, when given) and watch it, calling
    `on_started` once it is asked to start. Returns (exit code, the limit that stopped it or
    None)."""
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    try:
        try:
            worker.spawner.spawn(args, rlimits, stdout_w, stderr_w, overlay)
        finally:
            os.close(stdout_w)
            os.close(stderr_w)
        if on_started is not None:
            on_started()
        watch = _Watch(worker, limits, out, upper, cancel, started + limits.timeout_s)
        try:
            watch.loop(stdout_r, stderr_r)
        finally:
            watch.close()
    finally:
        os.close(stdout_r)
        os.close(stderr_r)
    return watch.exit_code, watch.reason


@dataclass
class _Watch:
    worker: Worker
    limits: Limits
    out: Output
    upper: Path
    cancel: threading.Event | None
    deadline: float
    exit_code: int | None = None
    exited: bool = False
    reason: str | None = None
    sel: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    next_poll: float = 0.0

    def loop(self, stdout: int, stderr: int) -> None:
        self.sel.register(stdout, selectors.EVENT_READ, "stdout")
        self.sel.register(stderr, selectors.EVENT_READ, "stderr")
        self.sel.register(self.worker.spawner.sock, selectors.EVENT_READ, "exit")
        self.next_poll = time.monotonic() + POLL_S
        while self.sel.get_map():
            if self.reason is None:
                self.reason = self._check(time.monotonic())
                if self.reason is not None:
                    self._kill()
            events = self.sel.select(self._wait_time())
            if not events:
                self.out.flush()
            for key, _ in events:
                if key.data == "exit":
                    self._exited(key)
                else:
                    self._read(key)

    def _read(self, key: selectors.SelectorKey) -> None:
        data = os.read(key.fd, 65536)
        if not data:
            self.sel.unregister(key.fileobj)
            self.out.flush(key.data, final=True)
        elif self.reason != "output" and not self.out.feed(key.data, data) and self.reason is None:
            self.reason = "output"
            self._kill()

    def _exited(self, key: selectors.SelectorKey) -> None:
        self.sel.unregister(key.fileobj)
        self.exit_code = self.worker.spawner.status()
        self.exited = True
        # Everything inside died with the namespace's init; the pipes report EOF right after.
        self.deadline = min(self.deadline, time.monotonic() + DRAIN_S)

    def _check(self, now: float) -> str | None:
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if now >= self.deadline:
            return None if self.exited else "timeout"
        if now < self.next_poll:
            return None
        if self.worker.cgroups.pids_hit():
            return "pids"
        if disk_usage(self.upper) > self.limits.disk_bytes:
            return "disk"
        # A big layer takes long to measure: measure less often rather than slow the step.
        self.next_poll = time.monotonic() + max(POLL_S, 5 * (time.monotonic() - now))
        return None

    def _wait_time(self) -> float:
        now = time.monotonic()
        if now >= self.deadline and self.exited:
            # A pipe stayed open past the drain time after the sandbox was gone: give up on it.
            for key in list(self.sel.get_map().values()):
                self.sel.unregister(key.fileobj)
        wait = min(self.deadline, self.next_poll) - now
        if self.cancel is not None:
            wait = min(wait, CANCEL_POLL_S)
        if self.out.pending():
            wait = min(wait, IDLE_FLUSH_S)
        return max(wait, 0.0)

    def _kill(self) -> None:
        # The spawner kills bwrap; its pid namespace's init dies with it (--die-with-parent),
        # and with the init every process inside, background ones included.
        if not self.exited:
            self.worker.spawner.kill()
        self.deadline = time.monotonic() + DRAIN_S

    def close(self) -> None:
        self.sel.close()
        if not self.exited:  # left by an exception: do not reuse a spawner mid-step
            self.worker.spawner.kill()
            self.worker.close()
            forget_worker()


def classify(exit_code: int | None, reason: str | None, cgroups: Cgroups, upper: Path,
              limits: Limits) -> str | None:
    """Name the limit behind a failure the kernel caused rather than the watch loop."""
    pids_hit, oom_killed = cgroups.settle()
    # Forks failed: say so even when the main process went on to succeed (a naive fork bomb's
    # first shell returns at once), so the verdict does not depend on timing. Before "output"
    # too, since a fork bomb's "can't fork" messages fill the output first.
    if reason in (None, "output") and pids_hit:
        return "pids"
    if reason is not None:
        return reason
    failed = exit_code != 0
    if failed and oom_killed:
        return "memory"
    # RLIMIT_FSIZE stops a single file at exactly the limit; the command then fails.
    usage = disk_usage(upper)
    if usage > limits.disk_bytes or (failed and usage >= limits.disk_bytes):
        return "disk"
    return None


def outcome(exit_code: int | None, reason: str | None, limits: Limits, out: Output,
            started: float) -> RunResult:
    out.flush(final=True)
    tail = out.tail()
    if reason is not None:
        return RunResult(None, reason, limit_message(reason, limits), tail, ms_since(started))
    if exit_code is None:
        return RunResult(None, None, "the sandbox stopped unexpectedly", tail, ms_since(started))
    if exit_code != 0 and tail and tail[-1].startswith("bwrap: "):
        detail = tail[-1].removeprefix("bwrap: ")
        if detail.startswith("execvp "):  # the command itself is not there: the step's own fault
            message = f"the command could not be started: {detail.removeprefix('execvp ')}"
        else:
            message = f"the sandbox could not start the step: {detail}"
        return RunResult(exit_code, None, message, tail, ms_since(started))
    message = "" if exit_code == 0 else f"the command exited with code {exit_code}"
    return RunResult(exit_code, None, message, tail, ms_since(started))


def limit_message(reason: str, limits: Limits) -> str:
    messages = {
        "timeout": f"the step ran longer than its time limit of {_duration(limits.timeout_s)} "
                   "and was stopped",
        "memory": f"the step used more than its memory limit of {_size(limits.memory_bytes)} "
                  "and was killed",
        "pids": f"the step tried to run more than {limits.pids} processes at once (its process "
                "limit) and was stopped; is something forking without end?",
        "output": f"the step printed more than {_size(limits.output_bytes)} of output and was "
                  "stopped; send a noisy command's output to a file or to /dev/null",
        "disk": f"the step wrote more than {_size(limits.disk_bytes)} to its layer (its disk "
                "limit) and was stopped",
        "cancelled": "the build was cancelled",
    }
    return messages[reason]


def _size(n: int) -> str:
    for unit, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= unit:
            return f"{round(n / unit, 1):g} {name}"
    return f"{n} bytes"


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


def ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# -- output -----------------------------------------------------------------------------------


class Output:
    """Decodes both streams, hands them on in line-sized chunks, counts bytes against the
    limit and keeps the last lines."""

    def __init__(self, limit: int, callback: OutputCallback | None) -> None:
        self.limit, self.total, self.callback = limit, 0, callback
        self.decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in ("stdout", "stderr")}
        self.partial = {"stdout": "", "stderr": ""}  # decoded, not handed on yet
        self.line = {"stdout": "", "stderr": ""}  # the unfinished line, for the tail
        self.lines: deque[str] = deque(maxlen=TAIL_LINES)

    def feed(self, stream: str, data: bytes) -> bool:
        """Take a chunk; False once the output is over the limit (only what fits is kept)."""
        room = self.limit - self.total
        self.total += len(data)
        text = self.partial[stream] + self.decoders[stream].decode(data[:max(room, 0)])
        cut = text.rfind("\n") + 1
        if cut == 0 and len(text) >= PARTIAL_FLUSH_CHARS:
            cut = len(text)
        self.partial[stream] = text[cut:]
        if cut:
            self._emit(stream, text[:cut])
        return self.total <= self.limit

    def pending(self) -> bool:
        return bool(self.partial["stdout"] or self.partial["stderr"])

    def flush(self, stream: str | None = None, *, final: bool = False) -> None:
        for name in (stream,) if stream else ("stdout", "stderr"):
            text = self.partial[name] + (self.decoders[name].decode(b"", final=True) if final else "")
            self.partial[name] = ""
            if text:
                self._emit(name, text)
            if final and self.line[name]:
                self.lines.append(_tail_line(self.line[name]))
                self.line[name] = ""

    def tail(self) -> list[str]:
        return list(self.lines)

    def _emit(self, stream: str, text: str) -> None:
        if self.callback is not None:
            self.callback(stream, text)
        parts = (self.line[stream] + text).split("\n")
        self.line[stream] = parts[-1][-4 * TAIL_LINE_CHARS:]
        self.lines.extend(_tail_line(line) for line in parts[-TAIL_LINES - 1:-1])


def _tail_line(line: str) -> str:
    # A progress bar redraws its line with \r: the tail shows what was on screen last.
    shown = line.rstrip("\r").rsplit("\r", 1)[-1]
    return shown[:TAIL_LINE_CHARS]

