"""A build's steps are their step.finished events, stored once and read back unchanged; steps
stored before, unpacked into columns, become the events the API showed for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from builds import services
from builds.models import Build, Step
from builds.selectors import step_json
from studio.models import User
from studio.projects.services import project_create

PROJECT = Path(__file__).resolve().parents[2]
RECORDED = PROJECT / "frontend/src/fixtures/builds"
BEFORE = ("builds", "0003_models_in_their_apps")  # steps unpacked into columns
AFTER = ("builds", "0006_step_columns_removed")  # steps kept as their events


def recorded_steps(name: str) -> list[dict[str, Any]]:
    """The step.finished events of a build the engine really made (a failed one: a FROM with its
    base, cached and built steps with reasons and layers, the failed step's error, metadata only
    steps, the steps not run)."""
    events = [json.loads(line) for line in (RECORDED / name).read_text().splitlines() if line.strip()]
    return [e for e in events if e["type"] == "step.finished"]


# How a step was stored, and shown, before: services._step_save and selectors.step_json as they were.
OLD_COLUMNS = {
    "step": "number", "stage": "stage", "instruction": "instruction", "line": "line", "keyword": "keyword",
    "status": "status", "cached": "cached", "cache_key": "cache_key", "reason": "reason", "layer": "layer",
    "duration_ms": "duration_ms", "error": "error",
}


def old_step_save(OldStep: Any, build_id: int, event: dict[str, Any]) -> None:
    values = {column: event.get(key) for key, column in OLD_COLUMNS.items() if key != "step"}
    values["cached"] = bool(values["cached"])
    values["duration_ms"] = int(values["duration_ms"] or 0)
    values["keyword"] = values["keyword"] or ""
    values["extra"] = {k: v for k, v in event.items() if k not in OLD_COLUMNS and k not in ("type", "seq")}
    OldStep.objects.update_or_create(build_id=build_id, number=event["step"], defaults=values)


def old_step_json(step: Any) -> dict[str, Any]:
    return {
        "step": step.number,
        "stage": step.stage,
        "instruction": step.instruction,
        "line": step.line,
        "keyword": step.keyword,
        "status": step.status,
        "cached": step.cached,
        "cache_key": step.cache_key,
        "reason": step.reason,
        "layer": step.layer,
        "duration_ms": step.duration_ms,
        **({"error": step.error} if step.error is not None else {}),
        **step.extra,
    }


def a_build() -> Build:
    owner = User.objects.create_user(username="ana", password="x")
    project = project_create(owner=owner, name="p", dockerfile="FROM busybox\n")
    return services.build_create(project=project, user=owner)


def migrate(target: tuple[str, str]) -> Any:
    """Move the database's builds app to `target`; the models (apps) as they were there."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


@pytest.mark.django_db(transaction=True)
def test_steps_stored_as_columns_become_the_events_the_api_showed() -> None:
    build = a_build()
    events = recorded_steps("failed.jsonl") + recorded_steps("cancelled.jsonl")[:1]
    try:
        old = migrate(BEFORE)
        OldStep = old.get_model("builds", "Step")
        for event in events:
            old_step_save(OldStep, build.id, event)
        shown_before = {s.number: old_step_json(s) for s in OldStep.objects.filter(build_id=build.id)}
        assert {s["status"] for s in shown_before.values()} >= {"cached", "built", "failed", "skipped"}
        shown = shown_before.values()
        assert any("base" in s for s in shown) and any("error" in s for s in shown)
        migrate(AFTER)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    steps = {s.number: s for s in Step.objects.filter(build=build)}
    assert steps.keys() == shown_before.keys()
    for number, step in steps.items():
        assert step.event == shown_before[number]
        assert step_json(step) == shown_before[number]
    # ...which is each step's last event, as the engine sent it, without its place in the stream.
    last = {e["step"]: e for e in events}
    assert {n: step_json(s) for n, s in steps.items()} == {
        n: {k: v for k, v in e.items() if k not in ("type", "seq")} for n, e in last.items()
    }


@pytest.mark.django_db
def test_a_step_is_its_event_stored_once_and_read_back_as_it_came() -> None:
    build = a_build()
    services.build_start(build_id=build.id, worker="w")
    events = recorded_steps("failed.jsonl")
    for seq, event in enumerate(events, 2):
        assert services.publish_build_event(build_id=build.id, event={**event, "seq": seq})
    for event in events:
        step = Step.objects.get(build=build, number=event["step"])
        wire = {k: v for k, v in event.items() if k not in ("type", "seq")}
        assert step_json(step) == wire
        assert (step.keyword, step.status) == (event["keyword"], event["status"])
        step_json(step)["size"] = 1  # what a comparison adds to its copy
        assert step_json(step) == wire
