"""The Celery task that runs a build, and what a worker does when it starts."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from billiard.einfo import ExceptionInfo
from billiard.exceptions import WorkerLostError
from celery import Task, shared_task
from celery.signals import celeryd_after_setup, task_postrun, worker_ready, worker_shutdown
from celery.worker.request import Request
from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from builds.engine.builder import BuildOptions, build
from builds.engine.sandbox import Limits
from builds.engine.store import Store

from . import live, locality, selectors, services
from .models import Build
from .queue import RUN_BUILD
from .stores import keep_under_limit, shared_cache

log = logging.getLogger(__name__)

CANCEL_POLL_S = 0.2
SHARE_TIMEOUT_S = 600
# Set when this module is imported, i.e. before the worker takes any task.
WORKER_STARTED: datetime = timezone.now()


def sandbox_limits() -> Limits:
    """Every web build's limits: the STUDIO_BUILD_* settings (builds.engine.limits)."""
    limits: Limits = settings.BUILD_LIMITS
    return limits


@dataclass
class BuildRun:
    """One run of one build, kept apart from the task object (which Celery reuses across runs)."""

    build_id: int
    cancel: threading.Event = field(default_factory=threading.Event)
    # Set when the build stopped being ours (reaped, or its project deleted): its events are dropped.
    lost: threading.Event = field(default_factory=threading.Event)
    finished: bool = False
    # What changed since the project's previous build, for reasons that have nothing in the
    # build's cache scope to compare with (see services.reason_with_changes).
    changes: dict[str, Any] | None = None

    def sink(self, event: dict[str, Any]) -> None:
        if self.lost.is_set():
            return
        reason = event.get("reason") if event["type"] == "step.finished" else None
        if self.changes and reason and reason.get("code") == "first_build":
            event = {**event, "reason": services.reason_with_changes(reason, self.changes)}
        services.publish_build_event(build_id=self.build_id, event=event)
        if event["type"] == "build.finished":
            self.finished = True


class Watch(threading.Thread):
    """Beside a running build: turns a cancel request into the engine's cancel event within
    CANCEL_POLL_S (from Redis) or a heartbeat (from the database, should Redis be away), touches
    the heartbeat, and now and then reaps builds whose own workers died."""

    def __init__(self, run: BuildRun) -> None:
        super().__init__(name=f"build-{run.build_id}-watch", daemon=True)
        self.run_ = run
        self.stopping = threading.Event()

    def run(self) -> None:
        beat_every = settings.BUILD_HEARTBEAT_S
        next_beat = time.monotonic() + beat_every
        next_reap = time.monotonic() + settings.BUILD_STALE_AFTER_S / 2
        try:
            while not self.stopping.wait(CANCEL_POLL_S):
                if not self.run_.cancel.is_set() and live.cancel_flag_is_set(self.run_.build_id):
                    self.run_.cancel.set()
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + beat_every
                    self._beat()
                if time.monotonic() >= next_reap:
                    next_reap = time.monotonic() + settings.BUILD_STALE_AFTER_S / 2
                    self._reap()
        finally:
            connections.close_all()  # this thread's own connections

    def _beat(self) -> None:
        try:
            running, cancel_requested = services.build_heartbeat(build_id=self.run_.build_id)
        except DatabaseError as exc:
            log.warning("build %s: heartbeat failed: %r", self.run_.build_id, exc)
            return
        if not running and not self.run_.finished:
            log.warning("build %s is no longer ours to run; stopping it", self.run_.build_id)
            self.run_.lost.set()
            self.run_.cancel.set()
        elif cancel_requested:
            self.run_.cancel.set()

    def _reap(self) -> None:
        try:
            services.builds_reap()
        except Exception:
            log.exception("reaping stale builds failed")


class BuildRequest(Request):
    """A build task as the worker's parent process sees it. When the pool kills the process
    running a build (its time limit passed: that process may be stuck for good) or that process
    dies, the build fails at once with a message, rather than when the reaper finds its heartbeat
    silent. The pool starts a fresh process in its place."""

    @property
    def time_limits(self) -> tuple[float | None, float | None]:
        # The worker that runs the build sets its deadline, never the message: Celery would take
        # the limit the sending process (the web server) had in its settings.
        return (settings.BUILD_TIME_LIMIT_S, None)

    @time_limits.setter
    def time_limits(self, sent: Any) -> None:
        pass

    def on_timeout(self, soft: bool, timeout: float) -> None:
        super().on_timeout(soft, timeout)
        if not soft:
            _fail_from_parent(self.args, f"the build took longer than {timeout:g} s "
                              "(STUDIO_BUILD_TIME_LIMIT_S) and was stopped")

    def on_failure(
        self, exc_info: ExceptionInfo, send_failed_event: bool = True, return_ok: bool = False
    ) -> None:
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
        exc = getattr(exc_info.exception, "exc", exc_info.exception)  # ExceptionWithTraceback
        if isinstance(exc, WorkerLostError):
            message = f"the worker process running this build died ({exc}); build it again"
            _fail_from_parent(self.args, message)


def _fail_from_parent(args: Any, message: str) -> None:
    # In the worker's parent: whatever happens here must not stop the pool.
    try:
        build_id = int(args[0])
        if services.build_fail(build_id=build_id, message=message):
            log.warning("build %s: %s", build_id, message)
    except Exception:
        log.exception("failing a build whose worker process was lost failed")
    finally:
        connections.close_all()  # nothing of the parent's for the next child it forks to inherit


class BuildTask(Task):
    # The claim is a guarded update, so running a message twice is harmless; acknowledging late
    # means a worker that dies before it claimed the build leaves the message for another.
    acks_late = True
    reject_on_worker_lost = True
    Request = BuildRequest  # type: ignore[assignment]  # a class or its dotted name; the stubs know only the name
    # Enforced by the pool, from outside the process running the build (BuildRequest.on_timeout).
    time_limit = settings.BUILD_TIME_LIMIT_S
    # Only the claim can meet these (a database busy or briefly away); once claimed, every failure
    # is an outcome of the build, recorded and never retried. A bad Dockerfile is never retried.
    autoretry_for = (DatabaseError,)
    max_retries = 5
    retry_backoff = True


@shared_task(bind=True, base=BuildTask, name=RUN_BUILD)
def run_build(self: Task, build_id: int) -> str:
    """Run one queued build: claim it, write its revision into a fresh context directory, and run
    the engine with every event going through `publish_build_event`. Returns what happened, for
    the worker's log."""
    locality.build_settled(build_id)  # taken: no longer waiting in a queue that might die
    claimed = services.build_start(build_id=build_id, worker=self.request.hostname or "")
    if claimed is None:
        return f"build {build_id}: not claimed (already taken, finished, or waiting its turn)"
    locality.scope_claimed(claimed.cache_scope, self.request.hostname or "")
    run = BuildRun(build_id=build_id, changes=selectors.build_changes_since_previous(build=claimed))
    watch = Watch(run)
    watch.start()
    try:
        _run_engine(claimed, run)
    except Exception as exc:
        log.exception("build %s crashed", build_id)
        services.build_fail(build_id=build_id, message=f"the studio could not run this build: {exc}")
    finally:
        watch.stopping.set()
        watch.join()
    if not run.finished and not run.lost.is_set():
        services.build_fail(build_id=build_id, message="the build ended without reporting an outcome")
    status = Build.objects.filter(id=build_id).values_list("status", flat=True).first()
    return f"build {build_id}: {status}"


def _run_engine(claimed: Build, run: BuildRun) -> None:
    revision = claimed.revision
    with tempfile.TemporaryDirectory(prefix=f"studio-build-{claimed.id}-") as tmp:
        context = Path(tmp) / "context"
        context.mkdir()
        services.revision_materialise(revision=revision, into=context)
        dockerfile = context / revision.dockerfile_path
        options = BuildOptions(
            context=context,
            dockerfile=dockerfile,
            dockerfile_text=dockerfile.read_text(encoding="utf-8"),
            target=claimed.target or None,
            build_args=dict(claimed.build_args),
            no_cache=claimed.no_cache,
            # Reasons compare with this project's earlier builds, whatever directory they ran in.
            history_id=f"project:{claimed.project_id}",
            cache_scope=claimed.cache_scope,
            limits=sandbox_limits(),
            cancel=run.cancel,
            # Written for this build alone and deleted after it: COPY takes its files over as
            # the store's blobs instead of copying their bytes.
            context_owned=True,
            # A stranger's FROM must not reach the worker's own machine or network.
            private_registries=False,
        )
        store = Store(settings.STUDIO_DATA_DIR)
        shared = shared_cache(store)
        try:
            result = build(store, options, run.sink)
            if shared is not None and result.image is not None:
                # Its config (and base layers no record shared) too, so the web server and the
                # classroom's checks on other hosts can read the image it made.
                image = result.image
                shared.share(lambda: shared.share_image(image))
        finally:
            if shared is not None:
                # After the build's last event: the layers it made are still going to the
                # registry, and must have gone before this process may stop.
                if not shared.drain(timeout=SHARE_TIMEOUT_S):
                    log.warning("build %s: some layers were not shared within %s s", claimed.id,
                                SHARE_TIMEOUT_S)
                shared.close()
                traffic = shared.blobs.traffic
                log.info("build %s: shared cache pushed %d bytes, pulled %d bytes", claimed.id,
                         traffic.pushed, traffic.pulled)


def store_tidy() -> int:
    """Delete what builds set aside in the store's trash, and what builds of processes that
    died left in its tmp/ (Store.reclaim), while no build is queued or running: deleting large
    trees stalls the disk's writes, so a build must never wait for it. Stops as soon as a build
    comes; the rest waits for the next idle moment. Returns how many trash entries went."""
    def busy() -> bool:
        return Build.objects.filter(status__in=Build.ACTIVE).exists()

    if busy():
        return 0
    store = Store(settings.STUDIO_DATA_DIR)
    store.reclaim()
    return store.empty_trash(stop=busy)


def store_evict() -> int:
    """Keep the worker's store under STUDIO_STORE_MAX_BYTES (stores.keep_under_limit): with a
    shared cache what goes is pulled again when a record names it. Returns how many layers went."""
    return keep_under_limit(Store(settings.STUDIO_DATA_DIR))


@task_postrun.connect(sender=run_build)
def tidy_after_build(**kwargs: Any) -> None:
    """A worker process that finished a build is idle: a moment to keep the store under its
    size and to empty the trash."""
    try:
        store_evict()
    except Exception:
        log.exception("keeping the store under its size failed")
    try:
        store_tidy()
    except Exception:
        log.exception("emptying the store's trash failed")


@worker_ready.connect
def reap_on_start(sender: Any = None, **kwargs: Any) -> None:
    """Builds this worker's previous life left running are failed now; other workers' dead builds
    are reaped too, so a studio restarted after a crash shows no build running forever. Then,
    while nothing is queued, the store is tidied (store_tidy)."""
    hostname = getattr(sender, "hostname", "") or ""
    try:
        if hostname:
            services.builds_reap_worker(worker=hostname, started=WORKER_STARTED)
        services.builds_reap()
    except Exception:
        log.exception("reaping stale builds at start-up failed")
    try:
        store_evict()  # a limit lowered since the last start applies at once
        store_tidy()
    except Exception:
        log.exception("tidying the store at start-up failed")
    finally:
        connections.close_all()


@celeryd_after_setup.connect
def consume_own_queue(sender: str, instance: Any, **kwargs: Any) -> None:
    """Each worker also takes builds sent to it by name: those of the scopes whose cache it holds."""
    instance.app.amqp.queues.select_add(locality.queue_for(sender))


@worker_ready.connect
def keep_alive(sender: Any = None, **kwargs: Any) -> None:
    """Say this worker is alive while it runs, so builds of its scopes are routed to it."""
    hostname = getattr(sender, "hostname", "") or ""
    if not hostname:
        return

    def beat() -> None:
        while True:
            locality.worker_alive(hostname)
            _reroute_orphans()
            time.sleep(locality.WORKER_ALIVE_TTL_S / 3)

    threading.Thread(target=beat, name="worker-alive", daemon=True).start()


def _reroute_orphans() -> None:
    """Builds sent to a worker that died are sent on within seconds by the workers still alive,
    even while none of them builds (no reaper runs then). Only Redis is asked unless one is found."""
    if not locality.orphaned_builds():
        return
    try:
        services.builds_reroute()
    except Exception:
        log.exception("sending on the builds of a dead worker failed")
    finally:
        connections.close_all()  # this thread's own


@worker_shutdown.connect
def hand_over(sender: Any = None, **kwargs: Any) -> None:
    hostname = getattr(sender, "hostname", "") or ""
    if hostname:
        locality.worker_gone(hostname)
