"""The Celery task that runs a container: claim it, run the build's image in the sandbox with the
build limits and the container time limit, stream its output, and record its writable layer."""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass, field

from celery import Task, shared_task
from django.conf import settings
from django.db import DatabaseError, connections

from builds.engine import container as engine
from builds.engine.errors import EngineError
from builds.engine.printable import printable
from builds.engine.sandbox import Limits

from . import live, services
from .models import Container

log = logging.getLogger(__name__)


def container_limits() -> Limits:
    """A build step's limits (memory, processes, disk, output; no network), with the container's
    own, shorter, time limit."""
    limits: Limits = settings.BUILD_LIMITS
    return dataclasses.replace(limits, timeout_s=float(settings.CONTAINER_TIMEOUT_S))


@dataclass
class ContainerRun:
    """One run's output: the latest OUTPUT_KEEP_CHARS kept, everything counted and streamed."""

    container_id: int
    cancel: threading.Event = field(default_factory=threading.Event)
    kept: str = ""
    chars: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_output(self, stream: str, text: str) -> None:
        text = printable(text)
        with self.lock:
            offset = self.chars
            self.chars += len(text)
            self.kept = (self.kept + text)[-services.OUTPUT_KEEP_CHARS:]
        live.publish(self.container_id, {"type": "container.log", "stream": stream, "text": text,
                                         "offset": offset})

    def snapshot(self) -> tuple[str, int]:
        with self.lock:
            return self.kept, self.chars


class Heartbeat(threading.Thread):
    """Beside a running container: keeps its heartbeat and output in the database, and stops it
    when it was reaped meanwhile."""

    def __init__(self, run: ContainerRun) -> None:
        super().__init__(name=f"container-{run.container_id}-beat", daemon=True)
        self.run_ = run
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.wait(settings.BUILD_HEARTBEAT_S):
                output, chars = self.run_.snapshot()
                try:
                    if not services.container_beat(container_id=self.run_.container_id, output=output,
                                                   output_chars=chars):
                        self.run_.cancel.set()
                except DatabaseError as exc:
                    log.warning("container %s: heartbeat failed: %r", self.run_.container_id, exc)
        finally:
            connections.close_all()


class ContainerTask(Task):
    # As a build's: the claim is a guarded update, so a message run twice is harmless, and one
    # whose worker died before claiming it is delivered again.
    acks_late = True
    reject_on_worker_lost = True
    # From outside the process: the sandbox stops the container at its time limit; this stops a
    # worker process stuck past it. The reaper then fails the container by its silent heartbeat.
    time_limit = settings.CONTAINER_TIMEOUT_S + 120


@shared_task(bind=True, base=ContainerTask, name=services.RUN_CONTAINER)
def run_container(self: Task, container_id: int) -> str:
    """Run one queued container. Returns what happened, for the worker's log."""
    claimed = services.container_claim(container_id=container_id, worker=self.request.hostname or "")
    if claimed is None:
        return f"container {container_id}: not claimed (already taken or ended)"
    run = ContainerRun(container_id)
    beat = Heartbeat(run)
    beat.start()
    try:
        _run(claimed, run)
    except Exception as exc:
        log.exception("container %s crashed", container_id)
        message = exc.describe() if isinstance(exc, EngineError) else f"the studio could not run it: {exc}"
        services.container_fail(container_id=container_id, message=message)
    finally:
        beat.stopping.set()
        beat.join()
    status = Container.objects.filter(id=container_id).values_list("status", flat=True).first()
    return f"container {container_id}: {status}"


def _run(claimed: Container, run: ContainerRun) -> None:
    store = services.store()
    image = engine.find_image(store, claimed.build.image_digest)
    engine.container_check(image.config, claimed.cmd)  # refused before anything is made
    engine_id = engine.create(store)
    services.container_made(container_id=claimed.id, engine_id=engine_id)
    ran = engine.run(store, image, claimed.cmd, container_id=engine_id, limits=container_limits(),
                     on_output=run.on_output, cancel=run.cancel)
    output, chars = run.snapshot()
    if not services.container_finish(container_id=claimed.id, ran=ran, output=output, output_chars=chars):
        engine.remove(store, engine_id)  # reaped while it ran: nobody will ask for its layer
