"""Reading classrooms: who may see which class and which project, and the dashboard's rows."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from builds import planning
from builds.counts import build_counts
from builds.models import Build, BuildEvent, Step
from builds.scopes import cache_scope_json
from studio.classrooms.models import Assignment, Classroom, Exercise, Membership
from studio.errors import Rejected
from studio.models import User
from studio.projects.models import Project

from . import checks, mistakes, predictions
from .pack import split_steps

AnyUser = User | AnonymousUser
TEACHER, STUDENT = "teacher", "student"


# -- who may see what ----------------------------------------------------------------------------


def classroom_can_view_project(*, user: AnyUser, project: Project) -> bool:
    """A class's teacher sees the copies of the students still in the class; a class's students
    see the one project the teacher shares with the class. Nobody gets to change either."""
    if not user.is_authenticated:
        return False
    taught = Assignment.objects.filter(
        project=project, membership__removed_at__isnull=True, membership__classroom__teacher=user
    ).exists()
    return (
        taught
        or Membership.objects.filter(
            student=user, removed_at__isnull=True, classroom__shared_project=project
        ).exists()
    )


def project_closed_class(*, project: Project) -> Classroom | None:
    """The closed class a student's copy belongs to: such a copy can be read but not changed."""
    return Classroom.objects.filter(exercises__assignments__project=project, closed_at__isnull=False).first()


def classroom_get(*, user: AnyUser, classroom_id: int) -> tuple[Classroom, str]:
    """The class and the person's role in it (teacher or student). Anyone else, a removed
    student included, hears that it does not exist."""
    classroom = Classroom.objects.select_related("teacher", "shared_project").filter(id=classroom_id).first()
    if classroom is not None and user.is_authenticated:
        if classroom.teacher_id == user.pk:
            return classroom, TEACHER
        if Membership.objects.filter(classroom=classroom, student=user, removed_at__isnull=True).exists():
            return classroom, STUDENT
    raise Http404(f"classroom {classroom_id} not found")


def classroom_get_taught(*, user: AnyUser, classroom_id: int) -> Classroom:
    """The class, only for its teacher."""
    classroom, role = classroom_get(user=user, classroom_id=classroom_id)
    if role != TEACHER:
        raise Http404(f"classroom {classroom_id} not found")
    return classroom


def classrooms_taught(*, user: User) -> QuerySet[Classroom]:
    return Classroom.objects.filter(teacher=user)


def memberships_of(*, user: User) -> QuerySet[Membership]:
    """The classes a person has joined and is still in."""
    return Membership.objects.filter(student=user, removed_at__isnull=True).select_related("classroom")


def members(*, classroom: Classroom) -> QuerySet[Membership]:
    return Membership.objects.filter(classroom=classroom, removed_at__isnull=True).select_related("student")


def exercise_current(*, classroom: Classroom, exercise_id: int | None = None) -> Exercise | None:
    """The exercise asked for, or the class's latest one."""
    found = Exercise.objects.filter(classroom=classroom)
    if exercise_id is not None:
        exercise = found.filter(id=exercise_id).first()
        if exercise is None:
            raise Http404(f"the class has no exercise {exercise_id}")
        return exercise
    return found.first()


def assignments_of(*, membership: Membership) -> QuerySet[Assignment]:
    return Assignment.objects.filter(membership=membership).select_related("exercise", "project")


# -- the dashboard ---------------------------------------------------------------------------------


def latest_build(project_id: int) -> Build | None:
    return Build.objects.filter(project_id=project_id).order_by("-id").first()


def build_cells(build: Build) -> list[dict[str, Any]]:
    """The build's steps as the grid shows them: the plan, each step's status so far, and the
    step a running build is at."""
    plan = (
        BuildEvent.objects.filter(build=build, seq=1, type="build.started")
        .values_list("data", flat=True)
        .first()
    )
    done = {s.number: s for s in Step.objects.filter(build=build)}
    cells: list[dict[str, Any]] = []
    planned = (plan or {}).get("steps") or [
        {"step": n, "instruction": s.instruction, "line": s.line} for n, s in sorted(done.items())
    ]
    running_marked = False
    for entry in planned:
        step = done.get(entry["step"])
        status = step.status if step else "pending"
        if step is None and build.status == Build.Status.RUNNING and not running_marked:
            status, running_marked = "running", True
        cells.append(
            {
                "step": entry["step"],
                "instruction": entry.get("instruction", ""),
                "line": entry.get("line"),
                "status": status,
            }
        )
    return cells


def build_brief(build: Build) -> dict[str, Any]:
    total = build.cache_hits + build.cache_misses
    return {
        "id": build.id,
        "number": build.number,
        "status": build.status,
        "queued_at": _iso(build.queued_at),
        "finished_at": _iso(build.finished_at),
        "cache": {"hits": build.cache_hits, "misses": build.cache_misses},
        "cache_scope": cache_scope_json(build.cache_scope),
        "counts": build_counts(build),
        "hit_ratio": round(build.cache_hits / total, 3) if total and build.finished else None,
        "image_size": build.image_size,
        "image_layers": build.image_layers,
        "steps": build_cells(build),
    }


def student_row(assignment: Assignment) -> dict[str, Any]:
    """One student's row of the grid: their latest build, step by step, and their checks."""
    membership = assignment.membership
    build = latest_build(assignment.project_id)
    results = assignment.results or []
    moments = [membership.joined_at, assignment.project.updated_at]
    if build is not None:
        moments += [m for m in (build.queued_at, build.started_at, build.finished_at) if m is not None]
    return {
        "student": membership.id,
        "name": membership.display_name,
        "username": membership.student.username,
        "exercise": assignment.exercise_id,
        "project": assignment.project_id,
        "build": build_brief(build) if build is not None else None,
        "checks": {
            "passed": sum(1 for r in results if r.get("status") == "pass"),
            "total": len(results),
            "results": results,
            "state": copy_state(assignment),
            "checking": assignment.checking_build,
        },
        "mistakes": mistakes.of_copy(build=build, results=results),
        "last_activity": _iso(max(moments)),
    }


def exercise_json(exercise: Exercise) -> dict[str, Any]:
    return {
        "id": exercise.id,
        "title": exercise.title,
        "instructions": exercise.instructions,
        "steps": split_steps(exercise.instructions),
        "lesson": exercise.lesson,
        "checks": [{**check, "description": checks.describe(check)} for check in exercise.checks],
        "created_at": exercise.created_at.isoformat(),
    }


def dashboard(*, classroom: Classroom, exercise_id: int | None = None) -> dict[str, Any]:
    """The teacher's grid for one exercise (the latest unless asked): a row per student."""
    exercise = exercise_current(classroom=classroom, exercise_id=exercise_id)
    return {
        "classroom": classroom.id,
        "exercise": exercise_json(exercise) if exercise else None,
        "students": dashboard_rows(exercise=exercise) if exercise else [],
        "predictions": predictions.accuracy(exercise=exercise) if exercise else [],
    }


def dashboard_rows(*, exercise: Exercise) -> list[dict[str, Any]]:
    found = (
        Assignment.objects.filter(exercise=exercise, membership__removed_at__isnull=True)
        .select_related("membership", "membership__student", "project")
        .order_by("membership__display_name", "membership__id")
    )
    return [student_row(a) for a in found]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# -- a copy's lesson, beside the studio -----------------------------------------------------------

CHECKING = "checking"
STATE_WORDS = {
    CHECKING: "checking…",
    checks.NOT_CHECKED: "not yet checked",
    checks.FAILED: "a check fails",
    checks.PASSED: "every check passes",
    checks.PARTLY: "some checks pass, the rest not yet",
}


def copy_state(assignment: Assignment) -> str:
    """Where a copy stands: "checking" while a worker runs the checks' own builds for its latest
    build (the verdicts kept are an earlier build's), else the checks' state."""
    if assignment.checking_build is not None:
        return CHECKING
    return checks.state(assignment.results or [])


def copy_lesson(*, project_id: int) -> dict[str, Any] | None:
    """The exercise a project is a student's copy of, as the studio's lesson panel shows it: the
    text step by step, and how the copy fares against the checks. None for any other project."""
    assignment = (
        Assignment.objects.select_related("exercise", "membership")
        .filter(project_id=project_id, membership__removed_at__isnull=True)
        .first()
    )
    if assignment is None:
        return None
    results = assignment.results or []
    state = copy_state(assignment)
    return {
        "title": assignment.exercise.title,
        "steps": split_steps(assignment.exercise.instructions),
        "results": results,
        "state": state,
        "state_words": STATE_WORDS[state],
        "classroom": assignment.membership.classroom_id,
        "exercise": assignment.exercise_id,
        # Predict, then build: the steps of the latest build to mark, and the last prediction.
        "predict_steps": _next_steps(assignment.project),
        "prediction": predictions.prediction_json(predictions.latest(assignment=assignment)),
    }


def _next_steps(project: Project) -> list[dict[str, Any]]:
    """The steps the copy's next build will have, predicted from its saved Dockerfile in the
    student's own cache, so a prediction needs no build first; the latest build's steps when
    the Dockerfile cannot be planned (it does not parse, a base is unknown)."""
    try:
        found = planning.project_predict(project=project)
    except Rejected:
        found = {}
    steps = [{"step": s["step"], "instruction": s["instruction"]} for s in found.get("steps") or []]
    return steps if steps and not found.get("error") else _latest_steps(project.id)


def _latest_steps(project_id: int) -> list[dict[str, Any]]:
    build = latest_build(project_id)
    if build is None:
        return []
    return [{"step": s.number, "instruction": s.instruction} for s in build.steps.order_by("number")]


# -- the teacher's tools: a student's builds in order, the class's results as a table -----------


def assignment_of(*, exercise: Exercise, student_id: int) -> Assignment:
    """A student still in the class, and their copy of `exercise`; 404 otherwise."""
    found = (
        Assignment.objects.select_related("exercise", "exercise__classroom", "membership", "project")
        .filter(exercise=exercise, membership_id=student_id, membership__removed_at__isnull=True)
        .first()
    )
    if found is None:
        raise Http404(f"the class has no student {student_id} with a copy of this exercise")
    return found


def builds_in_order(*, project_id: int) -> list[dict[str, Any]]:
    """Every build of a copy, first to last, as the grid shows one."""
    return [build_brief(b) for b in Build.objects.filter(project_id=project_id).order_by("number")]


def hit_ratio(project_id: int) -> float | None:
    """The share of steps the cache served over all of a copy's finished builds."""
    found = Build.objects.filter(project_id=project_id, finished_at__isnull=False).values_list(
        "cache_hits", "cache_misses"
    )
    hits = sum(h for h, _ in found)
    total = hits + sum(m for _, m in found)
    return round(hits / total, 3) if total else None


def results_table(*, exercise: Exercise) -> list[list[str]]:
    """The exercise's results, a row per student: the table the teacher exports."""
    header = ["student", "username", "exercise", "state", "checks passed", "checks total"]
    header += [checks.describe(c) for c in exercise.checks]
    header += ["builds", "latest build", "latest status", "hit ratio", "mistakes"]
    rows = [header]
    found = (
        Assignment.objects.filter(exercise=exercise, membership__removed_at__isnull=True)
        .select_related("membership", "membership__student")
        .order_by("membership__display_name", "membership__id")
    )
    for a in found:
        results = a.results or []
        builds = Build.objects.filter(project_id=a.project_id)
        latest = builds.order_by("-number").first()
        ratio = hit_ratio(a.project_id)
        rows.append(
            [
                a.membership.display_name,
                a.membership.student.username,
                exercise.title,
                checks.state(results),
                str(sum(1 for r in results if r.get("status") == checks.PASS)),
                str(len(results)),
                *[str(r.get("status", "")) for r in results],
                *[""] * (len(exercise.checks) - len(results)),
                str(builds.count()),
                str(latest.number) if latest else "",
                latest.status if latest else "",
                f"{ratio:.3f}" if ratio is not None else "",
                # As the dashboard groups them: the same words, one per mistake.
                "; ".join(m["title"] for m in mistakes.of_copy(build=latest, results=results)),
            ]
        )
    return rows
