"""Run as a script against DATABASE_URL (an empty database): migrates it to where the studio was
before projects and classrooms had apps of their own, fills it with real rows through the models
as they were then, migrates it forward with Django's MigrationExecutor, and prints, as JSON, every
row of the tables before and after, and what the models of today read through their foreign keys.
tests/test_moved_models.py runs it against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.db.migrations.executor import MigrationExecutor  # noqa: E402
from django.db.migrations.recorder import MigrationRecorder  # noqa: E402

# The last migrations before the move; the apps made by the move, and those made since (each
# depending on migrations after the move), did not exist yet.
BEFORE = {"studio": "0005_cache_scopes", "builds": "0002_cache_scopes"}
NEW_APPS = {"projects", "classrooms", "containers", "takehome"}
TABLES = [
    "studio_user",
    "studio_project",
    "studio_blob",
    "studio_projectfile",
    "studio_revision",
    "studio_revisionfile",
    "studio_classroom",
    "studio_membership",
    "studio_exercise",
    "studio_assignment",
    "builds_build",
    "builds_step",
    "builds_buildevent",
    "django_content_type",
    "auth_permission",
]


def targets_before(executor: MigrationExecutor) -> list[tuple[str, str | None]]:
    targets: list[tuple[str, str | None]] = []
    for app, name in executor.loader.graph.leaf_nodes():
        if app in NEW_APPS:
            targets.append((app, None))
        else:
            targets.append((app, BEFORE.get(app, name)))
    return targets


def fill(apps: Any) -> None:
    """Rows in every moved table, each foreign key pointing somewhere, through the old models."""
    user = apps.get_model("studio", "User")
    project = apps.get_model("studio", "Project")
    blob = apps.get_model("studio", "Blob")
    project_file = apps.get_model("studio", "ProjectFile")
    revision = apps.get_model("studio", "Revision")
    revision_file = apps.get_model("studio", "RevisionFile")
    classroom = apps.get_model("studio", "Classroom")
    membership = apps.get_model("studio", "Membership")
    exercise = apps.get_model("studio", "Exercise")
    assignment = apps.get_model("studio", "Assignment")
    build = apps.get_model("builds", "Build")
    step = apps.get_model("builds", "Step")
    build_event = apps.get_model("builds", "BuildEvent")
    content_type = apps.get_model("contenttypes", "ContentType")
    permission = apps.get_model("auth", "Permission")

    teacher = user.objects.create(username="teacher", password="x")
    student = user.objects.create(username="student", password="x")
    lesson = project.objects.create(owner=teacher, name="lesson", visibility="public", share_token="t0k3n")
    copy = project.objects.create(owner=student, name="lesson (copy)")
    dockerfile = blob.objects.create(sha256="a" * 64, size=16, data=b"FROM busybox\nRUN\n")
    readme = blob.objects.create(sha256="b" * 64, size=5, data=b"\x00\xffhi")
    for owned in (lesson, copy):
        project_file.objects.create(project=owned, path="Dockerfile", blob=dockerfile, mode=0o644)
    project_file.objects.create(project=lesson, path="bin/run.sh", blob=readme, mode=0o755)
    starter = revision.objects.create(project=lesson, digest="c" * 64, dockerfile_path="Dockerfile")
    revision_file.objects.create(revision=starter, path="Dockerfile", blob=dockerfile, mode=0o644)
    revision_file.objects.create(revision=starter, path="bin/run.sh", blob=readme, mode=0o755)
    copied = revision.objects.create(project=copy, digest="d" * 64, dockerfile_path="Dockerfile")
    revision_file.objects.create(revision=copied, path="Dockerfile", blob=dockerfile, mode=0o644)

    room = classroom.objects.create(
        teacher=teacher, name="Layers 101", join_code="JOIN-42", shared_project=lesson, shared_cache=True
    )
    seat = membership.objects.create(classroom=room, student=student, display_name="Ana")
    task = exercise.objects.create(
        classroom=room, title="Cache me", starter=starter, checks=[{"kind": "builds"}]
    )
    assignment.objects.create(
        exercise=task, membership=seat, project=copy, results=[{"status": "pass"}], judged_build=1
    )

    for owned, rev, scope in ((lesson, starter, f"user:{teacher.pk}"), (copy, copied, f"class:{room.pk}")):
        done = build.objects.create(
            project=owned, number=1, revision=rev, requested_by=teacher, status="succeeded",
            cache_scope=scope, counts={"built": 1}, image_digest="sha256:" + "e" * 64,
        )
        step.objects.create(build=done, number=1, stage="0", instruction="FROM busybox", status="built")
        build_event.objects.create(build=done, seq=1, type="build.started", data={"build": done.pk})

    # What Django's post_migrate made for the old models: their permissions hang on these rows.
    for model in ("project", "classroom"):
        kind = content_type.objects.create(app_label="studio", model=model)
        permission.objects.create(content_type=kind, codename=f"view_{model}", name=f"Can view {model}")


def dump() -> dict[str, list[list[Any]]]:
    rows: dict[str, list[list[Any]]] = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)} ORDER BY 1")
            rows[table] = [[_plain(value) for value in row] for row in cursor.fetchall()]
    return rows


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def read_through_models() -> dict[str, Any]:
    """What the models of today find, following every foreign key the moved models have."""
    from django.contrib.auth.models import Permission

    from builds.models import Build, Step
    from studio.classrooms.models import Assignment, Classroom
    from studio.projects.models import Project

    room = Classroom.objects.get(join_code="JOIN-42")
    assignment = Assignment.objects.get()
    lesson = Project.objects.get(name="lesson")
    return {
        "room": [room.teacher.username, room.shared_project.name, room.shared_cache],
        "assignment": [
            assignment.project.name,
            assignment.project.owner.username,
            assignment.membership.display_name,
            assignment.membership.student.username,
            assignment.membership.classroom.name,
            assignment.exercise.title,
            assignment.exercise.starter.digest[:4],
            assignment.exercise.classroom.name,
            assignment.results,
        ],
        "files": [[f.path, f.blob.size, oct(f.mode)] for f in lesson.files.all()],
        "revision_files": [
            [rf.revision.project.name, rf.path, bytes(rf.blob.data).hex()]
            for r in lesson.revisions.all()
            for rf in r.files.all()
        ],
        "builds": [
            [b.project.name, b.revision.digest[:4], b.requested_by.username, b.cache_scope, b.steps.count()]
            for b in Build.objects.order_by("id")
        ],
        "steps": [[s.build.project.name, s.instruction] for s in Step.objects.order_by("id")],
        "permissions": sorted(
            [p.codename, p.content_type.app_label, p.content_type.model] for p in Permission.objects.all()
        ),
        "reverse": [
            lesson.builds.count(),
            lesson.revisions.count(),
            room.memberships.count(),
            room.exercises.count(),
            lesson.owner.classrooms.count(),
        ],
    }


def broken_foreign_keys() -> list[Any]:
    if connection.vendor != "sqlite":
        return []  # PostgreSQL checks every foreign key on each write already
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA foreign_key_check")
        return [list(row) for row in cursor.fetchall()]


def main() -> None:
    executor = MigrationExecutor(connection)
    before = targets_before(executor)
    executor.migrate(before)
    fill(executor.loader.project_state([node for node in before if node[1] is not None]).apps)
    rows_before = dump()

    executor = MigrationExecutor(connection)  # reloaded: it knows what is applied now
    executor.migrate(executor.loader.graph.leaf_nodes())
    applied = sorted(f"{app}.{name}" for app, name in MigrationRecorder(connection).applied_migrations())
    print(
        json.dumps(
            {
                "before": rows_before,
                "after": dump(),
                "applied": applied,
                "models": read_through_models(),
                "broken_foreign_keys": broken_foreign_keys(),
            }
        )
    )


if __name__ == "__main__":
    main()
