"""Routing builds by cache locality: a scope's next build goes to the worker that last built for
it, while that worker is alive, so it finds its cache on that worker's disk.

Each worker also consumes a queue named after itself (added when it starts, see tasks.py), keeps
a key in Redis alive while it runs, and records, as it claims a build, that it is the scope's
worker now. A worker that dies stops refreshing its key: within WORKER_ALIVE_TTL_S its scopes'
builds go to the shared queue again, and a message already sent to its own queue is sent again
by the reaper (services._requeue_lost), routed then to the shared queue.
"""

from __future__ import annotations

import logging

import redis

from . import live

log = logging.getLogger(__name__)

WORKER_ALIVE_TTL_S = 10
SCOPE_WORKER_TTL_S = 7 * 24 * 3600


def queue_for(worker: str) -> str:
    """The queue only `worker` (a Celery node name) consumes."""
    return f"worker.{worker}"


def _alive_key(worker: str) -> str:
    return f"studio:worker-alive:{worker}"


def _scope_key(scope: str) -> str:
    return f"studio:scope-worker:{scope}"


def worker_alive(worker: str) -> None:
    """Refresh the worker's liveness (every WORKER_ALIVE_TTL_S / 3 from the worker)."""
    try:
        live._redis().set(_alive_key(worker), b"1", ex=WORKER_ALIVE_TTL_S)
    except redis.RedisError as exc:
        log.warning("could not say worker %s is alive: %r", worker, exc)


def worker_gone(worker: str) -> None:
    """A worker stopping cleanly hands its scopes over at once."""
    try:
        live._redis().delete(_alive_key(worker))
    except redis.RedisError as exc:
        log.warning("could not say worker %s stopped: %r", worker, exc)


def scope_claimed(scope: str, worker: str) -> None:
    """`worker` builds for `scope` now: its next builds go there while it lives."""
    if not scope or not worker:
        return
    try:
        live._redis().set(_scope_key(scope), worker.encode(), ex=SCOPE_WORKER_TTL_S)
    except redis.RedisError as exc:
        log.warning("could not record scope %s's worker: %r", scope, exc)


def queue_for_scope(scope: str) -> str | None:
    """The queue of the live worker that last built for `scope`, or None for the shared queue
    (no such worker, it died, or Redis cannot say)."""
    if not scope:
        return None
    try:
        client = live._redis()
        worker = client.get(_scope_key(scope))
        if worker is None or not client.exists(_alive_key(worker.decode())):
            return None
    except redis.RedisError:
        return None
    return queue_for(worker.decode())
