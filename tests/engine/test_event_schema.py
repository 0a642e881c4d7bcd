"""The events' JSON Schema: exported from the engine's event classes, checked in, and every
recorded event stream in the repository holds to it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from builds.engine.events import SCHEMA_FILE, json_schema, schema_text

PROJECT = Path(__file__).resolve().parents[2]
RECORDED = sorted(
    PROJECT / name
    for name in subprocess.run(
        ["git", "ls-files", "*.jsonl"], cwd=PROJECT, capture_output=True, text=True, check=True
    ).stdout.split()
)


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
    ],
)
def test_unknown_types_fields_and_wrong_shapes_fail(event: dict[str, object]) -> None:
    assert not validator().is_valid(event)


def test_the_schema_is_available_to_an_api_description() -> None:
    assert set(json_schema()["discriminator"]["mapping"]) == {
        "build.started", "step.started", "step.log", "image.pull", "step.finished", "build.finished",
    }
