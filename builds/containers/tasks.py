"""The Celery tasks of containers, on workers: one runs a container (claim it, run the build's
image in the sandbox with the build limits and the container time limit, stream its output, and
record its writable layer); the others commit or remove that layer, on the worker whose store
holds it (sent to its own queue)."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from celery import Task, shared_task
from django.conf import settings

from builds.engine import container as engine
from builds.engine.errors import EngineError
from builds.engine.printable import printable
from builds.engine.sandbox import Limits
from builds.engine.sharedcache import SharedCacheIndex
from builds.engine.store import Image, Store
from builds.heartbeat import beating
from builds.stores import image_here, shared_cache

from . import live, services
from .models import Container

log = logging.getLogger(__name__)

SHARE_TIMEOUT_S = 600


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


@contextmanager
def worker_store() -> Iterator[tuple[Store, SharedCacheIndex | None]]:
    """This worker's store, reading and sharing through the shared cache when the studio has
    one; what it is still sharing has gone when this ends."""
    store = Store(settings.STUDIO_DATA_DIR)
    shared = shared_cache(store)
    try:
        yield store, shared
    finally:
        if shared is not None:
            if not shared.drain(timeout=SHARE_TIMEOUT_S):
                log.warning("some layers were not shared within %s s", SHARE_TIMEOUT_S)
            shared.close()


def build_image(store: Store, container: Container) -> Image:
    """The image the container's build made, fetched through the shared cache when another
    worker built it."""
    image = image_here(store, container.build.image_digest)
    return image if image is not None else engine.find_image(store, container.build.image_digest)


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

    def beat() -> bool:
        output, chars = run.snapshot()
        return services.container_beat(container_id=container_id, output=output, output_chars=chars)

    with beating(f"container {container_id}", beat, run.cancel):
        try:
            _run(claimed, run)
        except EngineError as exc:  # the image cannot be run as it is: the person is told why
            services.container_fail(container_id=container_id, message=exc.describe())
        except Exception as exc:
            log.exception("container %s crashed", container_id)
            services.container_fail(container_id=container_id, message=f"the studio could not run it: {exc}")
    status = Container.objects.filter(id=container_id).values_list("status", flat=True).first()
    return f"container {container_id}: {status}"


def _run(claimed: Container, run: ContainerRun) -> None:
    with worker_store() as (store, _shared):
        image = build_image(store, claimed)
        engine.container_check(image.config, claimed.cmd)  # refused before anything is made
        engine_id = engine.create(store)
        services.container_made(container_id=claimed.id, engine_id=engine_id)
        ran = engine.run(store, image, claimed.cmd, container_id=engine_id, limits=container_limits(),
                         on_output=run.on_output, cancel=run.cancel)
        output, chars = run.snapshot()
        if not services.container_finish(container_id=claimed.id, ran=ran, output=output,
                                         output_chars=chars):
            engine.remove(store, engine_id)  # reaped while it ran: nobody will ask for its layer


class ContainerLayerTask(Task):
    # A commit is claimed with a guarded update, and a removal removes what is already gone
    # harmlessly; a message whose worker died before it ran is delivered again.
    acks_late = True
    reject_on_worker_lost = True


@shared_task(bind=True, base=ContainerLayerTask, name=services.COMMIT_CONTAINER)
def commit_container(self: Task, container_id: int) -> str:
    """Store a container's writable layer as one more layer on its build's image, in this
    worker's store (which holds the layer), and share the image so that every host can read it;
    only then is the container marked committed."""
    claimed = services.container_commit_claim(container_id=container_id)
    if claimed is None:
        return f"container {container_id}: commit not claimed (already taken, or given up on)"
    lost = threading.Event()

    def beat() -> bool:
        return services.container_commit_beat(container_id=container_id)

    with beating(f"container {container_id}", beat, lost), worker_store() as (store, shared):
        try:
            image = build_image(store, claimed)
            words = engine.container_argv(image.config, claimed.cmd)
            new = engine.commit(store, image, claimed.engine_id,
                                created_by=f"studio run (build {claimed.build_id}) {' '.join(words)}")
            if shared is not None and not shared.share_image(new):
                log.warning("container %s: its image %s was not shared", container_id, new.digest)
            top = store.layer(new.layers[-1]).summary() if len(new.layers) > len(image.layers) else None
        except (EngineError, OSError) as exc:
            message = exc.describe() if isinstance(exc, EngineError) else str(exc)
            services.container_commit_failed(container_id=container_id, message=message,
                                             layer_kept=bool(claimed.engine_id)
                                             and engine.exists(store, claimed.engine_id))
            return f"container {container_id}: commit failed ({message})"
        services.container_committed(container_id=container_id, image=new, top=top)
    return f"container {container_id}: committed {new.digest}"


@shared_task(bind=True, base=ContainerLayerTask, name=services.REMOVE_CONTAINER)
def remove_container(self: Task, container_id: int) -> str:
    """Discard the writable layer of a removed (or failed) container from this worker's store."""
    engine_id = services.container_removable(container_id=container_id)
    if not engine_id:
        return f"container {container_id}: nothing to remove"
    try:
        gone = engine.remove(Store(settings.STUDIO_DATA_DIR), engine_id)
    except (EngineError, OSError) as exc:
        log.warning("could not remove container %s: %r", engine_id, exc)
        return f"container {container_id}: not removed ({exc})"
    return f"container {container_id}: {'removed' if gone else 'had no layer here'}"
