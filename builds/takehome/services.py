"""Pushing a build's image to the studio's push registry: queued by the page, run by a worker,
its per-layer report written as it goes so that the page can show it live."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from builds.engine.errors import InputError
from builds.engine.events import TransferEvent
from builds.engine.image.export import docker_archive_size
from builds.heartbeat import beating
from builds.models import Build
from builds.stores import image_here, web_store
from studio.errors import Rejected
from studio.models import User

from .models import ImagePush
from .names import BadName, PushRegistry, archive_names, check_destination

log = logging.getLogger(__name__)

PUSH_IMAGE = "takehome.push_image"
SAVE_EVERY_S = 0.3  # the report is written at most this often while bytes move
# A push queued this long found no worker: it no longer blocks the next one. (A running push is
# given up once its heartbeat is silent for STUDIO_BUILD_STALE_AFTER_S.)
QUEUED_STALE_AFTER = timedelta(hours=1)
WORKER_WENT = "the worker pushing it went away; push again"
_DONE = ("pushed", "exists", "mounted")


def push_registry() -> PushRegistry | None:
    registry: PushRegistry | None = settings.PUSH_REGISTRY
    return registry


def push_create(*, build: Build, user: User, repository: str, tag: str) -> ImagePush:
    """Queue a push of the build's image to `repository:tag` under the studio's push registry."""
    registry = push_registry()
    if registry is None:
        raise Rejected("this studio has no registry to push to (STUDIO_PUSH_REGISTRY is not set)",
                       kind="conflict")
    try:
        reference = check_destination(registry, repository, tag)
    except BadName as bad:
        raise Rejected(bad.message, field=bad.field) from None
    except InputError as exc:
        raise Rejected(str(exc), field="repository") from None
    if build.status != Build.Status.SUCCEEDED or not build.image_digest:
        raise Rejected("only a build that succeeded has an image to push", kind="conflict")
    with transaction.atomic():
        # One push of a build at a time: the row lock makes two clicks at once queue one push.
        Build.objects.select_for_update().filter(id=build.id).first()
        _give_up_lost(build)
        if ImagePush.objects.filter(build=build, status__in=ImagePush.ACTIVE).exists():
            raise Rejected("this build's image is being pushed already; wait for that push to end",
                           kind="conflict")
        push = ImagePush.objects.create(build=build, requested_by=user, reference=reference)
        transaction.on_commit(lambda: current_app.send_task(PUSH_IMAGE, args=(push.id,)))
    return push


def archive_json(*, build: Build, token: str | None) -> dict[str, Any] | None:
    """The download of a succeeded build's image: where, as what file, loading as what name."""
    if build.status != Build.Status.SUCCEEDED or not build.image_digest:
        return None
    store = web_store()
    image = image_here(store, build.image_digest)
    if image is None:
        return None
    loads_as, filename = archive_names(build.project.name, build.project_id, build.number)
    url = reverse("build-image-download", args=[build.id])
    if token:
        url += "?" + urlencode({"token": token})
    return {"url": url, "file": filename, "loads_as": loads_as,
            "size": docker_archive_size(store, image, [loads_as])}


def push_latest(*, build: Build) -> ImagePush | None:
    """The build's latest push, failed with a message if its worker went away meanwhile."""
    _give_up_lost(build)
    return ImagePush.objects.filter(build=build).order_by("-id").first()


def _give_up_lost(build: Build) -> None:
    """Fail the build's pushes whose worker died (running, heartbeat silent) or that no worker
    ever took (queued for an hour): the page says so, and the next push is not blocked."""
    now = timezone.now()
    silent = now - timedelta(seconds=settings.BUILD_STALE_AFTER_S)
    ImagePush.objects.filter(build=build, status=ImagePush.Status.RUNNING, heartbeat_at__lt=silent).update(
        status=ImagePush.Status.FAILED, error=WORKER_WENT, finished_at=now)
    ImagePush.objects.filter(build=build, status=ImagePush.Status.QUEUED,
                             created_at__lt=now - QUEUED_STALE_AFTER).update(
        status=ImagePush.Status.FAILED, error="no worker took this push; push again", finished_at=now)


def push_json(push: ImagePush | None) -> dict[str, Any] | None:
    if push is None:
        return None
    return {
        "id": push.id,
        "reference": push.reference,
        "status": push.status,
        "layers": push.layers,
        "uploaded": push.uploaded,
        "manifest_digest": push.manifest_digest or None,
        "error": push.error or None,
        "pull": f"docker pull {push.reference}" if push.status == ImagePush.Status.SUCCEEDED else None,
    }


class _Report:
    """The engine's image.push events turned into the push's per-layer rows. Layers are placed
    one after another, bottom first, so each event is about the first row not placed yet."""

    def __init__(self, push_id: int, rows: list[dict[str, Any]]) -> None:
        self.push_id = push_id
        self.rows = rows
        self.uploaded = 0
        self.saved_at = 0.0

    def __call__(self, event: TransferEvent) -> None:
        if event.layer is None:
            return
        row = next((r for r in self.rows if r["status"] not in _DONE), None)
        if row is None:
            return
        row.update(digest=event.layer, status=event.status, current=event.current, size=event.total)
        source = getattr(event, "source", None)
        if isinstance(source, str):
            row["source"] = source
        if event.status == "pushed":
            self.uploaded += event.total
        self.save(force=event.status in _DONE)

    def save(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.saved_at < SAVE_EVERY_S:
            return
        self.saved_at = now
        ImagePush.objects.filter(id=self.push_id).update(layers=self.rows, uploaded=self.uploaded)


def push_run(*, push_id: int) -> str:
    """Run a queued push (the worker's task): claim it, push layer by layer, record the end."""
    if ImagePush.objects.filter(id=push_id, status=ImagePush.Status.QUEUED).update(
            status=ImagePush.Status.RUNNING, heartbeat_at=timezone.now()) != 1:
        return "not queued"
    def beat() -> bool:
        return ImagePush.objects.filter(id=push_id, status=ImagePush.Status.RUNNING).update(
            heartbeat_at=timezone.now()) == 1

    with beating(f"push {push_id}", beat):
        return _push(push_id)


def _push(push_id: int) -> str:
    push = ImagePush.objects.select_related("build").get(id=push_id)
    store = web_store()
    image = image_here(store, push.build.image_digest)
    if image is None:
        return _finish(push_id, error="the build's image is no longer in this worker's store; build again")
    rows = [{"digest": store.layer(layer).diff_id, "size": store.layer_tar_size(layer), "current": 0,
             "status": "waiting"} for layer in image.layers]
    report = _Report(push_id, rows)
    report.save(force=True)
    from builds.engine.registry.push import push as engine_push
    from builds.engine.registry.settings import RegistrySettings

    try:
        result = engine_push(store, image.digest, push.reference, settings=RegistrySettings.from_env(),
                             report=report)
    except InputError as exc:  # a registry refusing or away: the person is told why
        report.save(force=True)
        return _finish(push_id, error=str(exc))
    except Exception:
        log.exception("push %s failed", push_id)
        report.save(force=True)
        return _finish(push_id, error="the push failed on the studio's side; try again later")
    report.save(force=True)
    return _finish(push_id, digest=result.manifest_digest)


def _finish(push_id: int, *, error: str = "", digest: str = "") -> str:
    status = ImagePush.Status.FAILED if error else ImagePush.Status.SUCCEEDED
    ImagePush.objects.filter(id=push_id).update(status=status, error=error[:2000], manifest_digest=digest,
                                                finished_at=timezone.now())
    return str(status)
