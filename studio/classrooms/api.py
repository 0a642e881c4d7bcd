"""The JSON API for classrooms: the `classrooms` router of studio/api_root.py. A teacher sees and
changes only their own classes; a student sees only their own copies and what the teacher shares."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.http import Http404, HttpRequest
from django.urls import reverse
from ninja import Field, Query, Status
from pydantic import StrictBool, StrictInt, StrictStr

from studio.api import MAX_ID, ApiError, Id, In, Out, StudioRouter, Timestamp, errors
from studio.classrooms.models import Classroom, Membership
from studio.models import User
from studio.projects.models import Project

from . import live, pack, predictions, selectors, services
from .selectors import TEACHER, exercise_json

router = StudioRouter(tags=["classrooms"])

Loose = dict[str, Any]
CHECK_KINDS = (
    "rebuild_after_change", "image_size", "layers", "absent_path", "present_path", "edit_rebuilds",
    "edit_push",
)
CheckState = Literal["not_yet", "failed", "passed", "partly", "checking"]


class ExerciseCheck(Out):
    """rebuild_after_change {file, max_steps}: after changing only that file since the last
    successful build, at most max_steps steps rebuild; image_size {max_mb}: under that many MB
    (1,000,000 bytes); layers {max}: no more than that many layers; absent_path {path}: the final
    image holds nothing at that path (a directory counts with all under it; * ? [] match patterns);
    present_path {path}: the final image holds it; edit_rebuilds {file, max_steps}: the check
    itself builds the copy, then a copy with that file changed, and at most max_steps rebuild;
    edit_push {file, max_kb}: after the same change, a push of the image sends at most max_kb KB."""

    kind: Literal[
        "rebuild_after_change", "image_size", "layers", "absent_path", "present_path", "edit_rebuilds",
        "edit_push",
    ]
    file: str | None = None
    max_steps: int | None = None
    max_mb: int | None = None
    max: int | None = None
    max_kb: int | None = None
    path: str | None = None
    description: str | None = Field(None, description="the check as the class reads it (answers only)")


class CheckResult(Out):
    check: str
    status: Literal["pass", "fail", "not_yet"]
    message: str = Field(description="why, naming the build it judged")
    build: int | None = Field(None, description="that build's number")


class LessonStep(Out):
    title: str
    text: str = Field(description="Markdown")


class ExerciseOut(Out):
    id: int
    title: str
    instructions: str
    steps: list[LessonStep] = Field(description="the instructions split at their `## ` headings")
    lesson: str = Field(description="the pack's lesson it was handed out from, or empty")
    checks: list[ExerciseCheck]
    created_at: Timestamp


class LessonOut(Out):
    slug: str
    title: str
    summary: str
    steps: list[LessonStep]
    checks: list[ExerciseCheck]


class LessonListOut(Out):
    lessons: list[LessonOut]


class StepGrade(Out):
    step: int
    instruction: str
    predicted: bool = Field(description="the student said it would rebuild")
    rebuilt: bool
    correct: bool
    reason: str = Field(description="why it rebuilt, as the engine said; or where it came from")


class PredictionOut(Out):
    id: int
    rebuild: list[int] = Field(description="the steps the student expects to rebuild")
    build: int | None = Field(description="the build that graded it (null: the next one will)")
    grades: list[StepGrade]
    correct: int
    total: int


class PredictionIn(In):
    rebuild: list[StrictInt] = Field(description="the step numbers you expect to rebuild")


class StepAccuracy(Out):
    step: int
    instruction: str
    right: int
    total: int


class StudentExercise(ExerciseOut):
    project: int = Field(description="the student's own copy")
    studio_url: str = Field(description="that copy in the studio")
    results: list[CheckResult]
    state: CheckState = Field(
        description="not_yet: never built or checked; failed: a check fails; passed; partly: "
        "some pass, the rest not yet; checking: the checks' own builds are running for the "
        "latest build"
    )
    prediction: PredictionOut | None = Field(description="the latest prediction, graded or pending")
    judged_build: int | None = Field(description="the build the results are as of")


class SharedProject(Out):
    id: int
    name: str
    url: str


class StudentEntry(Out):
    id: int = Field(description="the student's place in the class, not their account")
    name: str
    username: str
    joined_at: Timestamp


class Me(Out):
    id: int
    name: str


class TeacherView(Out):
    """The class as its teacher sees it: the join code and link, every student, every exercise."""

    id: int
    name: str
    role: Literal["teacher"]
    join_code: str
    join_url: str
    closed: bool
    shared_project: SharedProject | None
    shared_cache: bool = Field(description="the class's builds share one cache")
    students: list[StudentEntry]
    exercises: list[ExerciseOut]
    created_at: Timestamp


class StudentView(Out):
    """The class as a student sees it: no other students, their own exercises with results."""

    id: int
    name: str
    role: Literal["student"]
    teacher: str
    closed: bool
    shared_project: SharedProject | None
    shared_cache: bool
    me: Me
    exercises: list[StudentExercise]


ClassroomOut = Annotated[TeacherView | StudentView, Field(discriminator="role")]


class ClassroomSummary(Out):
    id: int
    name: str
    role: Literal["teacher", "student"]
    closed: bool


class ClassroomListOut(Out):
    classrooms: list[ClassroomSummary]


class RemovedOut(Out):
    removed: int


class StudentRow(Out):
    student: int
    name: str
    username: str
    exercise: int
    project: int
    build: Loose | None = Field(
        description="the latest build: id, number, status, image_size, image_layers, steps"
    )
    checks: Loose = Field(
        description="passed, total, results, state (as StudentExercise's), and checking: the build "
        "whose checks are running"
    )
    mistakes: list[Loose] = Field(
        description="what the latest build's Dockerfile gets wrong (the studio's cache hints and "
        "hadolint's findings) and the checks it fails: code, source, title, message, lines"
    )
    last_activity: Timestamp | None


class DashboardOut(Out):
    classroom: int
    exercise: ExerciseOut | None
    students: list[StudentRow]
    predictions: list[StepAccuracy] = Field(
        description="per step, how many students' latest graded predictions were right"
    )


class ClassroomCreate(In):
    name: StrictStr | None = None


class ClassroomJoin(In):
    code: StrictStr
    display_name: StrictStr | None = Field(None, description="how the class will call you")


class ClassroomPatch(In):
    """Leave out what stays as it is; `shared_project` null stops sharing."""

    name: StrictStr | None = None
    closed: StrictBool | None = None
    shared_project: StrictInt | None = Field(None, description="your project to share with the class")
    shared_cache: StrictBool | None = None


class ExerciseCreate(In):
    """A lesson of the pack (`lesson`, nothing else needed), or a project and checks of yours."""

    lesson: StrictStr | None = Field(None, description="a lesson of the studio's pack, by slug")
    title: StrictStr | None = None
    instructions: StrictStr | None = None
    project: StrictInt | None = Field(None, description="one of your projects (default: a new starter)")
    checks: list[Any] | None = Field(
        None,
        description="ExerciseCheck objects (kind and its fields), checked against each student's builds",
        json_schema_extra={"items": ExerciseCheck.model_json_schema()},
    )


class ExercisePatch(In):
    """Leave out what stays as it is. New checks start every copy's results again."""

    title: StrictStr | None = None
    instructions: StrictStr | None = None
    checks: list[Any] | None = Field(None, json_schema_extra={"items": ExerciseCheck.model_json_schema()})


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # the API's session auth let only signed-in users through
    return request.user


def studio_url(project_id: int, build_id: int | None = None) -> str:
    url = f"/studio/{project_id}/"
    return f"{url}?build={build_id}" if build_id else url


def join_url(request: HttpRequest, classroom: Classroom) -> str:
    return request.build_absolute_uri(reverse("classroom-join-code", args=[classroom.join_code]))


def shared_json(classroom: Classroom) -> dict[str, Any] | None:
    project = classroom.shared_project
    return {"id": project.id, "name": project.name, "url": studio_url(project.id)} if project else None


def teacher_json(request: HttpRequest, classroom: Classroom) -> dict[str, Any]:
    return {
        "id": classroom.id,
        "name": classroom.name,
        "role": "teacher",
        "join_code": classroom.join_code,
        "join_url": join_url(request, classroom),
        "closed": classroom.closed,
        "shared_project": shared_json(classroom),
        "shared_cache": classroom.shared_cache,
        "students": [
            {
                "id": m.id,
                "name": m.display_name,
                "username": m.student.username,
                "joined_at": m.joined_at.isoformat(),
            }
            for m in selectors.members(classroom=classroom)
        ],
        "exercises": [exercise_json(e) for e in classroom.exercises.all()],
        "created_at": classroom.created_at.isoformat(),
    }


def student_json(classroom: Classroom, membership: Membership) -> dict[str, Any]:
    return {
        "id": classroom.id,
        "name": classroom.name,
        "role": "student",
        "teacher": classroom.teacher.username,
        "closed": classroom.closed,
        "shared_project": shared_json(classroom),
        "shared_cache": classroom.shared_cache,
        "me": {"id": membership.id, "name": membership.display_name},
        "exercises": [
            {
                **exercise_json(a.exercise),
                "project": a.project_id,
                "studio_url": studio_url(a.project_id),
                "results": a.results,
                "state": selectors.copy_state(a),
                "prediction": predictions.prediction_json(predictions.latest(assignment=a)),
                "judged_build": a.judged_build,
            }
            for a in selectors.assignments_of(membership=membership).order_by("-exercise__created_at")
        ],
    }


def summary_json(classroom: Classroom, role: str) -> dict[str, Any]:
    return {"id": classroom.id, "name": classroom.name, "role": role, "closed": classroom.closed}


@router.get("/classrooms/", response={200: ClassroomListOut, **errors()})
def classroom_list(request: HttpRequest) -> Any:
    """The classes you teach and those you are in."""
    user = _user(request)
    teaching = [summary_json(c, "teacher") for c in selectors.classrooms_taught(user=user)]
    joined = [summary_json(m.classroom, "student") for m in selectors.memberships_of(user=user)]
    return {"classrooms": teaching + joined}


@router.post("/classrooms/", response={201: TeacherView, **errors(429)})
def classroom_create(request: HttpRequest, payload: ClassroomCreate) -> Any:
    """Create a class (you teach it); the answer has its join code and link."""
    classroom = services.classroom_create(teacher=_user(request), name=payload.name)
    return Status(201, teacher_json(request, classroom))


@router.post("/classrooms/join/", response={201: StudentView, **errors(409)})
def classroom_join(request: HttpRequest, payload: ClassroomJoin) -> Any:
    """Join a class with its code, and get a copy of every exercise handed out."""
    membership = services.classroom_join(
        user=_user(request), code=payload.code, display_name=payload.display_name
    )
    return Status(201, student_json(membership.classroom, membership))


def _as_seen(request: HttpRequest, found: Classroom, role: str) -> dict[str, Any]:
    if role == TEACHER:
        return teacher_json(request, found)
    membership = Membership.objects.get(classroom=found, student=_user(request))
    return student_json(found, membership)


@router.get("/classrooms/{int:classroom_id}/", response={200: ClassroomOut, **errors()})
def classroom_get(request: HttpRequest, classroom_id: Id) -> Any:
    """The class, as you may see it."""
    found, role = selectors.classroom_get(user=_user(request), classroom_id=classroom_id)
    return _as_seen(request, found, role)


@router.patch("/classrooms/{int:classroom_id}/", response={200: ClassroomOut, **errors()})
def classroom_update(request: HttpRequest, classroom_id: Id, payload: ClassroomPatch) -> Any:
    """Teacher: rename, close or reopen the class, or share one of your projects with it."""
    found, role = selectors.classroom_get(user=_user(request), classroom_id=classroom_id)
    if role != TEACHER:
        raise ApiError("only the class's teacher may change it", status=403)
    found = services.classroom_update(
        classroom=found,
        name=payload.name,
        closed=payload.closed,
        # Left out: unchanged; null: no longer shared.
        shared_project=payload.shared_project if "shared_project" in payload.model_fields_set else ...,
        shared_cache=payload.shared_cache,
    )
    return _as_seen(request, found, role)


@router.delete(
    "/classrooms/{int:classroom_id}/students/{int:student_id}/", response={200: RemovedOut, **errors()}
)
def classroom_student_remove(request: HttpRequest, classroom_id: Id, student_id: Id) -> Any:
    """Teacher: remove a student (`students[].id`) from the class."""
    found = selectors.classroom_get_taught(user=_user(request), classroom_id=classroom_id)
    membership = selectors.members(classroom=found).filter(id=student_id).first()
    if membership is None:
        raise Http404(f"the class has no student {student_id}")
    services.membership_remove(membership=membership)
    live.publish_removed(classroom_id=found.id, student=membership.id)
    return {"removed": membership.id}


@router.post("/classrooms/{int:classroom_id}/exercises/", response={201: ExerciseOut, **errors()})
def classroom_exercise_create(request: HttpRequest, classroom_id: Id, payload: ExerciseCreate) -> Any:
    """Teacher: hand out one of your projects (a new starter when none) as an exercise."""
    user = _user(request)
    found = selectors.classroom_get_taught(user=user, classroom_id=classroom_id)
    if payload.lesson is not None:
        return Status(201, exercise_json(services.exercise_from_lesson(classroom=found, slug=payload.lesson)))
    project = None
    if payload.project is not None:
        project = Project.objects.filter(id=payload.project, owner=user).first()
        if project is None:
            raise ApiError(f"you have no project {payload.project}", field="project")
    exercise = services.exercise_create(
        classroom=found,
        title=payload.title,
        instructions=payload.instructions or "",
        project=project,
        checks=payload.checks,
    )
    return Status(201, exercise_json(exercise))


@router.get("/classrooms/{int:classroom_id}/dashboard/", response={200: DashboardOut, **errors()})
def classroom_dashboard(
    request: HttpRequest,
    classroom_id: Id,
    exercise: int | None = Query(None, ge=0, le=MAX_ID, description="an exercise's id (default: the latest)"),
) -> Any:
    """Teacher: the grid of one exercise, a row per student."""
    found = selectors.classroom_get_taught(user=_user(request), classroom_id=classroom_id)
    return selectors.dashboard(classroom=found, exercise_id=exercise)


@router.patch(
    "/classrooms/{int:classroom_id}/exercises/{int:exercise_id}/", response={200: ExerciseOut, **errors()}
)
def classroom_exercise_update(
    request: HttpRequest, classroom_id: Id, exercise_id: Id, payload: ExercisePatch
) -> Any:
    """Teacher: edit an exercise's title, text or checks."""
    found = selectors.classroom_get_taught(user=_user(request), classroom_id=classroom_id)
    exercise = selectors.exercise_current(classroom=found, exercise_id=exercise_id)
    assert exercise is not None
    exercise = services.exercise_update(
        exercise=exercise, title=payload.title, instructions=payload.instructions, checks=payload.checks
    )
    return exercise_json(exercise)


@router.get("/lessons/", response={200: LessonListOut, **errors()})
def lesson_list(request: HttpRequest) -> Any:
    """The studio's lesson pack, in teaching order: hand one out with POST exercises {lesson}."""
    return {"lessons": [lesson.to_json() for lesson in pack.lessons()]}


class StudentBuildsOut(Out):
    student: int
    name: str
    exercise: int
    project: int
    builds: list[Loose] = Field(description="every build of the copy, first to last, as the grid shows one")


def _seat(request: HttpRequest, classroom_id: int, exercise_id: int, student_id: int) -> Any:
    found = selectors.classroom_get_taught(user=_user(request), classroom_id=classroom_id)
    exercise = selectors.exercise_current(classroom=found, exercise_id=exercise_id)
    assert exercise is not None
    return selectors.assignment_of(exercise=exercise, student_id=student_id)


@router.post(
    "/classrooms/{int:classroom_id}/exercises/{int:exercise_id}/students/{int:student_id}/reset/",
    response={200: StudentRow, **errors(409)},
)
def classroom_student_reset(request: HttpRequest, classroom_id: Id, exercise_id: Id, student_id: Id) -> Any:
    """Teacher: put a student's copy back to the starter; their builds and earlier files stay."""
    assignment = services.assignment_reset(assignment=_seat(request, classroom_id, exercise_id, student_id))
    return selectors.student_row(assignment)


@router.get(
    "/classrooms/{int:classroom_id}/exercises/{int:exercise_id}/students/{int:student_id}/builds/",
    response={200: StudentBuildsOut, **errors()},
)
def classroom_student_builds(request: HttpRequest, classroom_id: Id, exercise_id: Id, student_id: Id) -> Any:
    """Teacher: a student's builds of their copy, in the order they made them."""
    assignment = _seat(request, classroom_id, exercise_id, student_id)
    return {
        "student": assignment.membership_id,
        "name": assignment.membership.display_name,
        "exercise": assignment.exercise_id,
        "project": assignment.project_id,
        "builds": selectors.builds_in_order(project_id=assignment.project_id),
    }


@router.post(
    "/classrooms/{int:classroom_id}/exercises/{int:exercise_id}/prediction/",
    response={201: PredictionOut, **errors(409)},
)
def classroom_prediction(
    request: HttpRequest, classroom_id: Id, exercise_id: Id, payload: PredictionIn
) -> Any:
    """Student: before building your copy, say which steps will rebuild; the build grades it."""
    user = _user(request)
    found, role = selectors.classroom_get(user=user, classroom_id=classroom_id)
    if role == TEACHER:
        raise ApiError("only students predict their builds", status=403)
    assignment = (
        selectors.assignments_of(membership=Membership.objects.get(classroom=found, student=user))
        .filter(exercise_id=exercise_id)
        .first()
    )
    if assignment is None:
        raise Http404(f"you have no copy of exercise {exercise_id}")
    made = predictions.prediction_make(assignment=assignment, rebuild=payload.rebuild)
    return Status(201, predictions.prediction_json(made))
