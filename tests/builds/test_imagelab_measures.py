"""Starting squash measures: only a succeeded build of one's own project, one measure per person
at a time, a stale one (its worker lost) started again. The task itself is sent by name; here it
is caught at the sending, as the live tests (test_imagelab_live.py) run it for real."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from builds import imagelab
from builds.models import Build
from studio.models import User
from studio.projects.services import project_create, revision_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    settings.STUDIO_DATA_DIR = tmp_path / "store"
    settings.VAR_DIR = tmp_path / "var"
    found: list[tuple[Any, ...]] = []
    monkeypatch.setattr(imagelab.current_app, "send_task", lambda name, args: found.append((name, *args)))
    return found


def succeeded(owner: User, name: str) -> Build:
    project = project_create(owner=owner, name=name, dockerfile="FROM busybox\n")
    revision = revision_snapshot(project=project)
    return Build.objects.create(project=project, number=1, revision=revision, requested_by=owner,
                                status=Build.Status.SUCCEEDED, image_digest="sha256:" + "a" * 64)


def test_one_measure_at_a_time_and_a_stale_one_may_start_again(sent: list[tuple[Any, ...]]) -> None:
    alice = User.objects.create_user(username="alice", password="x")
    first, second = succeeded(alice, "one"), succeeded(alice, "two")
    client = Client()
    client.force_login(alice)

    assert client.post(f"/api/builds/{first.id}/squash/", {"file": "app.sh"},
                       content_type="application/json").status_code == 202
    again = client.post(f"/api/builds/{first.id}/squash/", {}, content_type="application/json")
    assert again.status_code == 202 and again.json()["status"] == "queued"
    busy = client.post(f"/api/builds/{second.id}/squash/", {}, content_type="application/json")
    assert busy.status_code == 429 and "one measure at a time" in busy.json()["error"]
    assert len(sent) == 1 and sent[0][1:] == (first.id, alice.id, "app.sh")

    # Its worker was lost: after a quarter of an hour the next may start.
    imagelab._write_at(imagelab._measure_path(f"squash-{first.id}"), {"status": "running",
                                                          "at": time.time() - imagelab.MEASURE_STALE_S - 1})
    assert client.post(f"/api/builds/{second.id}/squash/", {},
                       content_type="application/json").status_code == 202
    assert client.get(f"/api/builds/{second.id}/squash/").json() == {"status": "queued", "edit_file": None}


def test_a_build_that_did_not_succeed_cannot_be_measured(sent: list[tuple[Any, ...]]) -> None:
    alice = User.objects.create_user(username="alice", password="x")
    build = succeeded(alice, "one")
    Build.objects.filter(id=build.id).update(status=Build.Status.FAILED)
    client = Client()
    client.force_login(alice)
    refused = client.post(f"/api/builds/{build.id}/squash/", {}, content_type="application/json")
    assert refused.status_code == 400 and "succeeded" in refused.json()["error"]
    assert sent == []
