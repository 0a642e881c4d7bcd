"""Routing by cache locality, against the tests' real Redis: a scope's builds go to the worker that
last built for it while that worker says it is alive, and to the shared queue once it stops."""

from __future__ import annotations

import uuid
from typing import Any

from builds import locality

from .conftest import RedisServer


def test_a_scope_follows_its_live_worker_and_falls_back_when_it_stops(
    redis_server: RedisServer, settings: Any
) -> None:
    settings.REDIS_URL = redis_server.url
    scope, worker = f"user:{uuid.uuid4().hex}", f"w-{uuid.uuid4().hex}@host"
    assert locality.queue_for_scope(scope) is None  # never built: the shared queue
    locality.scope_claimed(scope, worker)
    assert locality.queue_for_scope(scope) is None  # its worker never said it was alive
    locality.worker_alive(worker)
    assert locality.queue_for_scope(scope) == locality.queue_for(worker)
    locality.worker_gone(worker)
    assert locality.queue_for_scope(scope) is None


def test_without_redis_builds_go_to_the_shared_queue() -> None:
    locality.scope_claimed("user:1", "w@host")
    assert locality.queue_for_scope("user:1") is None
