"""One build's events give the same numbers on every page: the engine's build.finished, the API's
build, the history, the comparison's facts and the class grid all count with
builds.engine.verdicts.tally, tested here against real builds' recorded events (the same files
frontend/src/verdicts.test.ts reads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from builds import services
from builds.compare.report import _build_facts
from builds.engine.verdicts import VERDICTS, cache_counts, tally
from builds.models import Build
from studio.classrooms.selectors import build_brief
from studio.models import User
from studio.projects.models import Project
from studio.projects.services import project_create, revision_snapshot

FIXTURES = Path(__file__).resolve().parents[2] / "frontend" / "src" / "fixtures" / "builds"
EXPECTED: dict[str, dict[str, int]] = json.loads((FIXTURES / "expected.json").read_text())


def recorded(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / f"{name}.jsonl").read_text().splitlines() if line]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_engine_counts_its_events_as_a_person_counts_the_bands(name: str) -> None:
    events = recorded(name)
    assert tally(events) == EXPECTED[name]
    assert events[-1]["counts"] == EXPECTED[name]
    assert events[-1]["cache"] == cache_counts(EXPECTED[name])
    # A FROM is a base, never counted; every other step has exactly one verdict.
    steps = [e for e in events if e["type"] == "step.finished" and e["keyword"] != "FROM"]
    assert len(steps) == sum(EXPECTED[name].values())


def test_a_metadata_step_is_never_cached_and_a_cancelled_one_never_failed() -> None:
    first = {e["instruction"]: e["status"] for e in recorded("first") if e["type"] == "step.finished"}
    assert first['CMD ["cat", "/built"]'] == "metadata" and first["ENV MODE=dev"] == "metadata"
    cancelled = [e for e in recorded("cancelled") if e["type"] == "step.finished" and e["keyword"] == "RUN"]
    assert cancelled[-1]["status"] == "cancelled"


@pytest.fixture
def alice() -> tuple[User, Client, Project]:
    user = User.objects.create_user(username="alice", password="x")
    client = Client()
    client.force_login(user)
    return user, client, project_create(owner=user, name="p", dockerfile="FROM busybox:1.36\nRUN true\n")


def replayed(user: User, project: Project, number: int, events: list[dict[str, Any]]) -> Build:
    """A build whose worker sent `events`, through the one function the worker sends them by."""
    build = Build.objects.create(
        project=project, number=number, revision=revision_snapshot(project=project), requested_by=user,
        status=Build.Status.RUNNING, cache_scope=f"user:{user.pk}",
    )
    for event in events:
        services.publish_build_event(build_id=build.id, event=event)
    build.refresh_from_db()
    return build


@pytest.mark.django_db
def test_every_page_shows_the_same_numbers_for_one_builds_events(alice: tuple[User, Client, Project]) -> None:
    user, client, project = alice
    builds = {name: replayed(user, project, n, recorded(name)) for n, name in enumerate(sorted(EXPECTED), 1)}
    listed = {b["id"]: b for b in client.get(f"/api/projects/{project.id}/builds/").json()["builds"]}
    for name, build in builds.items():
        want = EXPECTED[name]
        shown = client.get(f"/api/builds/{build.id}/").json()
        hits, total = want["cached"], want["cached"] + want["built"]
        ratio = round(hits / total, 3) if total else None
        assert shown["counts"] == want, name
        assert tally(shown["steps"]) == want, name  # the bands
        assert shown["cache"] == cache_counts(want) and shown["hit_ratio"] == ratio, name
        assert (listed[build.id]["counts"], listed[build.id]["hit_ratio"]) == (want, ratio), name
        assert _build_facts(build)["counts"] == want, name
        brief = build_brief(build)
        assert brief["counts"] == want and brief["cache"] == cache_counts(want), name
        cells = [c["status"] for c in brief["steps"]]
        assert {v: cells.count(v) for v in VERDICTS} == {
            v: want[v] + sum(1 for s in shown["steps"] if s["keyword"] == "FROM" and s["status"] == v)
            for v in VERDICTS
        }, name
