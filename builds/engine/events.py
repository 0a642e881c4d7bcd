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
from typing import Any, Final, TypedDict

# msgspec (pinned in requirements.txt) rather than pydantic: it imports in a few milliseconds, and
# the command line's start on a cached build is measured; pydantic alone costs ~100 ms.
import msgspec

from .printable import printable
from .reasons import Reason
from .verdicts import Outcome, Verdict, VerdictCounts

Event = dict[str, Any]
Sink = Callable[[Event], None]

BUILD_STARTED = "build.started"
STEP_STARTED = "step.started"
STEP_LOG = "step.log"
STEP_FINISHED = "step.finished"
BUILD_FINISHED = "build.finished"
IMAGE_PULL = "image.pull"
IMAGE_PUSH = "image.push"

# A step's status in `step.finished` (its verdict: see verdicts.py).
CACHED: Final = "cached"
BUILT: Final = "built"
METADATA: Final = "metadata"
SKIPPED: Final = "skipped"
CANCELLED: Final = "cancelled"
FAILED: Final = "failed"


UNSET = msgspec.UNSET
Details = dict[str, Any]


# The facts events carry as plain dicts (the builder has them so, from its cache records): typed
# for the schema and the checkers, the same on the wire.
class FileChanges(TypedDict):
    added: int
    modified: int
    deleted: int


class LayerFacts(TypedDict):
    digest: str
    size: int
    files: FileChanges


class BaseFacts(TypedDict):
    ref: str  # as the FROM names it, or `stage <name>`
    digest: str
    size: int
    layers: int


class ImageFacts(TypedDict):
    digest: str
    size: int
    layers: int
    tag: str | None


class HitsAndMisses(TypedDict):
    hits: int
    misses: int


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


class _Transfer(_Event, kw_only=True):
    """An image's transfer progress (see registry/transfer.py for the statuses). The fields are
    declared in the order they go on the wire."""

    step: int | msgspec.UnsetType = UNSET  # the build step it is part of: a pull for a FROM
    image: str
    layer: str | None  # a blob's digest, or null for the image as a whole
    current: int  # bytes
    total: int
    status: str
    digest: str | msgspec.UnsetType = UNSET
    layers: int | msgspec.UnsetType = UNSET
    image_id: str | msgspec.UnsetType = UNSET


class ImagePull(_Transfer, tag=IMAGE_PULL, kw_only=True):
    """A base image's pull progress, while its FROM step runs (with its `step`), or on its own
    (`images pull` on the command line, without one)."""


class ImagePush(_Transfer, tag=IMAGE_PUSH, kw_only=True):
    """An image's push progress (`images push`, or Push on the page): never part of a build's
    stream."""

    source: str | msgspec.UnsetType = UNSET  # a `mounted` layer's repository ("host/path")


class StepFinished(_Event, tag=STEP_FINISHED, kw_only=True):
    """A step's verdict. The fields are declared in the order they go on the wire: the step,
    then its verdict, then what it made, then how long it took."""

    step: int
    stage: str
    instruction: str
    line: int
    keyword: str | msgspec.UnsetType = UNSET
    status: Verdict
    cached: bool
    cache_key: str | None = None
    reason: Reason | None = None  # why it was not served from the cache, or not run
    layer: LayerFacts | None = None  # null: the step changed no files
    base: BaseFacts | msgspec.UnsetType | None = UNSET  # a FROM's
    metadata: bool | msgspec.UnsetType = UNSET
    error: Details | msgspec.UnsetType = UNSET
    duration_ms: int


class BuildFinished(_Event, tag=BUILD_FINISHED, kw_only=True):
    """`build.finished`, the one way every part (the engine, the studio closing a build the engine
    did not finish) makes it. Fields left UNSET are not on the wire: a build that succeeded has no
    `error`, and a build the engine never reached has no `counts`."""

    status: Outcome
    image: ImageFacts | None = None
    cache: HitsAndMisses = msgspec.field(default_factory=lambda: HitsAndMisses(hits=0, misses=0))
    counts: VerdictCounts | msgspec.UnsetType = UNSET
    duration_ms: int = 0
    error: Details | msgspec.UnsetType = UNSET


AnyEvent = BuildStarted | StepStarted | StepLog | ImagePull | StepFinished | BuildFinished
TransferEvent = ImagePull | ImagePush


def json_schema() -> dict[str, Any]:
    """The events' JSON Schema, exported from the classes above: what events.schema.json holds,
    and what an API description can include. A field is required when it is always on the wire:
    unless it may be left UNSET (a default of None or 0 still goes out)."""
    schema = msgspec.json.schema(AnyEvent)
    classes = {cls.__name__: cls for cls in _structs(msgspec.Struct)}
    for name, definition in schema["$defs"].items():
        if "description" in definition:  # a docstring, as its class's source indents it
            definition["description"] = " ".join(definition["description"].split())
        if name not in classes:  # a TypedDict: its schema says what is required already
            continue
        fields = msgspec.structs.fields(classes[name])
        always = {f.encode_name for f in fields if f.default is not UNSET}
        definition["required"] = sorted({*definition.get("required", ()), *always})
        if "seq" in definition["properties"]:
            definition["properties"]["seq"] = {"type": "integer", "minimum": 1}
    return schema


def _structs(cls: type) -> list[type]:
    """Every class of the engine's below `cls`: the events, and the parts they are made of."""
    found: list[type] = []
    subclasses: list[type] = cls.__subclasses__()
    for sub in subclasses:
        if sub.__module__.startswith("builds.engine"):
            found.append(sub)
        found.extend(_structs(sub))
    return found


SCHEMA_FILE = Path(__file__).with_name("events.schema.json")


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def wire(event: AnyEvent | ImagePush, seq: int) -> Event:
    """The event as it goes out, numbered `seq`: `type` and `seq` first, then its fields in the
    order its class declares them, the ones left UNSET absent, every string valid UTF-8."""
    return printable(msgspec.to_builtins(msgspec.structs.replace(event, seq=seq)))


class Emitter:
    """Numbers events and hands them to the sink. Thread-safe: a RUN step's output arrives on
    the sandbox's reader while the builder's thread may emit too."""

    def __init__(self, sink: Sink | None) -> None:
        self._sink = sink
        self._seq = 0
        self._lock = threading.Lock()

    def emit(self, event: AnyEvent | ImagePush) -> Event:
        with self._lock:
            self._seq += 1
            sent = wire(event, self._seq)
            if self._sink is not None:
                self._sink(sent)
        return sent


if __name__ == "__main__":  # `python -m builds.engine.events` rewrites the checked-in schema
    # From the module as the engine imports it, not this copy run as __main__.
    from builds.engine import events

    events.SCHEMA_FILE.write_text(events.schema_text())
