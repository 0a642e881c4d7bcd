"""The class's channel: what its teacher's dashboard hears. One group per class, one name helper,
and the publish functions everything else sends through (receivers.py for builds, the services
for joins and hand-outs, the views for removals)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from builds import live
from builds.models import Build
from studio.classrooms.models import Assignment, Exercise

from . import predictions, selectors

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
    """Which student's seat a project (or a build of it) is, remembered per process."""

    def __init__(self) -> None:
        self._by_project: dict[int, Seat | None] = {}
        self._project_of_build: dict[int, int | None] = {}
        self._lock = threading.Lock()

    def of_build(self, build_id: int) -> Seat | None:
        with self._lock:
            known = build_id in self._project_of_build
            project_id = self._project_of_build.get(build_id)
        if not known:
            project_id = Build.objects.filter(id=build_id).values_list("project_id", flat=True).first()
            with self._lock:
                if len(self._project_of_build) >= _CACHE_LIMIT:
                    self._project_of_build.clear()
                self._project_of_build[build_id] = project_id
        return self.of_project(project_id) if project_id is not None else None

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


def publish_step(seat: Seat, *, build_id: int, step: int, status: str) -> None:
    message = {
        "type": "classroom.step",
        "student": seat.student,
        "exercise": seat.exercise,
        "build": build_id,
        "step": step,
        "status": status,
    }
    live.group_send(classroom_group(seat.classroom), message)


def publish_predictions(exercise: Exercise) -> None:
    """The class's accuracy per step, sent whenever a build grades a student's prediction."""
    message = {
        "type": "classroom.predictions",
        "exercise": exercise.id,
        "predictions": predictions.accuracy(exercise=exercise),
    }
    live.group_send(classroom_group(exercise.classroom_id), message)


def publish_checking(*, project_id: int, build: int) -> None:
    """Tell the student's own pages that the checks of their copy's `build` have begun, so their
    lesson panel reads "checking…" at once, however soon the checks are done."""
    live.group_send(live.project_group(project_id), {"type": "project.checking", "build": build})
