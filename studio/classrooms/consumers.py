"""`ws/classrooms/<id>/?exercise=<id>`: the teacher's dashboard, live. Only the class's teacher
gets in. It joins the class's group first, then sends the grid as it is (`classroom.snapshot`),
then every change as it happens: a student's whole row (`student.row`) when a build is queued,
starts or ends, one cell (`student.step`) as a step starts or finishes, `student.removed`, and
the class's prediction accuracy per step (`class.predictions`) whenever a build grades one.
Every message is idempotent (a row replaces the row; a cell names its build, and the page keeps
it only for the build the row shows), so a change that reaches both the snapshot and the live
stream does no harm, and none falls between them."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.http import Http404

from studio.sockets import GroupConsumer, query_params, scope_user

from . import selectors
from .live import classroom_group


def _dashboard_for_teacher(user: Any, classroom_id: int, exercise_id: int | None) -> dict[str, Any] | None:
    try:
        classroom = selectors.classroom_get_taught(user=user, classroom_id=classroom_id)
        return selectors.dashboard(classroom=classroom, exercise_id=exercise_id)
    except Http404:
        return None


class ClassroomConsumer(GroupConsumer):

    async def connect(self) -> None:
        user = scope_user(self.scope)
        classroom_id = int(self.scope["url_route"]["kwargs"]["classroom_id"])
        exercise = query_params(self.scope).get("exercise", "")
        if exercise and not exercise.isdigit():
            await self.close(code=4400)
            return
        exercise_id = int(exercise) if exercise else None
        if (
            not user.is_authenticated
            or await database_sync_to_async(_dashboard_for_teacher)(user, classroom_id, exercise_id) is None
        ):
            await self.close()
            return
        if not await self.join(classroom_group(classroom_id)):
            return
        await self.accept()
        # Read again now that the group is joined: whatever changes from here on arrives live.
        snapshot = await database_sync_to_async(_dashboard_for_teacher)(user, classroom_id, exercise_id)
        await self.send_json({"type": "classroom.snapshot", **(snapshot or {})})

    async def classroom_row(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "student.row", "row": message["row"]})

    async def classroom_step(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "student.step", **{k: v for k, v in message.items() if k != "type"}})

    async def classroom_predictions(self, message: dict[str, Any]) -> None:
        rest = {k: v for k, v in message.items() if k != "type"}
        await self.send_json({"type": "class.predictions", **rest})

    async def classroom_removed(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "student.removed", "student": message["student"]})
