"""A project's history of builds: each with its cache hit ratio, and the list as cheap for fifty builds
as for one."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from builds import services
from builds.models import Build
from studio.models import User
from studio.projects.models import Project
from studio.projects.services import project_create, revision_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> tuple[User, Client, Project]:
    user = User.objects.create_user(username="alice", password="x")
    client = Client()
    client.force_login(user)
    return user, client, project_create(owner=user, name="p", dockerfile="FROM busybox:1.36\nRUN true\n")


def finished(user: User, project: Project, number: int, hits: int, misses: int) -> Build:
    return Build.objects.create(
        project=project,
        number=number,
        revision=revision_snapshot(project=project),
        requested_by=user,
        status=Build.Status.SUCCEEDED,
        cache_hits=hits,
        cache_misses=misses,
        image_digest="sha256:" + "a" * 64,
        image_size=1000 + number,
        image_layers=2,
        duration_ms=40,
    )


def history(client: Client, project: Project) -> list[dict[str, Any]]:
    answer = client.get(f"/api/projects/{project.id}/builds/")
    assert answer.status_code == 200
    builds: list[dict[str, Any]] = answer.json()["builds"]
    return builds


def test_each_build_says_how_much_of_it_came_from_the_cache(alice: tuple[User, Client, Project]) -> None:
    user, client, project = alice
    finished(user, project, 1, hits=0, misses=4)
    finished(user, project, 2, hits=3, misses=1)
    finished(user, project, 3, hits=2, misses=1)
    Build.objects.create(
        project=project, number=4, revision=revision_snapshot(project=project), requested_by=user
    )
    listed = {b["number"]: b for b in history(client, project)}
    assert {n: b["hit_ratio"] for n, b in listed.items()} == {1: 0.0, 2: 0.75, 3: 0.667, 4: None}
    assert listed[2]["image"] == {"digest": "sha256:" + "a" * 64, "size": 1002, "layers": 2}
    assert (listed[2]["status"], listed[2]["duration_ms"], listed[2]["cache"]) == (
        "succeeded",
        40,
        {"hits": 3, "misses": 1},
    )


def test_the_list_costs_the_same_queries_for_fifty_builds_as_for_one(
    alice: tuple[User, Client, Project], settings: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Looking at builds also reaps stale ones, at most once a heartbeat: keep that out of both
    # counts, or the first request pays for it whenever the clock says so.
    settings.BUILD_HEARTBEAT_S = 3600
    monkeypatch.setattr(services, "_last_reap", time.monotonic())
    user, client, project = alice
    finished(user, project, 1, hits=1, misses=1)
    with CaptureQueriesContext(connection) as one:
        assert len(history(client, project)) == 1
    for number in range(2, 51):
        finished(user, project, number, hits=1, misses=1)
    with CaptureQueriesContext(connection) as fifty:
        assert len(history(client, project)) == 50
    assert len(fifty.captured_queries) == len(one.captured_queries)
