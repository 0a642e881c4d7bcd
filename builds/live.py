"""The live side of builds, all through Redis: the websocket groups (one name helper each, used by
the publisher and the consumers alike) and the cancel flag a running build's task watches.

Everything here is best effort. The database holds the truth (events, statuses, cancel requests),
so while Redis is away a build keeps running and its watchers catch up from the database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Coroutine
from typing import Any

import redis
from channels.layers import get_channel_layer
from django.conf import settings

log = logging.getLogger(__name__)

CANCEL_FLAG_TTL_S = 24 * 60 * 60
# A send that takes longer is given up: the event is stored, and the pages catch up from there.
SEND_TIMEOUT_S = 5.0
# After a failure, how long to stay quiet about the next one (a Redis restart is one message, not
# one per event).
WARN_EVERY_S = 10.0


def build_group(build_id: int) -> str:
    return f"build.{build_id}"


def project_group(project_id: int) -> str:
    return f"project.{project_id}"


def cancel_key(build_id: int) -> str:
    return f"studio:build:{build_id}:cancel"


class _Quiet:
    """Logs a failure of some kind at most once every WARN_EVERY_S seconds."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def warn(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(what, -WARN_EVERY_S) < WARN_EVERY_S:
                return
            self._last[what] = now
        log.warning("%s failed (continuing without it): %r", what, exc)


_quiet = _Quiet()


class _Loop:
    """One event loop per process, on its own thread, for sending from synchronous code.

    async_to_sync would start a loop for every call, and the channel layer keeps its Redis
    connections per loop, so every event would open a connection of its own: a few milliseconds
    each, paid inside a RUN step's output loop. Made again in a forked child (a prefork worker),
    where the parent's thread does not exist."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float) -> Any:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                threading.Thread(
                    target=self._loop.run_forever, name="studio-channel-layer", daemon=True
                ).start()
            loop = self._loop
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()  # a send that hangs must not linger in the loop
            raise


_loop = _Loop()


def group_send(group: str, message: dict[str, Any]) -> bool:
    """Send `message` to the websocket group; False when the channel layer could not be reached."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        _loop.run(layer.group_send(group, message), timeout=SEND_TIMEOUT_S)
    except Exception as exc:  # a layer that cannot be reached must never stop a build
        _quiet.warn(f"sending to {group.split('.')[0]} groups", exc)
        return False
    return True


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _redis() -> redis.Redis:
    url = settings.REDIS_URL
    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        return _clients[url]


def cancel_flag_set(build_id: int) -> bool:
    try:
        _redis().set(cancel_key(build_id), b"1", ex=CANCEL_FLAG_TTL_S)
    except redis.RedisError as exc:
        _quiet.warn("setting a cancel flag", exc)
        return False
    return True


def cancel_flag_is_set(build_id: int) -> bool:
    try:
        return bool(_redis().exists(cancel_key(build_id)))
    except redis.RedisError as exc:
        _quiet.warn("reading a cancel flag", exc)
        return False
