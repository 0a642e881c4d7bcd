"""Builds in this process, with no worker: what is refused before a build is queued (with the
limit or the line named), the claim that keeps a project's builds in order, the one publish
function, and the reaper. The same things end to end are in test_builds_live.py."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from builds import services
from builds.engine.store import Store
from builds.models import Build, BuildEvent, Step
from builds.tasks import store_evict, store_tidy
from studio.models import User
from studio.projects.models import Project
from studio.projects.services import project_create
from tests.engine.test_sharedcache import layer_tar

pytestmark = pytest.mark.django_db

GOOD = "FROM busybox:latest AS base\nRUN echo one\n\nFROM base AS app\nRUN echo two\n"


class Person:
    def __init__(self, username: str) -> None:
        self.user = User.objects.create_user(username=username, password="x")
        self.client = Client()
        self.client.force_login(self.user)

    def project(self, dockerfile: str = GOOD, name: str = "p") -> Project:
        return project_create(owner=self.user, name=name, dockerfile=dockerfile)

    def build(self, project: Project, **options: Any) -> Any:
        return self.client.post(
            f"/api/projects/{project.id}/builds/", json.dumps(options), content_type="application/json"
        )


@pytest.fixture
def alice() -> Person:
    return Person("alice")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The builds sent to the workers (none are, in this process)."""
    ids: list[int] = []
    monkeypatch.setattr(services, "_enqueue", ids.append)
    return ids


def queued(person: Person, project: Project, **options: Any) -> Build:
    return services.build_create(project=project, user=person.user, **options)


def test_a_build_request_is_queued_with_its_options_and_a_revision(alice: Person) -> None:
    project = alice.project()
    made = alice.build(project, target="base", build_args={"V": "1"}, no_cache=True)
    assert made.status_code == 202
    build = made.json()
    assert build["status"] == "queued" and build["number"] == 1
    assert (build["target"], build["build_args"], build["no_cache"]) == ("base", {"V": "1"}, True)
    assert len(build["revision"]) == 64
    assert alice.build(project).json()["number"] == 2


def test_a_dockerfile_that_does_not_parse_is_refused_naming_its_line(alice: Person) -> None:
    refused = alice.build(alice.project("FROM busybox\nRUN echo ok\nCOPY onlyone\n"))
    assert refused.status_code == 400
    assert refused.json()["file"] == "Dockerfile" and refused.json()["line"] == 3
    assert Build.objects.count() == 0


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"target": "nope"}, "target", "has no stage 'nope' (its stages: base, app)"),
        ({"build_args": {"1BAD": "x"}}, "build_args", "is not a valid name"),
        ({"build_args": ["V=1"]}, "build_args", "must be an object"),
        ({"no_cache": "yes"}, "no_cache", "must be true or false"),
    ],
)
def test_a_malformed_option_is_refused_naming_the_field(
    alice: Person, options: dict[str, Any], field: str, says: str
) -> None:
    refused = alice.build(alice.project(), **options)
    assert refused.status_code == 400
    assert refused.json()["field"] == field and says in refused.json()["error"]


def test_building_faster_than_the_rate_limit_gets_a_429_naming_it(alice: Person, settings: Any) -> None:
    settings.BUILD_RATE_PER_MINUTE = 2
    project = alice.project()
    assert [alice.build(project).status_code for _ in range(2)] == [202, 202]
    refused = alice.build(project)
    assert refused.status_code == 429
    assert refused.json()["limit"] == "builds_per_minute" and refused.json()["max"] == 2
    assert "STUDIO_BUILD_RATE_PER_MINUTE" in refused.json()["error"]
    assert int(refused["Retry-After"]) >= 1
    # Someone else is not held back by Alice's builds.
    bob = Person("bob")
    assert bob.build(bob.project()).status_code == 202


def test_a_full_queue_gets_a_429_until_a_build_leaves_it(alice: Person, settings: Any) -> None:
    settings.BUILD_QUEUE_PER_USER = 1
    project = alice.project()
    first = alice.build(project).json()
    refused = alice.build(project)
    assert refused.status_code == 429 and refused.json()["limit"] == "queued_builds_per_user"
    alice.client.post(f"/api/builds/{first['id']}/cancel/")
    assert alice.build(project).status_code == 202


def test_only_the_projects_oldest_queued_build_is_claimed_and_never_beside_a_running_one(
    alice: Person,
) -> None:
    project, other = alice.project(name="a"), alice.project(name="b")
    first, second = queued(alice, project), queued(alice, project)
    elsewhere = queued(alice, other)

    assert services.build_start(build_id=second.id, worker="w1") is None  # waits its turn
    assert services.build_start(build_id=first.id, worker="w1") is not None
    assert services.build_start(build_id=first.id, worker="w2") is None  # claimed once only
    assert services.build_start(build_id=second.id, worker="w2") is None  # the first still runs
    assert services.build_start(build_id=elsewhere.id, worker="w2") is not None  # another project's


def test_the_end_of_a_build_sends_the_projects_next_one(
    alice: Person, sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    project = alice.project()
    first, second = queued(alice, project), queued(alice, project)
    services.build_start(build_id=first.id, worker="w")
    finished = {"type": "build.finished", "seq": 1, "status": "succeeded", "cache": {"hits": 1, "misses": 2}}
    with django_capture_on_commit_callbacks(execute=True):
        services.publish_build_event(build_id=first.id, event=finished)
    assert sent == [second.id]
    assert services.build_start(build_id=second.id, worker="w") is not None


def test_each_event_is_stored_once_and_steps_and_outcome_follow_from_them(alice: Person) -> None:
    build = queued(alice, alice.project())
    services.build_start(build_id=build.id, worker="w")
    step = {
        "type": "step.finished",
        "seq": 2,
        "step": 1,
        "stage": "base",
        "instruction": "FROM busybox:latest AS base",
        "line": 1,
        "keyword": "FROM",
        "status": "cached",
        "cached": True,
        "cache_key": "sha256:k",
        "reason": None,
        "layer": None,
        "duration_ms": 3,
        "base": {"ref": "busybox:latest"},
    }
    assert services.publish_build_event(
        build_id=build.id, event={"type": "build.started", "seq": 1, "steps": []}
    )
    assert services.publish_build_event(build_id=build.id, event=step)
    assert not services.publish_build_event(build_id=build.id, event={**step, "instruction": "again"})
    assert BuildEvent.objects.filter(build=build).count() == 2
    saved = Step.objects.get(build=build, number=1)
    assert (saved.instruction, saved.cached, saved.event["base"]) == (
        "FROM busybox:latest AS base",
        True,
        {"ref": "busybox:latest"},
    )

    image = {"digest": "sha256:abc", "size": 123, "layers": 2}
    services.publish_build_event(
        build_id=build.id,
        event={
            "type": "build.finished",
            "seq": 3,
            "status": "succeeded",
            "image": image,
            "cache": {"hits": 1, "misses": 0},
            "duration_ms": 40,
        },
    )
    build.refresh_from_db()
    # Hits are counted from the stored steps (builds.engine.verdicts), not taken on the event's
    # word: the one step is a FROM, a base, which no page counts as a hit.
    assert (build.status, build.image_digest, build.cache_hits, build.duration_ms) == (
        "succeeded",
        "sha256:abc",
        0,
        40,
    )


def test_a_build_whose_heartbeat_stopped_is_failed_with_a_closing_event(alice: Person, settings: Any) -> None:
    settings.BUILD_STALE_AFTER_S = 30
    project = alice.project()
    dead, alive = queued(alice, project), queued(alice, alice.project(name="other"))
    for build in (dead, alive):
        services.build_start(build_id=build.id, worker="w")
        services.publish_build_event(
            build_id=build.id, event={"type": "build.started", "seq": 1, "steps": []}
        )
    Build.objects.filter(id=dead.id).update(heartbeat_at=timezone.now() - timedelta(seconds=31))

    assert services.builds_reap() == [dead.id]
    dead.refresh_from_db()
    assert dead.status == "failed" and "the worker running this build stopped" in dead.error["message"]
    closing = BuildEvent.objects.get(build=dead, seq=2)
    assert closing.type == "build.finished" and closing.data["error"] == dead.error
    assert Build.objects.get(id=alive.id).status == "running"
    assert services.builds_reap() == []  # once only


def test_a_restarted_worker_fails_what_it_was_running_before_at_once(alice: Person) -> None:
    build = queued(alice, alice.project())
    services.build_start(build_id=build.id, worker="studio@host")
    assert services.builds_reap_worker(worker="studio@other", started=timezone.now()) == []
    assert services.builds_reap_worker(worker="studio@host", started=timezone.now()) == [build.id]
    assert Build.objects.get(id=build.id).status == "failed"


def test_a_queued_build_whose_message_was_lost_is_sent_again(
    alice: Person, settings: Any, sent: list[int]
) -> None:
    settings.BUILD_REQUEUE_AFTER_S = 60
    project = alice.project()
    first, _second = queued(alice, project), queued(alice, project)
    services.builds_reap()
    assert sent == []
    Build.objects.update(enqueued_at=timezone.now() - timedelta(seconds=61))
    services.builds_reap()
    assert sent == [first.id]  # the project's next in line, not the one behind it


def test_cancelling_a_finished_build_is_a_conflict(alice: Person) -> None:
    build = queued(alice, alice.project())
    assert services.build_cancel(build=build).status == "cancelled"
    cancelled = alice.client.post(f"/api/builds/{build.id}/cancel/")
    assert cancelled.status_code == 409
    assert cancelled.json() == {"error": "build #1 has already finished (cancelled)"}


def test_deleting_a_project_takes_its_builds_and_revisions_with_it(alice: Person) -> None:
    project = alice.project()
    build = queued(alice, project)
    services.publish_build_event(build_id=build.id, event={"type": "build.started", "seq": 1, "steps": []})
    assert alice.client.delete(f"/api/projects/{project.id}/").status_code == 200
    assert not Build.objects.exists() and not BuildEvent.objects.exists()
    assert alice.client.get(f"/api/builds/{build.id}/").status_code == 404


def test_the_stores_trash_is_emptied_only_while_no_build_is_queued_or_running(
    alice: Person, settings: Any, tmp_path: Any
) -> None:
    settings.STUDIO_DATA_DIR = str(tmp_path / "store")
    store = Store(settings.STUDIO_DATA_DIR)
    (store.work_dir("step") / "f").write_text("x")
    store.discard(next(store.tmp.glob("step-*")))
    build = queued(alice, alice.project())
    assert store_tidy() == 0  # a build is waiting: deleting now would slow it
    assert len(list(store.trash.iterdir())) == 1
    Build.objects.filter(id=build.id).update(status=Build.Status.SUCCEEDED)
    assert store_tidy() == 1
    assert list(store.trash.iterdir()) == []


def test_a_worker_keeps_its_store_under_studio_store_max_bytes_after_a_build(
    settings: Any, tmp_path: Any
) -> None:
    import os
    import time

    settings.STUDIO_DATA_DIR = str(tmp_path / "store")
    store = Store(settings.STUDIO_DATA_DIR)
    old = store.import_layer(layer_tar("old.bin", b"o" * 5000))
    new = store.import_layer(layer_tar("new.bin", b"n" * 5000))
    long_ago = time.time() - settings.BUILD_TIME_LIMIT_S - 60
    os.utime(store.layers / f"{old.id}.json", (long_ago, long_ago))
    os.utime(store.layers / f"{new.id}.json", (long_ago + 1, long_ago + 1))
    settings.STORE_MAX_BYTES = 0
    assert store_evict() == 0  # no limit set
    settings.STORE_MAX_BYTES = 6000
    assert store_evict() == 1
    assert not store.has_layer(old.id) and store.has_layer(new.id)
