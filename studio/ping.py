"""The smallest trip through every part of the studio, and the proof that they are wired together:
a request enqueues a task through Redis, a Celery worker runs it and publishes an event on the
channel layer, and the person who asked hears it on their websocket (`ws/ping/`)."""

from __future__ import annotations

import secrets
from typing import Any

from asgiref.sync import async_to_sync
from celery import Task, shared_task
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from studio.sockets import scope_user


def ping_group(user_id: int) -> str:
    """Each person hears only their own pings."""
    return f"ping.user.{user_id}"


@shared_task(bind=True)
def pong(self: Task, user_id: int, token: str) -> None:
    layer = get_channel_layer()
    assert layer is not None, "CHANNEL_LAYERS is not configured"
    async_to_sync(layer.group_send)(
        ping_group(user_id), {"type": "ping.pong", "token": token, "worker": self.request.hostname}
    )


@require_POST
def ping(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"error": "log in first"}, status=403)
    token = secrets.token_hex(8)
    pong.delay(request.user.pk, token)
    return JsonResponse({"token": token}, status=202)


class PingConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        user = scope_user(self.scope)
        if not user.is_authenticated:
            await self.close()
            return
        self.group = ping_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def ping_pong(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "pong", "token": event["token"], "worker": event["worker"]})
