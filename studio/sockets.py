"""The base of the studio's live websockets: a consumer that listens to one channel-layer group
and closes properly when that layer fails, so that the page reconnects (and, for a build, resumes
with `?after=`) instead of waiting on a socket nothing will reach again.

The layer can fail two ways. Redis away for long enough makes the layer's commands raise; the
consumer then closes with 1012 ("service restart") rather than letting the error drop the
connection without a close frame. Redis back quickly, empty, raises nothing at all: the layer
reconnects, but the group no longer holds this socket, so nothing more arrives live. A consumer
that has heard nothing from its group for a while sends a probe to the group (any member's probe
proves the membership of all, so a busy group sends few); a probe that never comes back means the
membership was lost, and the socket is closed the same way.

Everything the consumer started stops with it, however it ends: a page that left is never
written to again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from studio.models import User

log = logging.getLogger(__name__)

# Close code for "the server is restarting a part: reconnect" (RFC 6455 registry).
SERVICE_RESTART = 1012
# A group silent this long is probed; a probe not back within PROBE_TIMEOUT_S means it was lost.
PROBE_AFTER_S = 2.0
PROBE_TIMEOUT_S = 2.0


def query_params(scope: Mapping[str, Any]) -> dict[str, str]:
    """A socket's query string as one value a name (the last, as Django's `QueryDict.get` reads)."""
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {name: values[-1] for name, values in parsed.items()}


class ClientGone(Exception):
    """Sending to the page failed: it has gone, and nothing more should be sent."""


class GroupConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    closing = False
    heard_at = 0.0
    tasks: list[asyncio.Task[None]]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.tasks = []
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:
            # The layer (or the database) failed under the socket: say so with a close frame.
            log.warning("%s: closing the socket after %r", scope.get("path", "a websocket"), exc)
            if not self.closing:
                self.closing = True
                with contextlib.suppress(Exception):  # the page may be gone as well
                    await send({"type": "websocket.close", "code": SERVICE_RESTART})
        finally:
            for task in self.tasks:
                task.cancel()
            if self.group is not None:
                with contextlib.suppress(Exception):  # Redis may be why the socket ended
                    await self.channel_layer.group_discard(self.group, self.channel_name)

    async def join(self, group: str) -> bool:
        """Join `group` (before accepting, so nothing sent from now on is missed). False, with the
        socket refused, when the layer cannot be reached: the page tries again later."""
        try:
            await self.channel_layer.group_add(group, self.channel_name)
        except Exception as exc:
            log.warning("%s: the channel layer cannot be reached: %r", group, exc)
            await self.close(code=SERVICE_RESTART)
            return False
        self.group = group
        self.heard_at = time.monotonic()
        self.start_task(self._watch_layer())
        return True

    def start_task(self, coroutine: Any) -> None:
        """Run `coroutine` beside the socket, for as long as the socket lives."""
        self.tasks.append(asyncio.create_task(coroutine))

    async def dispatch(self, message: dict[str, Any]) -> None:
        if not message["type"].startswith("websocket."):
            self.heard_at = time.monotonic()  # anything from the group proves the membership
        await super().dispatch(message)

    async def layer_probe(self, message: dict[str, Any]) -> None:
        """A member's probe: heard, which is all it is for."""

    async def send_json(self, content: Any, close: bool = False) -> None:
        if self.closing:
            raise ClientGone("the socket is closing")
        try:
            await super().send_json(content, close)
        except Exception as exc:
            self.closing = True
            raise ClientGone(repr(exc)) from exc

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        if self.closing:
            return
        self.closing = True
        await super().close(code, reason)

    async def _watch_layer(self) -> None:
        assert self.group is not None
        while not self.closing:
            await asyncio.sleep(PROBE_AFTER_S)
            if time.monotonic() - self.heard_at < PROBE_AFTER_S:
                continue
            sent = time.monotonic()
            try:
                await asyncio.wait_for(
                    self.channel_layer.group_send(self.group, {"type": "layer.probe"}), PROBE_TIMEOUT_S
                )
                await asyncio.sleep(PROBE_TIMEOUT_S)
            except Exception as exc:
                log.warning("%s: the channel layer failed: %r; closing the socket", self.group, exc)
                await self._close_quietly()
                return
            if self.heard_at < sent:
                log.warning("%s: the channel layer lost this socket (Redis restarted?); closing", self.group)
                await self._close_quietly()
                return

    async def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await self.close(code=SERVICE_RESTART)


def scope_user(scope: Mapping[str, Any]) -> User | AnonymousUser:
    """The socket's user: AuthMiddlewareStack (asgi.py) puts the session's in every scope."""
    return cast("User | AnonymousUser", scope["user"])
