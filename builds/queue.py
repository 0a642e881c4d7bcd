"""Sending a build to the workers. The task goes by its name, so what queues builds (services)
does not import what runs them (tasks), which calls back into services: the two modules depend
one way only."""

from __future__ import annotations

from celery import current_app

RUN_BUILD = "builds.run_build"


def send_build(build_id: int, queue: str | None = None) -> None:
    """Queue the task that runs build `build_id`, on `queue` (one worker's own) or the shared
    queue. The options that matter live with the task on the worker (its time limit, late
    acknowledgement, retries), so a message sent by name runs exactly as one sent with
    `run_build.delay`."""
    current_app.send_task(RUN_BUILD, args=(build_id,), queue=queue)  # None: Celery's default queue
