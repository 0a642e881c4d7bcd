"""Predict, then build: a student marks which steps of their copy's next build will rebuild; the
build grades each step against what happened, with the engine's own reason, and the class's
dashboard shows how often each step was predicted right."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from builds.models import Build, Step
from studio.classrooms.models import Assignment, Exercise, Prediction
from studio.errors import Rejected

MAX_STEPS = 500  # as many as a Dockerfile may have (the engine's `steps` limit)


def clean_rebuild(raw: object) -> list[int]:
    if not isinstance(raw, list) or len(raw) > MAX_STEPS:
        raise Rejected("rebuild must be a list of step numbers", field="rebuild")
    if any(not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_STEPS for n in raw):
        raise Rejected(f"rebuild must hold step numbers from 1 to {MAX_STEPS}", field="rebuild")
    return sorted(set(raw))


@transaction.atomic
def prediction_make(*, assignment: Assignment, rebuild: object) -> Prediction:
    """The student's prediction for their next build, replacing one not graded yet."""
    if assignment.exercise.classroom.closed:
        raise Rejected("the class is closed: its copies can no longer be built", kind="conflict")
    steps = clean_rebuild(rebuild)
    Prediction.objects.filter(assignment=assignment, build_number__isnull=True).delete()
    return Prediction.objects.create(assignment=assignment, rebuild=steps)


def prediction_grade(*, assignment: Assignment, build: Build) -> Prediction | None:
    """Grade the pending prediction with `build`, which has just finished. A build that did not
    run every step (failed, cancelled) leaves it pending: what would have rebuilt is unknown."""
    pending = Prediction.objects.filter(assignment=assignment, build_number__isnull=True).first()
    if pending is None or build.status != Build.Status.SUCCEEDED:
        return None
    predicted = set(pending.rebuild)
    grades = []
    for step in Step.objects.filter(build=build).order_by("number"):
        rebuilt = step.status == "built"
        reason = (step.event.get("reason") or {}).get("message", "") if rebuilt else ""
        grades.append(
            {
                "step": step.number,
                "instruction": step.instruction,
                "predicted": step.number in predicted,
                "rebuilt": rebuilt,
                "correct": (step.number in predicted) == rebuilt,
                "reason": reason or ("from the cache" if step.status == "cached" else step.status),
            }
        )
    pending.build_number, pending.grades = build.number, grades
    pending.save(update_fields=["build_number", "grades"])
    return pending


def prediction_json(prediction: Prediction | None) -> dict[str, Any] | None:
    if prediction is None:
        return None
    grades = prediction.grades or []
    return {
        "id": prediction.id,
        "rebuild": prediction.rebuild,
        "build": prediction.build_number,
        "grades": grades,
        "correct": sum(1 for g in grades if g["correct"]),
        "total": len(grades),
    }


def latest(*, assignment: Assignment) -> Prediction | None:
    return Prediction.objects.filter(assignment=assignment).first()


def accuracy(*, exercise: Exercise) -> list[dict[str, Any]]:
    """Per step number, over each student's latest graded prediction: how many were right."""
    seen: set[int] = set()
    per_step: dict[int, dict[str, Any]] = {}
    graded = Prediction.objects.filter(
        assignment__exercise=exercise,
        assignment__membership__removed_at__isnull=True,
        build_number__isnull=False,
    ).order_by("-created_at", "-id")
    for prediction in graded:
        if prediction.assignment_id in seen:
            continue
        seen.add(prediction.assignment_id)
        for grade in prediction.grades:
            entry = per_step.setdefault(
                grade["step"],
                {"step": grade["step"], "instruction": grade["instruction"], "right": 0, "total": 0},
            )
            entry["right"] += 1 if grade["correct"] else 0
            entry["total"] += 1
    return [per_step[n] for n in sorted(per_step)]
