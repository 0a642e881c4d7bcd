"""The events' JSON Schema: exported from the engine's event classes, checked in, and every
recorded event stream in the repository holds to it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import jsonschema
import msgspec
import pytest

from builds.engine.events import SCHEMA_FILE, AnyEvent, Emitter, StepStarted, json_schema, schema_text

from .conftest import BASE, Project

PROJECT = Path(__file__).resolve().parents[2]
RECORDED = sorted(
    PROJECT / name
    for name in subprocess.run(
        ["git", "ls-files", "*.jsonl"], cwd=PROJECT, capture_output=True, text=True, check=True
    ).stdout.split()
)


# A step.finished that holds to the schema, for the cases that change one field of it.
STEP = {
    "type": "step.finished", "seq": 3, "step": 2, "stage": "0", "instruction": "RUN make", "line": 2,
    "keyword": "RUN", "status": "built", "cached": False, "cache_key": "sha256:" + "0" * 64,
    "reason": {"code": "no_cache", "message": "Rebuilt because the build ran with --no-cache."},
    "layer": None, "duration_ms": 5,
}


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


def test_the_checked_in_schema_is_what_the_classes_export() -> None:
    assert SCHEMA_FILE.read_text() == schema_text(), "run: python -m builds.engine.events"


def test_the_repository_has_recorded_streams() -> None:
    assert len(RECORDED) >= 5


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: str(p.relative_to(PROJECT)))
def test_every_recorded_event_holds_to_the_schema(path: Path) -> None:
    check = validator()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            errors = [e.message for e in check.iter_errors(json.loads(line))]
            assert not errors, f"{path.name} line {number}: {errors}"


@pytest.mark.parametrize(
    "event",
    [
        {"type": "build.exploded", "seq": 1},
        {"type": "step.started", "seq": 1, "step": 1, "surprise": True},
        {"type": "step.started", "step": 1},
        {"type": "build.finished", "seq": 2, "status": "succeeded", "cache": {"hits": "1"}},
        STEP | {"status": "rebuilt"},
        STEP | {"reason": {"code": "cosmic_ray", "message": "Rebuilt because of a cosmic ray."}},
        STEP | {"reason": {"code": "files_changed", "message": "Rebuilt.", "from": None}},
        STEP | {"reason": {"code": "parent_rebuilt", "message": "R.", "parent_step": "1", "cause_step": 1}},
    ],
)
def test_unknown_types_fields_and_wrong_shapes_fail(event: dict[str, object]) -> None:
    assert not validator().is_valid(event)


def test_the_schema_is_available_to_an_api_description() -> None:
    assert set(json_schema()["discriminator"]["mapping"]) == {
        "build.started", "step.started", "step.log", "image.pull", "step.finished", "build.finished",
    }


def test_every_event_of_a_build_goes_out_as_its_class_declares_it(project: Callable[..., Project]) -> None:
    """Each kind of event is made by its class, so it has one layout on the wire: its fields in
    the declared order, whatever the step's verdict (built, cached, metadata only, failed, not
    run, a stage not needed)."""
    dockerfile = (
        f"FROM {BASE} AS unused\nRUN echo never\n"
        f"FROM {BASE}\nENV A=1\nRUN echo out && echo err >&2\nRUN exit 3\nRUN echo after\n"
    )
    proj = project({"Dockerfile": dockerfile})
    events = proj.build().events + proj.build().events
    classes = {cls.__struct_config__.tag: cls for cls in get_args(AnyEvent)}
    statuses = {e.get("status") for e in events if e["type"] == "step.finished"}
    assert statuses == {"cached", "built", "metadata", "failed", "skipped"}
    for event in events:
        declared = ["type", *(f.encode_name for f in msgspec.structs.fields(classes[event["type"]]))]
        assert list(event) == [name for name in declared if name in event], event
        assert validator().is_valid(event), event


def test_an_event_is_emitted_only_as_an_object_of_its_class() -> None:
    sent: list[dict[str, object]] = []
    emitter = Emitter(sent.append)
    emitter.emit(StepStarted(step=4))
    assert sent == [{"type": "step.started", "seq": 1, "step": 4}]
    with pytest.raises(TypeError):
        emitter.emit("step.started", step=5)  # type: ignore[call-arg]


def test_the_template_step_holds_to_the_schema() -> None:
    assert validator().is_valid(STEP)


def test_the_schema_names_every_reason_code_and_every_status() -> None:
    """A page (and the types generated from the schema) can know every reason a step may give,
    with its details, and every verdict: they are declared once, in the engine."""
    definitions = json_schema()["$defs"]
    null, reason = definitions["StepFinished"]["properties"]["reason"]["anyOf"]
    assert null == {"type": "null"}
    assert set(reason["discriminator"]["mapping"]) == {
        "no_cache", "parent_rebuilt", "base_changed", "first_build", "new_step", "instruction_changed",
        "step_inserted", "step_removed", "setting_changed", "files_changed", "mount_files_changed",
        "mounts_changed", "env_changed", "build_arg_changed", "same_step", "source_rebuilt", "not_run",
        "not_needed",
    }
    assert definitions["FilesChanged"]["required"] == [
        "added", "code", "counts", "from", "message", "modified", "removed"
    ]
    assert set(definitions["StepFinished"]["properties"]["status"]["enum"]) == {
        "built", "cached", "metadata", "skipped", "cancelled", "failed"
    }
    outcomes = definitions["BuildFinished"]["properties"]["status"]["enum"]
    assert set(outcomes) == {"succeeded", "failed", "cancelled"}


def test_a_first_build_reason_the_studio_added_changes_to_holds_to_the_schema() -> None:
    """The studio tells a first build in a new shared cache what changed since the person's last
    build (services.reason_with_changes): the schema knows that detail too."""
    from builds.services import reason_with_changes

    first = {"code": "first_build", "message": "Built for the first time."}
    changes = {"build": 3, "files": ["app.py"], "build_args": []}
    assert validator().is_valid(STEP | {"reason": reason_with_changes(first, changes)})
