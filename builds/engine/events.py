"""The build's events: one schema for the command line, the Celery task, the websocket and the page.

Every event is a JSON object with `type` and `seq` (1, 2, 3... within one build). The engine
reports through one injected callback, so the CLI, the worker and the tests each plug in their
own sink.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
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


UNSET = msgspec.UNSET
Details = dict[str, Any]


class _Event(msgspec.Struct, kw_only=True, tag_field="type", forbid_unknown_fields=True):
    """Every event has `type` (the tag) and `seq`; the Emitter numbers it, so a constructor
    leaves `seq` out and the exported schema marks it required (see `json_schema`)."""

    seq: int = 0


class StepRef(msgspec.Struct, forbid_unknown_fields=True):
    step: int
    stage: str
    instruction: str
    line: int


class BuildStarted(_Event, tag=BUILD_STARTED, kw_only=True):
    steps: list[StepRef]
    target: str | msgspec.UnsetType = UNSET
    dockerfile: str | msgspec.UnsetType = UNSET


class StepStarted(_Event, tag=STEP_STARTED, kw_only=True):
    step: int


class StepLog(_Event, tag=STEP_LOG, kw_only=True):
    step: int
    stream: str  # stdout | stderr
    text: str


class ImagePull(_Event, tag="image.pull", kw_only=True):
    """A base image's pull progress, while its FROM step runs."""

    step: int
    status: str
    image: str | msgspec.UnsetType = UNSET
    layer: str | msgspec.UnsetType | None = UNSET
    current: int | msgspec.UnsetType = UNSET
    total: int | msgspec.UnsetType = UNSET
    digest: str | msgspec.UnsetType = UNSET
    image_id: str | msgspec.UnsetType = UNSET
    layers: int | msgspec.UnsetType = UNSET


class StepFinished(_Event, tag=STEP_FINISHED, kw_only=True):
    step: int
    stage: str
    instruction: str
    line: int
    keyword: str | msgspec.UnsetType = UNSET
    status: str  # cached | built | metadata | skipped | cancelled | failed
    cached: bool
    cache_key: str | None
    reason: Details | None
    layer: Details | None
    duration_ms: int
    base: Details | msgspec.UnsetType | None = UNSET
    metadata: bool | msgspec.UnsetType = UNSET
    error: Details | msgspec.UnsetType = UNSET


class BuildFinished(_Event, tag=BUILD_FINISHED, kw_only=True):
    """`build.finished`, the one way every part (the engine, the studio closing a build the engine
    did not finish) makes it. Fields left UNSET are not on the wire: a build that succeeded has no
    `error`, and a build the engine never reached has no `counts`."""

    status: str  # succeeded | failed | cancelled
    image: Details | None = None
    cache: dict[str, int] = msgspec.field(default_factory=lambda: {"hits": 0, "misses": 0})
    counts: Details | msgspec.UnsetType = UNSET
    duration_ms: int = 0
    error: Details | msgspec.UnsetType = UNSET

    @property
    def type_(self) -> str:
        return BUILD_FINISHED

    def fields(self) -> dict[str, Any]:
        """The event's fields in wire order, without `type` and `seq` (the Emitter adds them)."""
        wire = msgspec.to_builtins(self)
        del wire["type"], wire["seq"]
        return wire


AnyEvent = BuildStarted | StepStarted | StepLog | ImagePull | StepFinished | BuildFinished


def json_schema() -> dict[str, Any]:
    """The events' JSON Schema, exported from the classes above: what events.schema.json holds,
    and what an API description can include."""
    schema = msgspec.json.schema(AnyEvent)
    for name, definition in schema["$defs"].items():
        if name != "StepRef":
            definition["required"] = sorted({*definition.get("required", ()), "seq"})
            definition["properties"]["seq"] = {"type": "integer", "minimum": 1}
    return schema


SCHEMA_FILE = Path(__file__).with_name("events.schema.json")


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


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


if __name__ == "__main__":  # `python -m builds.engine.events` rewrites the checked-in schema
    SCHEMA_FILE.write_text(schema_text())
