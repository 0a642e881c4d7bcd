"""Everything that changes a classroom: making one, joining it, removing a student, closing it,
handing out an exercise (a copy for every student), and judging a student's finished build."""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from pathlib import Path
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from builds import stores
from builds.engine.store import Store
from builds.models import Build
from builds.services import revision_materialise
from builds.tasks import sandbox_limits
from studio.classrooms.models import Assignment, Classroom, Exercise, Membership
from studio.errors import Rejected
from studio.models import User
from studio.projects.files import check_tree
from studio.projects.models import Project, ProjectFile
from studio.projects.services import project_create, project_file_put, revision_snapshot
from studio.projects.starter import starter_create

from . import checkrun, live, pack, predictions
from . import checks as checks_
from .imagefiles import image_paths

# No 0/O, 1/I/L: a code is read off a projector and typed on a laptop.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
MAX_NAME = 100
MAX_DISPLAY_NAME = 60


def _clean_text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Rejected(f"{name} must be a non-empty string", field=name)
    value = " ".join(value.split())
    if len(value) > limit:
        raise Rejected(f"{name} may be at most {limit} characters", field=name)
    return value


def normalise_code(code: object) -> str:
    """A join code as typed: any case, with or without the dash or spaces."""
    if not isinstance(code, str):
        return ""
    return "".join(c for c in code.upper() if c.isalnum())


def classroom_create(*, teacher: User, name: object) -> Classroom:
    """A new class of `teacher`'s, with a fresh join code."""
    name = _clean_text(name, "name", MAX_NAME)
    for _ in range(10):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        try:
            with transaction.atomic():
                return Classroom.objects.create(teacher=teacher, name=name, join_code=code)
        except IntegrityError:  # that code is taken: draw another
            continue
    raise RuntimeError("could not draw an unused join code")


@transaction.atomic
def classroom_update(
    *, classroom: Classroom, name: object = None, closed: object = None, shared_project: object = ...,
    shared_cache: object = None,
) -> Classroom:
    """Rename the class, close or reopen it, choose the project of the teacher's its students
    may look at (None to share none), or give its exercise copies one shared cache (their
    builds from then on read and fill the class's cache instead of each student's own)."""
    if name is not None:
        classroom.name = _clean_text(name, "name", MAX_NAME)
    if closed is not None:
        if not isinstance(closed, bool):
            raise Rejected("closed must be true or false", field="closed")
        if closed != classroom.closed:
            classroom.closed_at = timezone.now() if closed else None
    if shared_cache is not None:
        if not isinstance(shared_cache, bool):
            raise Rejected("shared_cache must be true or false", field="shared_cache")
        classroom.shared_cache = shared_cache
    if shared_project is not ...:
        if shared_project is None:
            classroom.shared_project = None
        else:
            if not isinstance(shared_project, int) or isinstance(shared_project, bool):
                raise Rejected(
                    "shared_project must be the id of one of your projects", field="shared_project"
                )
            project = Project.objects.filter(id=shared_project, owner=classroom.teacher).first()
            if project is None:
                raise Rejected(f"you have no project {shared_project}", field="shared_project")
            classroom.shared_project = project
    classroom.save()
    return classroom


def classroom_join(*, user: User, code: object, display_name: object) -> Membership:
    """Join the class whose code this is, under `display_name`, and get a copy of every exercise
    handed out so far. Joining again is harmless (the name stays as it was)."""
    classroom = Classroom.objects.filter(join_code=normalise_code(code)).first()
    if classroom is None:
        raise Rejected("no class has that join code; check it with your teacher", field="code")
    if classroom.teacher_id == user.pk:
        raise Rejected("you teach this class; students join it with the code", field="code", kind="conflict")
    existing = Membership.objects.filter(classroom=classroom, student=user).first()
    if existing is not None and existing.removed_at is not None:
        raise Rejected("your teacher removed you from this class", kind="forbidden")
    if classroom.closed:
        raise Rejected(f"the class {classroom.name!r} is closed and takes no new students", kind="forbidden")
    membership: Membership | None
    if existing is not None:
        membership = existing
    else:
        name = _clean_text(display_name, "display_name", MAX_DISPLAY_NAME)
        taken = Rejected(
            f"someone in this class is already called {name!r}; pick another name",
            field="display_name",
            kind="conflict",
        )
        if Membership.objects.filter(classroom=classroom, display_name__iexact=name).exists():
            raise taken
        try:
            with transaction.atomic():
                membership = Membership.objects.create(classroom=classroom, student=user, display_name=name)
        except IntegrityError:
            # Two joins at once: the database's constraints decided. The same account joining
            # twice keeps its first membership; another account wanting the same name is refused.
            membership = Membership.objects.filter(classroom=classroom, student=user).first()
            if membership is None:
                raise taken from None
    for exercise in Exercise.objects.filter(classroom=classroom).order_by("id"):
        assignment_create(exercise=exercise, membership=membership)
    return membership


def membership_remove(*, membership: Membership) -> None:
    """Take a student out of the class: the teacher no longer sees their copies, and they cannot
    join again with the code. Their copies stay theirs."""
    Membership.objects.filter(id=membership.id, removed_at__isnull=True).update(removed_at=timezone.now())


@transaction.atomic
def exercise_create(
    *,
    classroom: Classroom,
    title: object,
    instructions: object = "",
    project: Project | None = None,
    checks: object = None,
    lesson: str = "",
) -> Exercise:
    """Hand out `project` (one of the teacher's; a new starter project of theirs when None) as
    an exercise: its files as they are now, a copy for every student in the class, and for
    every student who joins later."""
    title = _clean_text(title, "title", MAX_NAME)
    if not isinstance(instructions, str) or len(instructions) > 10_000:
        raise Rejected("instructions must be a string of at most 10,000 characters", field="instructions")
    cleaned = checks_.clean_checks(checks)
    if project is None:
        project = starter_create(
            owner=classroom.teacher, name=_free_name(classroom.teacher, f"{title} (starter)")
        )
    elif project.owner_id != classroom.teacher_id:
        raise Rejected("hand out one of your own projects", field="project")
    exercise = Exercise.objects.create(
        classroom=classroom,
        title=title,
        instructions=instructions,
        starter=revision_snapshot(project=project),
        checks=cleaned,
        lesson=lesson,
    )
    for membership in Membership.objects.filter(classroom=classroom, removed_at__isnull=True):
        assignment_create(exercise=exercise, membership=membership)
    return exercise


def exercise_from_lesson(*, classroom: Classroom, slug: object) -> Exercise:
    """Hand out a lesson of the studio's pack: its starter becomes a project of the teacher's
    (theirs to look at and present), and the exercise carries the lesson's text and checks."""
    found = pack.lesson(slug) if isinstance(slug, str) else None
    if found is None:
        names = ", ".join(lesson.slug for lesson in pack.lessons())
        raise Rejected(f"the studio has no lesson {slug!r}; pick one of {names}", field="lesson")
    teacher = classroom.teacher
    with transaction.atomic():
        files = found.starter_files()
        project = project_create(
            owner=teacher,
            name=_free_name(teacher, f"{found.title[:60]} (starter)"),
            dockerfile=files["Dockerfile"].decode(),
        )
        for path, data in files.items():
            if path != project.dockerfile_path:
                project_file_put(project=project, path=path, data=data)
        return exercise_create(
            classroom=classroom,
            title=found.title,
            instructions=found.instructions,
            project=project,
            checks=found.checks,
            lesson=found.slug,
        )


@transaction.atomic
def exercise_update(
    *, exercise: Exercise, title: object = None, instructions: object = None, checks: object = None
) -> Exercise:
    """The teacher edits a handed-out exercise. New checks start every copy's results again at
    "not yet" (old verdicts were about other checks); the copies' files stay as they are."""
    if title is not None:
        exercise.title = _clean_text(title, "title", MAX_NAME)
    if instructions is not None:
        if not isinstance(instructions, str) or len(instructions) > 10_000:
            raise Rejected("instructions must be a string of at most 10,000 characters", field="instructions")
        exercise.instructions = instructions
    if checks is not None:
        cleaned = checks_.clean_checks(checks)
        if cleaned != exercise.checks:
            exercise.checks = cleaned
            Assignment.objects.filter(exercise=exercise).update(
                results=checks_.initial(cleaned), judged_build=None, checking_build=None
            )
    exercise.save()
    return exercise


def assignment_create(*, exercise: Exercise, membership: Membership) -> Assignment | None:
    """The student's own copy of the exercise (made once): a project they own with the starter's
    files. None when the starter is gone."""
    found = Assignment.objects.filter(exercise=exercise, membership=membership).first()
    if found is not None or exercise.starter_id is None:
        return found
    starter = exercise.starter
    assert starter is not None
    student = membership.student
    rows = list(starter.files.all())
    check_tree(row.path for row in rows)  # a copy is a tree like any project, whatever its starter
    with transaction.atomic():
        if Project.objects.filter(owner=student).count() >= settings.PROJECTS_PER_USER:
            raise Rejected(
                f"you have {settings.PROJECTS_PER_USER} projects, the most one person may have; "
                "delete one to receive this exercise",
                kind="too_many",
                limit="projects_per_user",
            )
        project = Project.objects.create(
            owner=student,
            name=_free_name(student, f"{exercise.classroom.name} · {exercise.title}"),
            dockerfile_path=starter.dockerfile_path,
        )
        ProjectFile.objects.bulk_create(
            ProjectFile(project=project, path=row.path, blob_id=row.blob_id, mode=row.mode) for row in rows
        )
        assignment = Assignment.objects.create(
            exercise=exercise,
            membership=membership,
            project=project,
            results=checks_.initial(exercise.checks),
        )
        # The teacher's grid gets the new row once it is there for everyone to read.
        transaction.on_commit(lambda: live.publish_row(assignment))
        return assignment


@transaction.atomic
def assignment_reset(*, assignment: Assignment) -> Assignment:
    """Put the student's copy back to the exercise's starter. Nothing of theirs is lost: their
    builds stay, each with the files it built, and the files as they were just before are kept
    as a revision of the copy too. The checks start again at "not yet"."""
    exercise = assignment.exercise
    if exercise.classroom.closed:
        raise Rejected("the class is closed: its copies can no longer be changed", kind="conflict")
    starter = exercise.starter
    if starter is None:
        raise Rejected("the exercise's starter is gone: its project was deleted", kind="conflict")
    project = assignment.project
    # Without a Dockerfile there is no revision to make (nothing a build could have used).
    with contextlib.suppress(Rejected):
        revision_snapshot(project=project)
    ProjectFile.objects.filter(project=project).delete()
    ProjectFile.objects.bulk_create(
        ProjectFile(project=project, path=row.path, blob_id=row.blob_id, mode=row.mode)
        for row in starter.files.all()
    )
    project.dockerfile_path = starter.dockerfile_path
    project.save(update_fields=["dockerfile_path", "updated_at"])
    reset = "Not yet: your teacher put your copy back to the starter; build it to be checked."
    assignment.results, assignment.judged_build = checks_.initial(exercise.checks, reset), None
    assignment.checking_build = None
    assignment.save(update_fields=["results", "judged_build", "checking_build"])
    transaction.on_commit(lambda: live.publish_row(assignment))
    return assignment


def _free_name(owner: User, wanted: str) -> str:
    """`wanted`, or `wanted (2)`, `(3)`... whichever the owner has no project called yet."""
    wanted = wanted[:90]
    taken = set(Project.objects.filter(owner=owner, name__startswith=wanted).values_list("name", flat=True))
    name, n = wanted, 1
    while name in taken:
        n += 1
        name = f"{wanted} ({n})"
    return name


# -- judging builds --------------------------------------------------------------------------------


def build_facts(build: Build) -> checks_.BuildFacts:
    """What the checks need to know of a finished build: its steps, its image, and which files
    changed since the project's previous successful build."""
    previous = (
        Build.objects.filter(project_id=build.project_id, id__lt=build.id, status=Build.Status.SUCCEEDED)
        .select_related("revision")
        .order_by("-id")
        .first()
    )
    changed = None
    if previous is not None:
        changed = _changed_files(previous, build)
    digest = build.image_digest
    return checks_.BuildFacts(
        number=build.number,
        status=build.status,
        steps=[
            checks_.StepFacts(s.number, s.instruction, s.line, s.status)
            for s in build.steps.order_by("number")
        ],
        image_size=build.image_size,
        image_layers=build.image_layers,
        changed=changed,
        previous=previous.number if previous else None,
        image_paths=(lambda: image_paths(stores.web_store(), digest)) if digest else None,
    )


def _changed_files(before: Build, after: Build) -> set[str]:
    def files(build: Build) -> dict[str, tuple[str, int]]:
        rows = build.revision.files.values_list("path", "blob_id", "mode")
        return {path: (blob, mode) for path, blob, mode in rows}

    old, new = files(before), files(after)
    changed = {path for path in old.keys() | new.keys() if old.get(path) != new.get(path)}
    if before.revision.dockerfile_path != after.revision.dockerfile_path:
        changed.add(after.revision.dockerfile_path)
    return changed


RUN_CHECKS = "classrooms.run_checks"
# How long a worker that ran the checks waits for what they built to reach the shared cache.
CHECK_SHARE_TIMEOUT_S = 120


def assignment_judge(*, assignment: Assignment, build: Build) -> list[dict[str, object]] | None:
    """Hold the finished `build` of a student's copy to the exercise's checks, and keep the
    results on the assignment. Checks that need builds of their own are run by a worker after a
    successful build (`assignment_check`); None then, the results come when it is done."""
    if predictions.prediction_grade(assignment=assignment, build=build) is not None:
        exercise = assignment.exercise
        transaction.on_commit(lambda: live.publish_predictions(exercise))
    checks = assignment.exercise.checks
    if checks_.needs_run(checks) and build.status == Build.Status.SUCCEEDED:
        # "checking…" from now until the worker keeps its verdicts, not the last build's.
        Assignment.objects.filter(id=assignment.id).update(checking_build=build.number)
        assignment.checking_build = build.number
        transaction.on_commit(lambda: live.publish_checking(project_id=build.project_id, build=build.number))
        transaction.on_commit(lambda: current_app.send_task(RUN_CHECKS, args=(assignment.id, build.id)))
        return None
    return _keep(assignment, build, checks_.merge(assignment.results or [], checks, build_facts(build)))


def _keep(assignment: Assignment, build: Build, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not assignment.exercise.checks:
        results = []
    Assignment.objects.filter(id=assignment.id).update(results=results, judged_build=build.number)
    # This build's "checking…" is over; a later build's, still being checked, stays.
    Assignment.objects.filter(id=assignment.id, checking_build__lte=build.number).update(checking_build=None)
    assignment.checking_build = (
        Assignment.objects.filter(id=assignment.id).values_list("checking_build", flat=True).first()
    )
    assignment.results, assignment.judged_build = results, build.number
    return results


def assignment_check(*, assignment: Assignment, build: Build) -> list[dict[str, Any]]:
    """Judge `build` with the checks' own builds: its files, and a copy per file a check
    changes, in the cache the build used."""
    checks = assignment.exercise.checks
    facts = build_facts(build)
    revision = build.revision
    with tempfile.TemporaryDirectory(prefix=f"studio-check-{build.id}-") as tmp:
        context = Path(tmp) / "context"
        context.mkdir()
        revision_materialise(revision=revision, into=context)
        # The files as built first (from the cache the build just filled), so that the edited
        # builds' reasons compare with them.
        # On the worker, in its store; with a shared cache, the build's records are found
        # whichever worker built it.
        store = Store(settings.STUDIO_DATA_DIR)
        shared = stores.shared_cache(store)
        try:
            facts.edits = checkrun.run(
                store,
                context,
                checks,
                scope=build.cache_scope,
                dockerfile=revision.dockerfile_path,
                history=f"check:project:{build.project_id}",
                limits=sandbox_limits(),
            ).edits
        finally:
            if shared is not None:
                shared.drain(timeout=CHECK_SHARE_TIMEOUT_S)
                shared.close()
    return _keep(assignment, build, checks_.merge(assignment.results or [], checks, facts))
