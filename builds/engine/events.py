"""The build's events: one schema for the command line, the Celery task, the websocket and the page.

Every event is a JSON object with `type` and `seq` (1, 2, 3... within one build). The engine
reports through one injected callback, so the CLI, the worker and the tests each plug in their
own sink.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

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

    def emit(self, type_: str, **fields: Any) -> Event:
        fields = {name: printable(value) for name, value in fields.items()}
        with self._lock:
            self._seq += 1
            event: Event = {"type": type_, "seq": self._seq, **fields}
            if self._sink is not None:
                self._sink(event)
        return event
