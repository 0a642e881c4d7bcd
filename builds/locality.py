"""Routing builds by cache locality: a scope's next build goes to the worker that last built for
it, while that worker is alive, so it finds its cache on that worker's disk.

Each worker also consumes a queue named after itself (added when it starts, see tasks.py), keeps
a key in Redis alive while it runs, and records, as it claims a build, that it is the scope's
worker now. A worker that dies stops refreshing its key: within WORKER_ALIVE_TTL_S its scopes'
builds go to the shared queue again, and a message already sent to its own queue is sent again
at once, to the shared queue, by whichever process notices first that the worker it was routed to
is gone (services.builds_reroute: the other workers check every few seconds, the reaper too).
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


# One hash for every build sent to a worker's own queue and not yet taken: build id -> worker.
ROUTED_KEY = "studio:routed-builds"


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


def worker_is_alive(worker: str) -> bool:
    """Whether `worker` keeps its liveness key; True when Redis cannot say (nothing is given up
    on for Redis being away)."""
    try:
        return bool(live._redis().exists(_alive_key(worker)))
    except redis.RedisError:
        return True


def scope_claimed(scope: str, worker: str) -> None:
    """`worker` builds for `scope` now: its next builds go there while it lives."""
    if not scope or not worker:
        return
    try:
        live._redis().set(_scope_key(scope), worker.encode(), ex=SCOPE_WORKER_TTL_S)
    except redis.RedisError as exc:
        log.warning("could not record scope %s's worker: %r", scope, exc)


def worker_for_scope(scope: str) -> str | None:
    """The live worker that last built for `scope`, or None for the shared queue (no such
    worker, it died, or Redis cannot say)."""
    if not scope:
        return None
    try:
        client = live._redis()
        found = client.get(_scope_key(scope))
        worker = _text(found) if found is not None else None
        if worker is None or not client.exists(_alive_key(worker)):
            return None
    except redis.RedisError:
        return None
    return worker


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def queue_for_scope(scope: str) -> str | None:
    """The queue of the live worker that last built for `scope`, or None for the shared queue."""
    worker = worker_for_scope(scope)
    return queue_for(worker) if worker else None


def build_routed(build_id: int, worker: str) -> None:
    """Build `build_id` is sent to `worker`'s own queue: watched until that worker takes it."""
    try:
        live._redis().hset(ROUTED_KEY, str(build_id), worker.encode())
    except redis.RedisError as exc:
        log.warning("could not record where build %s was sent: %r", build_id, exc)


def build_settled(build_id: int) -> bool:
    """Stop watching where `build_id` was sent (a worker took it, or it is sent on). True only
    for the one caller that removed it, which is what lets only one process send it on."""
    try:
        return bool(live._redis().hdel(ROUTED_KEY, str(build_id)))
    except redis.RedisError:
        return False


def orphaned_builds() -> list[int]:
    """Builds sent to a worker's own queue whose worker is no longer alive, not yet taken."""
    try:
        client = live._redis()
        routed = client.hgetall(ROUTED_KEY)
        if not routed:
            return []
        workers = sorted({_text(w) for w in routed.values()})
        alive = dict(zip(workers, client.mget([_alive_key(w) for w in workers]), strict=True))
    except redis.RedisError:
        return []
    return sorted(int(b) for b, w in routed.items() if alive[_text(w)] is None)
