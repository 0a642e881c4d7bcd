"""Containers' business: start one on a person's own finished build, claim it on a worker, keep
its heartbeat and output, finish, fail, reap, commit and remove it. Every state change is a
guarded update on the database row, so a message run twice, or a worker that died, leaves one
consistent answer.

A container's writable layer is in the store of the worker that ran it, which on several hosts
is no other process's: so the web only asks (a commit is `committing` until that worker has
stored the image; a removal is sent to it), and that worker, by its own queue, does the work."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from builds import locality, selectors
from builds.engine import container as engine
from builds.engine.store import Image
from builds.models import Build
from studio.errors import Rejected
from studio.models import User
from studio.projects.selectors import AnyUser

from . import live
from .models import Container

log = logging.getLogger(__name__)

RUN_CONTAINER = "builds.run_container"
COMMIT_CONTAINER = "builds.commit_container"
REMOVE_CONTAINER = "builds.remove_container"
MAX_CMD_WORDS = 64
MAX_CMD_CHARS = 4096
OUTPUT_KEEP_CHARS = 64 << 10  # the latest output a container keeps for a page that comes late
WORKER_DIED = "the worker running this container stopped; run it again"
COMMIT_WORKER_DIED = ("the worker committing this container stopped before the image was stored; "
                      "run it again")
COMMIT_NOT_TAKEN = ("the worker holding this container's writable layer is gone, so it cannot be "
                    "committed; run it again")


# -- reading ------------------------------------------------------------------------------------


def own_build_get(*, user: AnyUser, build_id: int) -> Build:
    """The build, when it is the person's own (their project's); for anyone else it does not
    exist, shared link or not: a container runs as its owner's."""
    build = selectors.build_get(user=user, build_id=build_id)
    if build.project.owner_id != user.pk:
        raise Http404(f"build {build_id} not found")
    return build


def container_get(*, user: AnyUser, container_id: int) -> Container:
    found = Container.objects.select_related("build").filter(id=container_id, owner_id=user.pk).first()
    if found is None or not user.is_authenticated:
        raise Http404(f"container {container_id} not found")
    return found


def container_latest(*, build: Build, user: AnyUser) -> Container | None:
    """The person's newest container of the build that is not removed: the one the page shows."""
    return (Container.objects.filter(build=build, owner_id=user.pk)
            .exclude(status=Container.Status.REMOVED).order_by("-id").first())


def container_json(found: Container) -> dict[str, Any]:
    return {
        "id": found.id,
        "build": found.build_id,
        "status": found.status,
        "cmd": list(found.cmd),
        "exit_code": found.exit_code,
        "message": found.message,
        "output": found.output,
        "output_chars": found.output_chars,
        "output_truncated": found.output_chars > len(found.output),
        "diff": found.diff,
        "committed_image": found.committed_image,
        "queued_at": found.queued_at.isoformat() if found.queued_at else None,
        "finished_at": found.finished_at.isoformat() if found.finished_at else None,
    }


# -- starting -----------------------------------------------------------------------------------


def _clean_cmd(cmd: object) -> list[str]:
    if cmd is None:
        return []
    if not isinstance(cmd, list) or not all(isinstance(word, str) for word in cmd):
        raise Rejected("cmd must be a list of strings (the command and its arguments)", field="cmd")
    if len(cmd) > MAX_CMD_WORDS or sum(len(word) for word in cmd) > MAX_CMD_CHARS:
        raise Rejected(f"cmd may have at most {MAX_CMD_WORDS} words and {MAX_CMD_CHARS} characters",
                       field="cmd")
    if any("\x00" in word for word in cmd):
        raise Rejected("cmd may not hold a NUL character", field="cmd")
    return list(cmd)


def _check_limits(user: User, now: datetime) -> None:
    mine = Container.objects.filter(owner=user)
    if mine.filter(status__in=Container.ACTIVE).exists():
        raise Rejected("your previous container is still running; wait for it to end",
                       kind="too_many", limit="containers_at_once", max=1, retry_after=2)
    per_minute = settings.CONTAINER_RATE_PER_MINUTE
    if mine.filter(queued_at__gte=now - timedelta(minutes=1)).count() >= per_minute:
        raise Rejected(f"you started {per_minute} containers in the last minute, the most allowed "
                       "(STUDIO_CONTAINER_RATE_PER_MINUTE); try again in a minute",
                       kind="too_many", limit="containers_per_minute", max=per_minute, retry_after=60)
    keep = settings.CONTAINER_KEEP_PER_USER
    if mine.filter(status=Container.Status.EXITED).count() >= keep:
        raise Rejected(f"you keep {keep} containers' writable layers, the most allowed "
                       "(STUDIO_CONTAINER_KEEP_PER_USER); remove or commit one first",
                       kind="too_many", limit="containers_kept", max=keep)


def container_create(*, build: Build, user: User, cmd: object = None) -> Container:
    """Queue a container of the build's image. The person's earlier container of this build is
    removed first (the page shows one writable layer a build). Refused (Rejected) for a build
    without an image, a malformed command, or a person over their limits."""
    words = _clean_cmd(cmd)
    if build.status != Build.Status.SUCCEEDED or not build.image_digest:
        raise Rejected("only a build that succeeded has an image to run", kind="conflict")
    containers_reap()
    for earlier in Container.objects.filter(build=build, owner=user, status=Container.Status.EXITED):
        container_remove(container=earlier)
    now = timezone.now()
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()  # one person's requests take turns
        _check_limits(user, now)
        # To the worker that built the image while it lives: its store has the image at once
        # (another worker pulls it through the shared cache, once the build has shared it).
        worker = build.worker if build.worker and locality.worker_is_alive(build.worker) else ""
        found = Container.objects.create(build=build, owner=user, cmd=words, worker=worker)
        _send(RUN_CONTAINER, found)
    return found


# -- the worker's side --------------------------------------------------------------------------


def container_claim(*, container_id: int, worker: str) -> Container | None:
    now = timezone.now()
    claimed = Container.objects.filter(id=container_id, status=Container.Status.QUEUED).update(
        status=Container.Status.RUNNING, worker=worker, started_at=now, heartbeat_at=now)
    return Container.objects.select_related("build").get(id=container_id) if claimed == 1 else None


def container_made(*, container_id: int, engine_id: str) -> None:
    """The store has the container's directory now: whoever reaps it can remove it."""
    Container.objects.filter(id=container_id).update(engine_id=engine_id)


def container_beat(*, container_id: int, output: str, output_chars: int) -> bool:
    """Touch the heartbeat and keep the output so far; False when the container is no longer
    running (reaped), so its worker stops it."""
    return Container.objects.filter(id=container_id, status=Container.Status.RUNNING).update(
        heartbeat_at=timezone.now(), output=output, output_chars=output_chars) == 1


def container_finish(*, container_id: int, ran: engine.Ran, output: str, output_chars: int) -> bool:
    """Record the run's end and its layer, and tell the page. False when it was reaped meanwhile."""
    done = Container.objects.filter(id=container_id, status=Container.Status.RUNNING).update(
        status=Container.Status.EXITED, finished_at=timezone.now(), exit_code=ran.exit_code,
        message=ran.result.message, diff=ran.diff.to_json(), output=output, output_chars=output_chars) == 1
    if done:
        live.publish(container_id, {"type": "container.layer",
                                    "container": container_json(Container.objects.get(id=container_id))})
    return done


def container_fail(*, container_id: int, message: str) -> bool:
    """Fail a container that is queued, running or committing, discard its layer (on the worker
    that holds it), and tell the page. False when it was not one of those."""
    found = Container.objects.filter(id=container_id).first()
    if found is None:
        return False
    done = Container.objects.filter(id=container_id, status__in=Container.BUSY).update(
        status=Container.Status.FAILED, finished_at=timezone.now(), message=message) == 1
    if done:
        _send_removal(found)
        found.refresh_from_db()
        live.publish(container_id, {"type": "container.layer", "container": container_json(found)})
    return done


def containers_reap(*, now: datetime | None = None) -> list[int]:
    """Fail the containers whose worker died (a heartbeat silent for STUDIO_BUILD_STALE_AFTER_S,
    running or committing), those whose message never reached a worker (queued for
    STUDIO_BUILD_REQUEUE_AFTER_S, or sent to a worker whose liveness key ran out), and commits no
    worker took: the one holding the layer is gone, or it never took it within
    STUDIO_BUILD_REQUEUE_AFTER_S."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.BUILD_STALE_AFTER_S)
    lost_before = now - timedelta(seconds=settings.BUILD_REQUEUE_AFTER_S)
    failing: list[tuple[int, str]] = []
    for found_id in Container.objects.filter(status=Container.Status.RUNNING,
                                             heartbeat_at__lt=stale_before).values_list("id", flat=True):
        failing.append((found_id, WORKER_DIED))
    queued = Container.objects.filter(status=Container.Status.QUEUED, queued_at__lt=stale_before)
    for found_id, worker, queued_at in queued.values_list("id", "worker", "queued_at"):
        if queued_at < lost_before or (worker and not locality.worker_is_alive(worker)):
            failing.append((found_id, WORKER_DIED))
    committing = Container.objects.filter(status=Container.Status.COMMITTING)
    for found_id in committing.filter(heartbeat_at__lt=stale_before).values_list("id", flat=True):
        failing.append((found_id, COMMIT_WORKER_DIED))
    waiting = committing.filter(heartbeat_at__isnull=True, commit_requested_at__lt=stale_before)
    for found_id, worker, asked in waiting.values_list("id", "worker", "commit_requested_at"):
        if (asked is not None and asked < lost_before) or (worker and not locality.worker_is_alive(worker)):
            failing.append((found_id, COMMIT_NOT_TAKEN))
    return [found_id for found_id, message in failing
            if container_fail(container_id=found_id, message=message)]


# -- after the run ------------------------------------------------------------------------------


def _send(task: str, found: Container) -> None:
    """Queue `task` for the container's worker (the one whose store holds its layer, or is to
    run it), or any worker when it has none, once the change that asks for it is committed."""
    queue = locality.queue_for(found.worker) if found.worker else None
    transaction.on_commit(lambda: current_app.send_task(task, args=(found.id,), queue=queue))


def _send_removal(found: Container) -> None:
    if found.engine_id:
        _send(REMOVE_CONTAINER, found)


def container_remove(*, container: Container) -> Container:
    """Remove the container: from now on it is gone for the page, and its worker discards its
    writable layer. A running or committing one is refused: its layer is still in use."""
    removed = Container.objects.filter(
        id=container.id, status__in=(Container.Status.EXITED, Container.Status.FAILED,
                                     Container.Status.COMMITTED)).update(status=Container.Status.REMOVED)
    container.refresh_from_db()
    if container.status in Container.BUSY:
        raise Rejected(f"the container is {container.status}; remove it once that has ended", kind="conflict")
    if removed:
        _send_removal(container)
    return container


def container_commit(*, container: Container) -> Container:
    """Ask the worker holding the writable layer to store it as one more layer on the build's
    image: the container is `committing` until that worker has stored the image (then
    `committed`, with the image) or could not (then `exited` again, or `failed` if the layer is
    gone, with a message). Claimed with a guarded update, so two commits make one image."""
    now = timezone.now()
    if Container.objects.filter(id=container.id, status=Container.Status.EXITED).update(
            status=Container.Status.COMMITTING, commit_requested_at=now, heartbeat_at=None, message="") != 1:
        container.refresh_from_db()
        raise Rejected(f"a container that is {container.status} has no writable layer to commit",
                       kind="conflict")
    container.refresh_from_db()
    _send(COMMIT_CONTAINER, container)
    return container


# -- the worker's side of a commit and a removal ------------------------------------------------


def container_commit_claim(*, container_id: int) -> Container | None:
    """Take a requested commit; None when it was taken already, or given up on meanwhile."""
    claimed = Container.objects.filter(id=container_id, status=Container.Status.COMMITTING,
                                       heartbeat_at__isnull=True).update(heartbeat_at=timezone.now())
    return Container.objects.select_related("build").get(id=container_id) if claimed == 1 else None


def container_commit_beat(*, container_id: int) -> bool:
    """The commit goes on; False when it was given up on (its worker was thought dead)."""
    return Container.objects.filter(id=container_id, status=Container.Status.COMMITTING).update(
        heartbeat_at=timezone.now()) == 1


def container_committed(*, container_id: int, image: Image, top: dict[str, Any] | None) -> bool:
    """The image is stored (and shared): the container is committed, with it, in one update."""
    done = Container.objects.filter(id=container_id, status=Container.Status.COMMITTING).update(
        status=Container.Status.COMMITTED, committed_image={
            "digest": image.digest, "layers": len(image.layers), "layer": top}) == 1
    _publish(container_id)
    return done


def container_commit_failed(*, container_id: int, message: str, layer_kept: bool) -> bool:
    """The commit failed: back to `exited` when the writable layer is still there (commit it
    again or remove it), `failed` when it is not; the message says why."""
    status = Container.Status.EXITED if layer_kept else Container.Status.FAILED
    done = Container.objects.filter(id=container_id, status=Container.Status.COMMITTING).update(
        status=status, message=f"the container could not be committed: {message}") == 1
    _publish(container_id)
    return done


def container_removable(*, container_id: int) -> str:
    """The engine's id of a container whose layer may go (removed, or failed), or ""."""
    found = Container.objects.filter(
        id=container_id, status__in=(Container.Status.REMOVED, Container.Status.FAILED)).first()
    return found.engine_id if found else ""


def _publish(container_id: int) -> None:
    found = Container.objects.select_related("build").filter(id=container_id).first()
    if found is not None:
        live.publish(container_id, {"type": "container.layer", "container": container_json(found)})
