"""Guards around kombu's Redis transport, so that a Redis restart does not stop the Celery worker.

When the worker loses Redis, Celery detaches the broken connection from its transport before it
closes it, and reconnects with a new one. Two things still reach for the old, detached transport
and fail with an AttributeError that Celery takes for an unrecoverable error, shutting the
worker down (kombu 5.7.0):

- closing the old channel puts its unacknowledged messages back (a build running with
  `acks_late`, builds the worker had reserved);
- a task that was running through the outage acknowledges its message when it ends.

Neither can reach Redis through that connection any more. The messages stay in Redis's unacked
set (its visibility timeout brings them back, and the builds' guarded claim makes running one
again harmless), or went with a Redis that restarted empty (the builds' reaper sends those
builds again), so doing nothing there loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def _detached(qos: Any) -> bool:
    return getattr(qos.channel.connection, "client", None) is None


def _guard(method: Callable[..., Any], what: str, *, one_message: bool) -> Callable[..., Any]:
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _detached(self):
            return method(self, *args, **kwargs)
        if self._delivered:
            log.warning("the broker connection is gone: %s skipped; the message(s) stay with Redis", what)
        if one_message:  # ack(delivery_tag) / reject(delivery_tag, requeue)
            self._delivered.pop(args[0] if args else kwargs.get("delivery_tag"), None)
        else:
            self._delivered.clear()
        return None

    guarded.studio_guarded = True  # type: ignore[attr-defined]
    return guarded


def install() -> None:
    from kombu.transport import redis as kombu_redis

    qos = kombu_redis.QoS
    if getattr(qos.restore_unacked, "studio_guarded", False):
        return
    # Patched in place, on purpose: kombu's worker-side QoS has no hook for this.
    qos.restore_unacked = _guard(  # type: ignore[method-assign]
        qos.restore_unacked, "restoring unacknowledged messages", one_message=False
    )
    qos.ack = _guard(qos.ack, "acknowledging a message", one_message=True)  # type: ignore[method-assign]
    qos.reject = _guard(qos.reject, "rejecting a message", one_message=True)  # type: ignore[method-assign]
