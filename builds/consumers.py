"""The websockets of the build domain.

`ws/builds/<id>/` streams one build's events: the stored ones, then the live ones, each exactly
once and in seq order. The consumer joins the build's group *before* reading the database, so an
event is either already stored when it reads or arrives live afterwards (the publisher stores
before it sends); seqs it has already sent are dropped. A live event that skips ahead (one was
lost on the way) and a slow timer both make it read what it missed from the database, which is
what carries a page through a short Redis outage; a longer one, or a Redis that restarted empty,
closes the socket (studio/sockets.py) and the page reconnects. `?after=<seq>` starts after what the
page has.

`ws/projects/<id>/` announces the project's new builds and their status changes.

Only people who may see the project get in (its owner, anyone for a public project, whoever has
its share link as `?token=`); nobody signed out. asgi.py already refused other sites' pages.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async
from django.http import Http404

from studio.projects.selectors import project_get
from studio.sockets import ClientGone, GroupConsumer, query_params, scope_user

from . import live, selectors

log = logging.getLogger(__name__)

# How often a build's socket checks the database for events it did not hear live.
CATCH_UP_EVERY_S = 2.0


class BuildConsumer(GroupConsumer):
    async def connect(self) -> None:
        user = scope_user(self.scope)
        query = query_params(self.scope)
        self.build_id = int(self.scope["url_route"]["kwargs"]["build_id"])
        after = query.get("after", "0")
        if not after.isdigit():
            await self.close(code=4400)
            return
        allowed = user.is_authenticated and await database_sync_to_async(selectors.build_can_view)(
            user=user, build_id=self.build_id, token=query.get("token")
        )
        if not allowed:
            await self.close()
            return
        self.last_sent = int(after)
        self.finished = False
        self.lock = asyncio.Lock()
        if not await self.join(live.build_group(self.build_id)):
            return
        await self.accept()
        await self.catch_up()
        self.start_task(self.keep_catching_up())

    async def build_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        async with self.lock:
            if event["seq"] <= self.last_sent:
                return
            if event["seq"] == self.last_sent + 1:
                await self._send(event)
                return
        await self.catch_up()  # a gap: fill it from the database, this event included

    async def catch_up(self) -> None:
        async with self.lock:
            while True:
                events = await database_sync_to_async(selectors.build_events)(
                    build_id=self.build_id, after=self.last_sent
                )
                for event in events:
                    await self._send(event)
                if len(events) < selectors.MAX_EVENTS_PAGE:
                    return

    async def keep_catching_up(self) -> None:
        failures = 0
        while not self.finished and not self.closing:
            await asyncio.sleep(CATCH_UP_EVERY_S)
            try:
                await self.catch_up()
                failures = 0
            except ClientGone:
                return  # the page has gone: nobody is left to catch up for
            except Exception:  # the database busy for a moment: the next round tries again
                failures += 1
                if failures == 1:  # one message for an outage, not one every round
                    log.warning(
                        "build %s: catching up from the database failed", self.build_id, exc_info=True
                    )

    async def _send(self, event: dict[str, Any]) -> None:
        await self.send_json(event)
        self.last_sent = event["seq"]
        if event["type"] == "build.finished":
            self.finished = True


class ProjectConsumer(GroupConsumer):
    async def connect(self) -> None:
        user = scope_user(self.scope)
        project_id = int(self.scope["url_route"]["kwargs"]["project_id"])
        token = query_params(self.scope).get("token")
        allowed = user.is_authenticated and await database_sync_to_async(_project_visible)(
            user, project_id, token
        )
        if not allowed:
            await self.close()
            return
        if await self.join(live.project_group(project_id)):
            await self.accept()

    async def project_build(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "build.status", "build": message["build"]})

    async def project_checking(self, message: dict[str, Any]) -> None:
        """A class's checks of one of the project's builds have begun (studio/classrooms/services.py)."""
        await self.send_json({"type": "project.checking", "build": message["build"]})

    async def project_checked(self, message: dict[str, Any]) -> None:
        """A class's checks of one of the project's builds are done (studio/classrooms/tasks.py):
        a page showing them reads them again."""
        await self.send_json({"type": "project.checked", "build": message["build"]})


def _project_visible(user: Any, project_id: int, token: str | None) -> bool:
    try:
        project_get(user=user, project_id=project_id, token=token)
    except Http404:
        return False
    return True
