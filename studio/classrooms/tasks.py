"""The worker's side of the classrooms: running the checks that need builds of their own."""

from __future__ import annotations

from celery import shared_task

from builds import live
from builds.models import Build
from studio.classrooms.models import Assignment

from . import services
from .live import publish_row


@shared_task(name=services.RUN_CHECKS, acks_late=True, ignore_result=True)
def run_checks(assignment_id: int, build_id: int) -> str:
    """Judge a student's successful build with the checks' own builds, then tell the class."""
    assignment = (
        Assignment.objects.select_related("exercise", "membership", "membership__student", "project")
        .filter(id=assignment_id, membership__removed_at__isnull=True)
        .first()
    )
    build = (
        Build.objects.filter(id=build_id, project_id=assignment.project_id).first() if assignment else None
    )
    if assignment is None or build is None:
        return f"assignment {assignment_id}, build {build_id}: gone"
    # A later build judged already: this one's verdicts would be older news.
    if assignment.judged_build is not None and assignment.judged_build > build.number:
        return f"build {build_id}: superseded"
    try:
        services.assignment_check(assignment=assignment, build=build)
    except Exception:
        # The copy must not read "checking…" for ever: it keeps its earlier verdicts.
        Assignment.objects.filter(id=assignment.id, checking_build=build.number).update(checking_build=None)
        assignment.checking_build = None
        publish_row(assignment)
        raise
    publish_row(assignment)
    # The student's pages are told too: their "checking…" ends.
    live.group_send(live.project_group(build.project_id), {"type": "project.checked", "build": build.number})
    return f"build {build_id}: checked"
