"""Everything that changes a build: asking for one, claiming it, its events, cancelling it, and
tidying up after workers that died.

Statuses only ever move forward, and every move is a guarded update (`filter(status=...)
.update(...)`), so two processes racing for the same build (a redelivered task, a cancel arriving
as the build finishes, the reaper and a slow worker) agree on one winner without locks.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from builds.engine.errors import EngineError
from builds.engine.events import BuildFinished, wire
from builds.engine.verdicts import Outcome, cache_counts, tally
from studio.errors import Rejected
from studio.models import User
from studio.projects.models import Blob, Project, Revision
from studio.projects.services import revision_snapshot

from . import live, locality
from .models import Build, BuildEvent, Step
from .queue import send_build
from .scopes import cache_scope_for
from .signals import PROGRESS_EVENTS, build_changed, build_progressed, notify

log = logging.getLogger(__name__)

BUILD_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # matched whole: `$` would let "A\n" through
MAX_BUILD_ARG_NAME = 128
MAX_BUILD_ARGS = 64
MAX_BUILD_ARG_CHARS = 4096
FINAL_STATUSES = {Build.Status.SUCCEEDED, Build.Status.FAILED, Build.Status.CANCELLED}
WORKER_STOPPED = "the worker running this build stopped (no sign of life for {seconds} s); build it again"
WORKER_RESTARTED = "the worker running this build restarted; build it again"
# -- asking for a build -------------------------------------------------------------------------


def _clean_options(target: object, build_args: object, no_cache: object) -> tuple[str, dict[str, str], bool]:
    if not isinstance(target, str) or len(target) > 128:
        raise Rejected("target must be a stage name (a string of at most 128 characters)", field="target")
    if not isinstance(build_args, dict):
        raise Rejected(
            'build_args must be an object of names to values, e.g. {"VERSION": "1"}', field="build_args"
        )
    if len(build_args) > MAX_BUILD_ARGS:
        raise Rejected(f"at most {MAX_BUILD_ARGS} build args are allowed", field="build_args")
    for name, value in build_args.items():
        if len(name) > MAX_BUILD_ARG_NAME:
            raise Rejected(
                f"build arg {name[:40]!r}… is too long a name (at most {MAX_BUILD_ARG_NAME} characters)",
                field="build_args",
            )
        if not BUILD_ARG_NAME.fullmatch(name):
            raise Rejected(f"build arg {name!r} is not a valid name", field="build_args")
        if not isinstance(value, str) or len(value) > MAX_BUILD_ARG_CHARS:
            raise Rejected(
                f"build arg {name} must be a string of at most {MAX_BUILD_ARG_CHARS} characters",
                field="build_args",
            )
    if not isinstance(no_cache, bool):
        raise Rejected("no_cache must be true or false", field="no_cache")
    return target.strip(), dict(build_args), no_cache


def _check_limits(user: User, now: datetime) -> None:
    per_minute = settings.BUILD_RATE_PER_MINUTE
    recent = list(
        Build.objects.filter(requested_by=user, queued_at__gte=now - timedelta(minutes=1))
        .order_by("queued_at")
        .values_list("queued_at", flat=True)[:per_minute]
    )
    if len(recent) >= per_minute:
        retry = max(1, int((recent[0] + timedelta(minutes=1) - now).total_seconds()) + 1)
        raise Rejected(
            f"you started {per_minute} builds in the last minute, the most allowed "
            f"(STUDIO_BUILD_RATE_PER_MINUTE); try again in {retry} s",
            kind="too_many",
            limit="builds_per_minute",
            max=per_minute,
            retry_after=retry,
        )
    queued = Build.objects.filter(requested_by=user, status=Build.Status.QUEUED).count()
    if queued >= settings.BUILD_QUEUE_PER_USER:
        raise Rejected(
            f"you have {queued} builds waiting in the queue, the most allowed (STUDIO_BUILD_QUEUE_PER_USER); "
            "wait for one to start or cancel one",
            kind="too_many",
            limit="queued_builds_per_user",
            max=settings.BUILD_QUEUE_PER_USER,
        )


def _check_dockerfile(revision: Revision, target: str) -> None:
    """Refuse a Dockerfile that does not parse (naming its line) or a target it lacks, before it
    takes a place in the queue. Everything else is the build's to find out."""
    from builds.engine.dockerfile import parse

    path = revision.dockerfile_path
    blob = Blob.objects.get(sha256=revision.files.get(path=path).blob_id)
    try:
        text = bytes(blob.data).decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(f"{path} is not UTF-8 text", file=path) from None
    try:
        dockerfile = parse(text, filename=path)
    except EngineError as exc:
        raise Rejected(exc.message, file=path, line=exc.line) from None
    if target and dockerfile.stage(target) is None:
        names = ", ".join(stage.label for stage in dockerfile.stages)
        raise Rejected(f"{path} has no stage {target!r} (its stages: {names})", field="target", file=path)


def build_create(
    *, project: Project, user: User, target: object = "", build_args: object = None, no_cache: object = False
) -> Build:
    """Queue a build of the project's files as they are now. Refused (Rejected) when an option is
    malformed, the Dockerfile does not parse, or the person is over their build rate or queue."""
    target, args, no_cache = _clean_options(target, build_args if build_args is not None else {}, no_cache)
    now = timezone.now()
    with transaction.atomic():
        # Held until commit: two requests from one person count each other's builds (PostgreSQL;
        # SQLite's immediate transactions already take turns).
        User.objects.select_for_update().filter(pk=user.pk).first()
        _check_limits(user, now)
        revision = revision_snapshot(project=project)
        _check_dockerfile(revision, target)
        Project.objects.select_for_update().filter(pk=project.pk).first()
        number = (Build.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
        build = Build.objects.create(
            project=project,
            number=number,
            revision=revision,
            requested_by=user,
            target=target,
            build_args=args,
            no_cache=no_cache,
            cache_scope=cache_scope_for(project=project, user=user),
            enqueued_at=now,
        )
        # Announced before it is sent: a worker's "running" must not overtake the "queued".
        def announce_and_enqueue() -> None:
            _announce(build.id)
            _enqueue(build.id)

        transaction.on_commit(announce_and_enqueue)
    return build


def _enqueue(build_id: int) -> None:
    scope = Build.objects.filter(id=build_id).values_list("cache_scope", flat=True).first() or ""
    worker = locality.worker_for_scope(scope)
    try:
        if worker is None:
            send_build(build_id)
        else:
            # Routed to the worker that holds the scope's cache while it lives. Written down
            # first, so that should it die before taking the build, builds_reroute sends it on.
            locality.build_routed(build_id, worker)
            send_build(build_id, queue=locality.queue_for(worker))
    except Exception as exc:  # Redis away: the reaper sends it again after BUILD_REQUEUE_AFTER_S
        log.warning("build %s could not be sent to the workers yet: %r", build_id, exc)


def _announce(build_id: int) -> None:
    """Tell the project's page that one of its builds changed status."""
    from .selectors import build_summary

    notify(build_changed, build_id=build_id)
    build = Build.objects.select_related("project", "requested_by").filter(id=build_id).first()
    if build is not None:
        live.group_send(
            live.project_group(build.project_id), {"type": "project.build", "build": build_summary(build)}
        )


def project_kick(*, project_id: int) -> int | None:
    """Send the project's oldest queued build to the workers, unless one of its builds is running
    (that one sends the next when it finishes). Sending one twice is harmless: only one claim wins."""
    if Build.objects.filter(project_id=project_id, status=Build.Status.RUNNING).exists():
        return None
    nxt = Build.objects.filter(project_id=project_id, status=Build.Status.QUEUED).order_by("id").first()
    if nxt is None:
        return None
    Build.objects.filter(id=nxt.id).update(enqueued_at=timezone.now())
    transaction.on_commit(lambda: _enqueue(nxt.id))
    return nxt.id


# -- running it ---------------------------------------------------------------------------------


def build_start(*, build_id: int, worker: str) -> Build | None:
    """Claim a queued build for this worker, or None. Only the project's oldest queued build may be
    claimed, and only while none of the project's builds runs: that is what keeps one project's
    builds in order, one at a time, while other projects' builds run beside them."""
    now = timezone.now()
    ahead = Build.objects.filter(project_id=OuterRef("project_id")).filter(
        Q(status=Build.Status.RUNNING) | Q(status=Build.Status.QUEUED, id__lt=OuterRef("id"))
    )
    claimed = (
        Build.objects.filter(id=build_id, status=Build.Status.QUEUED)
        .filter(~Exists(ahead))
        .update(status=Build.Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker)
    )
    if claimed != 1:
        return None
    _announce(build_id)
    return Build.objects.select_related("project", "revision").get(id=build_id)


def build_heartbeat(*, build_id: int) -> tuple[bool, bool]:
    """Say the build's worker is alive. Returns (still running, cancel requested): a build that is
    no longer running was finished by someone else (the reaper, a deleted project) and must stop."""
    if not Build.objects.filter(id=build_id, status=Build.Status.RUNNING).update(heartbeat_at=timezone.now()):
        return False, False
    return True, Build.objects.filter(id=build_id, cancel_requested_at__isnull=False).exists()


def revision_materialise(*, revision: Revision, into: Path) -> None:
    """Write the revision's files under `into` (an empty directory), modes included. Paths were
    checked when the files were saved; checked again here because this is where a bad one would
    write outside the directory."""
    root = into.resolve()
    for row in revision.files.select_related("blob").iterator():
        target = (root / row.path).resolve()
        if not target.is_relative_to(root):
            raise ValueError(f"revision {revision.id} holds a path outside its context: {row.path!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes(row.blob.data))
        target.chmod(row.mode)


def publish_build_event(*, build_id: int, event: dict[str, Any]) -> bool:
    """The one way a build's events go out. Stores the event (so replays and reconnects find it),
    keeps the build's steps and outcome up to date from it, then forwards it to the build's
    websocket group. Returns False, and forwards nothing, when that seq was already stored."""
    try:
        with transaction.atomic():
            BuildEvent.objects.create(build_id=build_id, seq=event["seq"], type=event["type"], data=event)
    except IntegrityError:
        return False
    if event["type"] == "step.finished":
        _step_save(build_id, event)
    elif event["type"] == "build.finished":
        build_finish(build_id=build_id, event=event)
    live.group_send(live.build_group(build_id), {"type": "build.event", "event": event})
    if event["type"] in PROGRESS_EVENTS:
        notify(build_progressed, build_id=build_id, event=event)
    return True


def reason_with_changes(reason: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A first-build reason (nothing earlier in the build's cache scope to compare with, as after a
    teacher gives the class a shared cache) that also names what the person changed since the
    project's previous build, so the reason stays about their edit."""
    parts = []
    if changes["files"]:
        more = " …" if len(changes["files"]) > 8 else ""
        parts.append("the files " + ", ".join(changes["files"][:8]) + more)
    if changes["build_args"]:
        parts.append("the build arguments " + ", ".join(changes["build_args"]))
    said = f" Since build #{changes['build']}, {' and '.join(parts)} changed."
    return {**reason, "message": reason["message"] + said, "since_build": changes}


def _step_save(build_id: int, event: dict[str, Any]) -> None:
    """Keep the step's event as it came (a step reported twice keeps its last word)."""
    step = {k: v for k, v in event.items() if k not in ("type", "seq")}
    columns = {"keyword": event.get("keyword") or "", "event": step}
    Step.objects.update_or_create(build_id=build_id, number=event["step"], defaults=columns)


def build_finish(*, build_id: int, event: dict[str, Any]) -> bool:
    """Record a running build's outcome from its build.finished event, then let the project's next
    build go. False when the build had already ended (cancelled while queued, reaped)."""
    status = event.get("status")
    if status not in FINAL_STATUSES:
        status = Build.Status.FAILED
    image = event.get("image") or {}
    # Counted from the stored steps by the one function every page counts with, whatever the
    # closing event says (a build the studio closed itself says nothing of its steps).
    counts = tally(
        BuildEvent.objects.filter(build_id=build_id, type="step.finished").order_by("seq").values_list(
            "data", flat=True
        )
    )
    cache = cache_counts(counts)
    finished = Build.objects.filter(id=build_id, status=Build.Status.RUNNING).update(
        status=status,
        finished_at=timezone.now(),
        cache_hits=cache["hits"],
        cache_misses=cache["misses"],
        counts=counts,
        image_digest=image.get("digest") or "",
        image_size=image.get("size"),
        image_layers=image.get("layers"),
        duration_ms=event.get("duration_ms"),
        error=event.get("error"),
    )
    if finished:
        _after_finish(build_id)
    return bool(finished)


def _after_finish(build_id: int) -> None:
    _announce(build_id)
    project_id = Build.objects.filter(id=build_id).values_list("project_id", flat=True).first()
    if project_id is not None:
        project_kick(project_id=project_id)


def _next_seq(build_id: int) -> int:
    return (BuildEvent.objects.filter(build_id=build_id).aggregate(n=Max("seq"))["n"] or 0) + 1


def _closing_event(build_id: int, *, status: str, message: str) -> dict[str, Any]:
    """A build.finished for a build the engine did not finish (cancelled in the queue, its worker
    gone), numbered after the last stored event so the stream stays whole."""
    # A final Build.Status (a TextChoices member): its value is one of the outcomes.
    finished = BuildFinished(status=cast(Outcome, str(status)), error={"message": message})
    return wire(finished, _next_seq(build_id))


def _end_with(build: Build | int, *, status: str, message: str, guard: Q) -> bool:
    """Move the build to a final status where `guard` still holds, and close its event stream."""
    build_id = build if isinstance(build, int) else build.id
    ended = Build.objects.filter(guard, id=build_id).update(
        status=status, finished_at=timezone.now(), error={"message": message}
    )
    if not ended:
        return False
    for _ in range(3):  # a seq can be taken by a last event of a worker that was only slow
        if publish_build_event(
            build_id=build_id, event=_closing_event(build_id, status=status, message=message)
        ):
            break
    _after_finish(build_id)
    return True


def build_fail(*, build_id: int, message: str) -> bool:
    """End a running build as failed for a reason of the studio's own (the engine could not finish)."""
    return _end_with(
        build_id, status=Build.Status.FAILED, message=message, guard=Q(status=Build.Status.RUNNING)
    )


def build_cancel(*, build: Build) -> Build:
    """Cancel the build. A queued one ends at once without running; a running one is stopped by its
    worker (the sandbox is killed), which then reports it cancelled. Rejected for a finished one."""
    now = timezone.now()
    if _end_with(
        build,
        status=Build.Status.CANCELLED,
        message="the build was cancelled before it started",
        guard=Q(status=Build.Status.QUEUED),
    ):
        Build.objects.filter(id=build.id).update(cancel_requested_at=now)
    elif Build.objects.filter(id=build.id, status=Build.Status.RUNNING).update(cancel_requested_at=now):
        live.cancel_flag_set(build.id)
    else:
        build.refresh_from_db(fields=["status"])
        raise Rejected(f"build #{build.number} has already finished ({build.status})", kind="conflict")
    build.refresh_from_db()
    return build


# -- workers that died -------------------------------------------------------------------------

_last_reap = 0.0
_reap_lock = threading.Lock()


def builds_reap(*, now: datetime | None = None) -> list[int]:
    """Fail every running build whose heartbeat is older than BUILD_STALE_AFTER_S (its worker died
    or lost the database), and send again any queued build whose task looks lost. Returns the
    builds it failed. Safe to run anywhere, any number of times at once."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.BUILD_STALE_AFTER_S)
    stale = Build.objects.filter(status=Build.Status.RUNNING, heartbeat_at__lt=cutoff).values_list(
        "id", flat=True
    )
    message = WORKER_STOPPED.format(seconds=settings.BUILD_STALE_AFTER_S)
    reaped = [
        build_id
        for build_id in list(stale)
        if _end_with(
            build_id,
            status=Build.Status.FAILED,
            message=message,
            guard=Q(status=Build.Status.RUNNING, heartbeat_at__lt=cutoff),
        )
    ]
    for build_id in reaped:
        log.warning("build %s: %s", build_id, message)
    builds_reroute()
    _requeue_lost(now)
    return reaped


def builds_reap_if_due() -> None:
    """builds_reap, at most once per heartbeat interval in this process: cheap enough to call on
    every look at a build, which is what reaps builds even when no worker is left to do it."""
    global _last_reap
    with _reap_lock:
        if time.monotonic() - _last_reap < settings.BUILD_HEARTBEAT_S:
            return
        _last_reap = time.monotonic()
    try:
        builds_reap()
    except Exception:  # looking at a build must work even when tidying up does not
        log.exception("reaping stale builds failed")


def builds_reap_worker(*, worker: str, started: datetime, message: str = WORKER_RESTARTED) -> list[int]:
    """A worker that starts under a name cannot still be running builds it claimed under that name
    before it started: those died with its previous life, so fail them now rather than waiting.
    The supervisor of `make run` calls it too, as soon as it sees the worker die."""
    guard = Q(status=Build.Status.RUNNING, worker=worker, heartbeat_at__lt=started)
    found = Build.objects.filter(guard).values_list("id", flat=True)
    return [b for b in list(found) if _end_with(b, status=Build.Status.FAILED, message=message, guard=guard)]


def builds_reroute() -> list[int]:
    """Builds sent to one worker's own queue that died before taking them go to the shared queue
    at once, rather than after BUILD_REQUEUE_AFTER_S. Returns their ids. Whoever takes a build's
    route off the list first sends it; should a message still reach the dead worker when it comes
    back, the claim (a guarded update) lets only one run."""
    resent = []
    for build_id in locality.orphaned_builds():
        if not locality.build_settled(build_id):
            continue  # another process took this one
        if Build.objects.filter(id=build_id, status=Build.Status.QUEUED).update(enqueued_at=timezone.now()):
            log.warning("build %s was sent to a worker that died; sending it to any worker", build_id)
            try:
                send_build(build_id)
            except Exception as exc:  # Redis away: the reaper sends it again later
                log.warning("build %s could not be sent to the workers yet: %r", build_id, exc)
            resent.append(build_id)
    return resent


def _requeue_lost(now: datetime) -> None:
    cutoff = now - timedelta(seconds=settings.BUILD_REQUEUE_AFTER_S)
    running = Build.objects.filter(status=Build.Status.RUNNING).values("project_id")
    waiting = (
        Build.objects.filter(status=Build.Status.QUEUED)
        .exclude(project_id__in=running)
        .order_by("project_id", "id")
        .values_list("id", "project_id", "enqueued_at")
    )
    seen: set[int] = set()
    for build_id, project_id, enqueued_at in waiting:
        if project_id in seen:
            continue
        seen.add(project_id)
        if enqueued_at is None or enqueued_at < cutoff:
            sent = Build.objects.filter(
                id=build_id, status=Build.Status.QUEUED, enqueued_at=enqueued_at
            ).update(enqueued_at=now)
            if sent:
                log.warning(
                    "build %s waited %s s in the queue; sending it again",
                    build_id,
                    settings.BUILD_REQUEUE_AFTER_S,
                )
                _enqueue(build_id)
