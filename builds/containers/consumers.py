"""`ws/containers/<id>/`: one container, for its owner only. First a snapshot of its state from
the database (`container.state`: the output kept so far, and the layer once it has one), then
its output as it comes (`container.log`, each with the `offset` of its first character in all
the container printed, so a page drops what the snapshot already held), its end and each later
change of its layer (`container.layer`: committing, committed, failed). The group is joined before
the database is read, so nothing falls between."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.http import Http404

from studio.sockets import GroupConsumer, scope_user

from . import live, services


def _snapshot(user: Any, container_id: int) -> dict[str, Any] | None:
    try:
        return services.container_json(services.container_get(user=user, container_id=container_id))
    except Http404:
        return None


class ContainerConsumer(GroupConsumer):
    async def connect(self) -> None:
        user = scope_user(self.scope)
        container_id = int(self.scope["url_route"]["kwargs"]["container_id"])
        if not user.is_authenticated or await database_sync_to_async(_snapshot)(user, container_id) is None:
            await self.close()
            return
        if not await self.join(live.container_group(container_id)):
            return
        await self.accept()
        state = await database_sync_to_async(_snapshot)(user, container_id)
        await self.send_json({"type": "container.state", "container": state})

    async def container_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])
