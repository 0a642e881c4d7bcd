"""The build's events: one schema for the command line, the Celery task, the websocket and the page.

Every event is a JSON object with `type` and `seq` (1, 2, 3... within one build). The engine
reports through one injected callback, so the CLI, the worker and the tests each plug in their
own sink.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

# msgspec (pinned in requirements.txt) rather than pydantic: it imports in a few milliseconds, and
# the command line's start on a cached build is measured; pydantic alone costs ~100 ms.
import msgspec

Event = dict[str, Any]
Sink = Callable[[Event], None]

BUILD_STARTED = "build.started"
STEP_STARTED = "step.started"
STEP_LOG = "step.log"
STEP_FINISHED = "step.finished"
BUILD_FINISHED = "build.finished"

# A step's status in `step.finished` (its verdict: see verdicts.py).
CACHED = "cached"
BUILT = "built"
METADATA = "metadata"
SKIPPED = "skipped"
CANCELLED = "cancelled"
FAILED = "failed"


class BuildFinished(msgspec.Struct, kw_only=True):
    """`build.finished`, the one way every part (the engine, the studio closing a build the engine
    did not finish) makes it. Fields left UNSET are not on the wire: a build that succeeded has no
    `error`, and a build the engine never reached has no `counts`."""

    status: str  # succeeded | failed | cancelled
    image: dict[str, Any] | None = None
    cache: dict[str, int] = msgspec.field(default_factory=lambda: {"hits": 0, "misses": 0})
    counts: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    duration_ms: int = 0
    error: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET

    type_: str = msgspec.field(default=BUILD_FINISHED, name="type")

    def fields(self) -> dict[str, Any]:
        """The event's fields in wire order, without `type` and `seq` (the Emitter adds them)."""
        wire = msgspec.to_builtins(self)
        del wire["type"]
        return wire


def printable(value: Any) -> Any:
    """`value` with every string made valid UTF-8: a file name that is not (read from the
    filesystem as Python does, with its bytes as lone surrogates) gets `\\xNN` for each such
    byte, as Go's %q writes it. JSON, the database and the channel layer then all take it."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return value
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable(v) for v in value]
    return value


class Emitter:
    """Numbers events and hands them to the sink. Thread-safe: a RUN step's output arrives on
    the sandbox's reader while the builder's thread may emit too."""

    def __init__(self, sink: Sink | None) -> None:
        self._sink = sink
        self._seq = 0
        self._lock = threading.Lock()

    def emit(self, type_: str | BuildFinished, **fields: Any) -> Event:
        if isinstance(type_, BuildFinished):
            type_, fields = type_.type_, {**type_.fields(), **fields}
        fields = {name: printable(value) for name, value in fields.items()}
        with self._lock:
            self._seq += 1
            event: Event = {"type": type_, "seq": self._seq, **fields}
            if self._sink is not None:
                self._sink(event)
        return event
