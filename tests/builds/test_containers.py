"""Containers in this process, with no worker: a commit and a removal are asked of the worker whose
store holds the writable layer (sent to its own queue), a commit is marked committed only once its
image is stored, and one whose worker died ends failed with a message. The same end to end are in
test_containers_live.py and, with stores on separate hosts, test_hosts_live.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from builds import locality
from builds import services as build_services
from builds.containers import services, tasks
from builds.containers.models import Container
from builds.engine import container as engine
from builds.engine import image as images
from builds.engine.store import Store
from builds.models import Build
from studio.models import User
from studio.projects.services import project_create
from tests.engine.conftest import BASE, busybox_tarball

# Committed as the web's requests are, so that what they send on commit is sent.
pytestmark = pytest.mark.django_db(transaction=True)

WORKER = "worker-a@host-a"


@pytest.fixture
def store(tmp_path: Path, settings: Any) -> Store:
    """The store of the worker that ran the containers: the one the tasks here use."""
    settings.STUDIO_DATA_DIR = tmp_path / "store"
    store = Store(settings.STUDIO_DATA_DIR)
    images.import_any(store, busybox_tarball(), BASE)
    return store


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, str | None]]:
    """The tasks sent to the workers (none run, in this process): name, container, queue."""
    calls: list[tuple[str, int, str | None]] = []

    def send_task(name: str, args: tuple[int], queue: str | None = None) -> None:
        calls.append((name, args[0], queue))

    monkeypatch.setattr(services.current_app, "send_task", send_task)
    return calls


@pytest.fixture
def alice() -> Client:
    client = Client()
    client.force_login(User.objects.create_user(username="alice", password="x"))
    return client


@pytest.fixture
def alive(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Which workers keep their liveness key (builds.locality), as a test says."""
    workers = {WORKER: True}
    monkeypatch.setattr(locality, "worker_is_alive", lambda worker: workers[worker])
    return workers


@pytest.fixture
def ran(store: Store, alice: Client, monkeypatch: pytest.MonkeyPatch) -> Container:
    """Alice's container of her build's image, run by WORKER: it wrote /new."""
    user = User.objects.get(username="alice")
    project = project_create(owner=user, name="p", dockerfile=f"FROM {BASE}\n")
    monkeypatch.setattr(build_services, "_enqueue", lambda build_id: None)
    build = build_services.build_create(project=project, user=user)
    image = store.get_image(BASE)
    assert image is not None
    Build.objects.filter(id=build.id).update(status=Build.Status.SUCCEEDED, image_digest=image.digest)
    engine_id = engine.create(store)
    (engine.container_path(store, engine_id) / "upper" / "new").write_text("hi\n")
    return Container.objects.create(build=build, owner=user, cmd=["sh", "-c", "echo hi > /new"],
                                    status=Container.Status.EXITED, worker=WORKER, engine_id=engine_id)


def state(found: Container) -> dict[str, Any]:
    found.refresh_from_db()
    return services.container_json(found)


def test_a_commit_is_asked_of_the_worker_holding_the_layer_and_marked_only_once_stored(
    store: Store, alice: Client, ran: Container, sent: list[tuple[str, int, str | None]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = alice.post(f"/api/containers/{ran.id}/commit/")
    assert asked.status_code == 202, asked.content
    assert (asked.json()["status"], asked.json()["committed_image"]) == ("committing", None)
    assert sent == [(services.COMMIT_CONTAINER, ran.id, locality.queue_for(WORKER))]
    assert alice.post(f"/api/containers/{ran.id}/commit/").status_code == 409  # one commit at a time
    assert alice.delete(f"/api/containers/{ran.id}/").status_code == 409  # its layer is in use

    seen: list[str] = []
    commit = engine.commit

    def watched(*args: Any, **kwargs: Any) -> Any:
        made = commit(*args, **kwargs)
        seen.append(Container.objects.get(id=ran.id).status)  # the image is stored by now
        return made

    monkeypatch.setattr(engine, "commit", watched)
    assert tasks.commit_container(ran.id).startswith(f"container {ran.id}: committed sha256:")
    assert seen == ["committing"]
    done = state(ran)
    assert done["status"] == "committed"
    new = store.get_image(done["committed_image"]["digest"])
    assert new is not None and done["committed_image"]["layer"]["id"] == new.layers[-1]
    assert {c.path for c in store.layer(new.layers[-1], changes=True).changes} == {"new"}
    assert not engine.exists(store, ran.engine_id)
    # A message delivered twice commits once.
    assert "not claimed" in tasks.commit_container(ran.id)


def test_a_commit_that_fails_says_why_and_keeps_the_layer_when_it_can(
    store: Store, alice: Client, ran: Container, sent: list[tuple[str, int, str | None]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    commit = engine.commit
    monkeypatch.setattr(engine, "commit", full)
    assert alice.post(f"/api/containers/{ran.id}/commit/").status_code == 202
    tasks.commit_container(ran.id)
    kept = state(ran)
    assert (kept["status"], kept["committed_image"]) == ("exited", None)
    assert kept["message"] == "the container could not be committed: [Errno 28] No space left on device"

    monkeypatch.setattr(engine, "commit", commit)
    engine.remove(store, ran.engine_id)  # the layer went: nothing left to commit again
    assert alice.post(f"/api/containers/{ran.id}/commit/").status_code == 202
    tasks.commit_container(ran.id)
    gone = state(ran)
    assert gone["status"] == "failed" and "has no writable layer" in gone["message"]


def test_a_commit_whose_worker_died_ends_failed_with_a_message(
    alice: Client, ran: Container, sent: list[tuple[str, int, str | None]], settings: Any,
    alive: dict[str, bool],
) -> None:
    assert alice.post(f"/api/containers/{ran.id}/commit/").status_code == 202
    later = timezone.now() + timedelta(seconds=settings.BUILD_STALE_AFTER_S + 1)
    # Its worker lives, busy with something else: the commit waits for it.
    assert services.containers_reap(now=later) == []
    # Its worker is gone before it took the commit: no other store has the layer.
    alive[WORKER] = False
    assert services.containers_reap(now=later) == [ran.id]
    failed = state(ran)
    assert (failed["status"], failed["message"]) == ("failed", services.COMMIT_NOT_TAKEN)
    assert sent[-1] == (services.REMOVE_CONTAINER, ran.id, locality.queue_for(WORKER))
    assert "not claimed" in tasks.commit_container(ran.id)  # when it comes back

    # Taken, then its worker died mid-commit: its heartbeat falls silent.
    Container.objects.filter(id=ran.id).update(status=Container.Status.COMMITTING, heartbeat_at=None)
    assert services.container_commit_claim(container_id=ran.id) is not None
    assert services.containers_reap() == []
    assert services.containers_reap(now=later) == [ran.id]
    assert (state(ran)["status"], state(ran)["message"]) == ("failed", services.COMMIT_WORKER_DIED)


def test_removing_is_at_once_for_the_page_and_the_layer_goes_on_its_own_worker(
    store: Store, alice: Client, ran: Container, sent: list[tuple[str, int, str | None]],
) -> None:
    removed = alice.delete(f"/api/containers/{ran.id}/")
    assert removed.status_code == 200 and removed.json()["status"] == "removed"
    assert sent == [(services.REMOVE_CONTAINER, ran.id, locality.queue_for(WORKER))]
    assert engine.exists(store, ran.engine_id)  # the web's process touched no store
    assert tasks.remove_container(ran.id) == f"container {ran.id}: removed"
    assert not engine.exists(store, ran.engine_id)
    assert alice.post(f"/api/containers/{ran.id}/commit/").status_code == 409


def test_a_run_goes_to_the_worker_that_built_the_image_while_it_lives(
    alice: Client, ran: Container, sent: list[tuple[str, int, str | None]], settings: Any,
    alive: dict[str, bool],
) -> None:
    Build.objects.filter(id=ran.build_id).update(worker=WORKER)
    first = alice.post(f"/api/builds/{ran.build_id}/containers/", {}, content_type="application/json")
    assert first.status_code == 202, first.content
    assert sent[-1] == (services.RUN_CONTAINER, first.json()["id"], locality.queue_for(WORKER))
    # Its worker died before it took the container: failed once its liveness key runs out.
    alive[WORKER] = False
    later = timezone.now() + timedelta(seconds=settings.BUILD_STALE_AFTER_S + 1)
    assert services.containers_reap(now=later) == [first.json()["id"]]
    # With that worker gone, any worker runs the next one (pulling the image if need be).
    second = alice.post(f"/api/builds/{ran.build_id}/containers/", {}, content_type="application/json")
    assert second.status_code == 202, second.content
    assert sent[-1] == (services.RUN_CONTAINER, second.json()["id"], None)
