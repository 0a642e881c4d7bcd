"""What a class hears of its students' builds. Builds tell the studio through `builds.signals`;
these receivers find out whether the build is of a student's exercise copy and, if so, judge it
when it ends and send the student's new row (or, for a step, just that cell) to the class's
group. Whatever goes wrong here is logged by the sender and never stops a build."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from builds.models import Build
from builds.signals import build_changed, build_progressed
from studio.classrooms.models import Assignment

from . import services
from .live import publish_row, publish_step, seats


def _assignment(**where: Any) -> Assignment | None:
    """The assignment of a student still in the class, with what its row shows."""
    return (
        Assignment.objects.select_related("exercise", "membership", "membership__student", "project")
        .filter(membership__removed_at__isnull=True, **where)
        .first()
    )


@receiver(build_changed, dispatch_uid="classrooms.build_changed")
def on_build_changed(sender: Any, build_id: int, **kwargs: Any) -> None:
    build = Build.objects.filter(id=build_id).first()
    if build is None or seats.of_project(build.project_id) is None:
        return
    assignment = _assignment(project_id=build.project_id)
    if assignment is None:
        return
    if build.finished:  # a project's builds end one after another, so they are judged in order
        services.assignment_judge(assignment=assignment, build=build)
    publish_row(assignment)


@receiver(build_progressed, dispatch_uid="classrooms.build_progressed")
def on_build_progressed(sender: Any, build_id: int, event: dict[str, Any], **kwargs: Any) -> None:
    seat = seats.of_build(build_id)
    if seat is None:
        return
    if event["type"] == "build.started":
        # The plan is stored now: the row gets a cell for every step.
        assignment = _assignment(membership_id=seat.student, exercise_id=seat.exercise)
        if assignment is not None:
            publish_row(assignment)
        return
    status = "running" if event["type"] == "step.started" else event.get("status", "")
    publish_step(seat, build_id=build_id, step=event["step"], status=status)
