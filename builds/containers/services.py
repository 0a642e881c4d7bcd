"""Containers' business: start one on a person's own finished build, claim it on a worker, keep
its heartbeat and output, finish, fail, reap, commit and remove it. Every state change is a
guarded update on the database row, so a message run twice, or a worker that died, leaves one
consistent answer."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from builds import selectors
from builds.engine import container as engine
from builds.engine.errors import EngineError
from builds.engine.store import Store
from builds.models import Build
from studio.errors import Rejected
from studio.models import User
from studio.projects.selectors import AnyUser

from . import live
from .models import Container

log = logging.getLogger(__name__)

RUN_CONTAINER = "builds.run_container"
MAX_CMD_WORDS = 64
MAX_CMD_CHARS = 4096
OUTPUT_KEEP_CHARS = 64 << 10  # the latest output a container keeps for a page that comes late
WORKER_DIED = "the worker running this container stopped; run it again"


def store() -> Store:
    return Store(settings.STUDIO_DATA_DIR)


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
        found = Container.objects.create(build=build, owner=user, cmd=words)
        transaction.on_commit(lambda: current_app.send_task(RUN_CONTAINER, args=(found.id,)))
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
    found = Container.objects.filter(id=container_id).first()
    if found is None:
        return False
    done = Container.objects.filter(id=container_id, status__in=Container.ACTIVE).update(
        status=Container.Status.FAILED, finished_at=timezone.now(), message=message) == 1
    if done:
        _discard(found.engine_id)
        found.refresh_from_db()
        live.publish(container_id, {"type": "container.layer", "container": container_json(found)})
    return done


def containers_reap(*, now: datetime | None = None) -> list[int]:
    """Fail the containers whose worker died (a heartbeat silent for STUDIO_BUILD_STALE_AFTER_S)
    and those whose message never reached a worker (queued for STUDIO_BUILD_REQUEUE_AFTER_S)."""
    now = now or timezone.now()
    stale = Container.objects.filter(status=Container.Status.RUNNING,
                                     heartbeat_at__lt=now - timedelta(seconds=settings.BUILD_STALE_AFTER_S))
    lost = Container.objects.filter(status=Container.Status.QUEUED,
                                    queued_at__lt=now - timedelta(seconds=settings.BUILD_REQUEUE_AFTER_S))
    reaped = []
    for found_id in [*stale.values_list("id", flat=True), *lost.values_list("id", flat=True)]:
        if container_fail(container_id=found_id, message=WORKER_DIED):
            reaped.append(found_id)
    return reaped


# -- after the run ------------------------------------------------------------------------------


def container_remove(*, container: Container) -> Container:
    """Discard the container's writable layer. A running one is refused: it ends within its time
    limit, and its layer is still being written."""
    if container.status in Container.ACTIVE:
        raise Rejected("the container is still running; remove it once it has ended", kind="conflict")
    Container.objects.filter(id=container.id).update(status=Container.Status.REMOVED)
    _discard(container.engine_id)
    container.refresh_from_db()
    return container


def container_commit(*, container: Container) -> Container:
    """Store the writable layer as one more layer on the build's image, and make that image.
    Claimed with a guarded update, so two commits of one container make one image."""
    if Container.objects.filter(id=container.id, status=Container.Status.EXITED).update(
            status=Container.Status.COMMITTED) != 1:
        raise Rejected(f"a container that is {container.status} has no writable layer to commit",
                       kind="conflict")
    the_store = store()
    try:
        image = engine.find_image(the_store, container.build.image_digest)
        words = engine.container_argv(image.config, container.cmd)
        new = engine.commit(the_store, image, container.engine_id,
                            created_by=f"studio run (build {container.build_id}) {' '.join(words)}")
    except (EngineError, OSError) as exc:
        Container.objects.filter(id=container.id).update(status=Container.Status.EXITED)
        message = exc.describe() if isinstance(exc, EngineError) else str(exc)
        raise Rejected(f"the container could not be committed: {message}", kind="conflict") from None
    top = the_store.layer(new.layers[-1]).summary() if len(new.layers) > len(image.layers) else None
    Container.objects.filter(id=container.id).update(
        committed_image={"digest": new.digest, "layers": len(new.layers), "layer": top})
    container.refresh_from_db()
    return container


def _discard(engine_id: str) -> None:
    if not engine_id:
        return
    try:
        engine.remove(store(), engine_id)
    except (EngineError, OSError) as exc:
        log.warning("could not remove container %s: %r", engine_id, exc)
