"""The class's channel: what its teacher's dashboard hears as the students build.

Builds tell the studio through `builds.signals`; these receivers find out whether the build is of
a student's exercise copy and, if so, judge it when it ends and send the student's new row (or,
for a step, just that cell) to the class's group. Whatever goes wrong here is logged by the
sender and never stops a build.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from django.dispatch import receiver

from builds import live
from builds.models import Build
from builds.signals import build_changed, build_progressed
from studio.models import Assignment

from . import selectors, services

# Step events are many; which project belongs to which class is asked once per project and
# process. A project's assignment never changes once made (copies are new projects).
_CACHE_LIMIT = 10_000


def classroom_group(classroom_id: int) -> str:
    return f"classroom.{classroom_id}"


@dataclass(frozen=True)
class Seat:
    classroom: int
    student: int  # the membership's id
    exercise: int


class _Seats:
    def __init__(self) -> None:
        self._by_project: dict[int, Seat | None] = {}
        self._lock = threading.Lock()

    def of_project(self, project_id: int) -> Seat | None:
        with self._lock:
            if project_id in self._by_project:
                return self._by_project[project_id]
        found = (
            Assignment.objects.filter(project_id=project_id)
            .values_list("membership__classroom_id", "membership_id", "exercise_id")
            .first()
        )
        seat = Seat(*found) if found else None
        with self._lock:
            if len(self._by_project) >= _CACHE_LIMIT:
                self._by_project.clear()
            self._by_project[project_id] = seat
        return seat


seats = _Seats()


def publish_row(assignment: Assignment) -> None:
    row = selectors.student_row(assignment)
    live.group_send(
        classroom_group(assignment.membership.classroom_id), {"type": "classroom.row", "row": row}
    )


def publish_removed(*, classroom_id: int, student: int) -> None:
    live.group_send(classroom_group(classroom_id), {"type": "classroom.removed", "student": student})


@receiver(build_changed, dispatch_uid="classrooms.build_changed")
def on_build_changed(sender: Any, build_id: int, **kwargs: Any) -> None:
    build = Build.objects.filter(id=build_id).first()
    if build is None or seats.of_project(build.project_id) is None:
        return
    assignment = (
        Assignment.objects.select_related("exercise", "membership", "membership__student", "project")
        .filter(project_id=build.project_id, membership__removed_at__isnull=True)
        .first()
    )
    if assignment is None:
        return
    if build.finished:  # a project's builds end one after another, so they are judged in order
        services.assignment_judge(assignment=assignment, build=build)
    publish_row(assignment)


@receiver(build_progressed, dispatch_uid="classrooms.build_progressed")
def on_build_progressed(sender: Any, build_id: int, event: dict[str, Any], **kwargs: Any) -> None:
    project_id = Build.objects.filter(id=build_id).values_list("project_id", flat=True).first()
    seat = seats.of_project(project_id) if project_id is not None else None
    if seat is None:
        return
    if event["type"] == "build.started":
        # The plan is stored now: the row gets a cell for every step.
        assignment = (
            Assignment.objects.select_related("exercise", "membership", "membership__student", "project")
            .filter(project_id=project_id, membership__removed_at__isnull=True)
            .first()
        )
        if assignment is not None:
            publish_row(assignment)
        return
    status = "running" if event["type"] == "step.started" else event.get("status", "")
    live.group_send(
        classroom_group(seat.classroom),
        {
            "type": "classroom.step",
            "student": seat.student,
            "exercise": seat.exercise,
            "build": build_id,
            "step": event.get("step"),
            "status": status,
        },
    )
