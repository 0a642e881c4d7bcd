"""The JSON API for classrooms (see /api/schema/ for every field). A teacher sees and changes only
their own classes; a student sees only their own copies and what the teacher shares."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, JsonResponse
from django.urls import reverse

from studio.api import ApiError, api_view, field, json_body
from studio.classrooms.models import Classroom, Membership
from studio.models import User
from studio.projects.models import Project

from . import live, selectors, services
from .selectors import TEACHER, exercise_json


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # api_view let only signed-in users through
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
                "judged_build": a.judged_build,
            }
            for a in selectors.assignments_of(membership=membership).order_by("-exercise__created_at")
        ],
    }


def summary_json(classroom: Classroom, role: str) -> dict[str, Any]:
    return {"id": classroom.id, "name": classroom.name, "role": role, "closed": classroom.closed}


@api_view(("GET", "POST"))
def classrooms(request: HttpRequest) -> JsonResponse:
    user = _user(request)
    if request.method == "GET":
        teaching = [summary_json(c, "teacher") for c in selectors.classrooms_taught(user=user)]
        joined = [summary_json(m.classroom, "student") for m in selectors.memberships_of(user=user)]
        return JsonResponse({"classrooms": teaching + joined})
    body = json_body(request)
    classroom = services.classroom_create(teacher=user, name=body.get("name"))
    return JsonResponse(teacher_json(request, classroom), status=201)


@api_view(("POST",))
def classroom_join(request: HttpRequest) -> JsonResponse:
    user = _user(request)
    body = json_body(request)
    membership = services.classroom_join(
        user=user, code=field(body, "code", str, required=True), display_name=body.get("display_name")
    )
    return JsonResponse(student_json(membership.classroom, membership), status=201)


@api_view(("GET", "PATCH"))
def classroom(request: HttpRequest, classroom_id: int) -> JsonResponse:
    user = _user(request)
    found, role = selectors.classroom_get(user=user, classroom_id=classroom_id)
    if request.method == "PATCH":
        if role != TEACHER:
            raise ApiError("only the class's teacher may change it", status=403)
        body = json_body(request)
        found = services.classroom_update(
            classroom=found,
            name=body.get("name"),
            closed=body.get("closed"),
            shared_project=body.get("shared_project", ...),
            shared_cache=body.get("shared_cache"),
        )
    if role == TEACHER:
        return JsonResponse(teacher_json(request, found))
    membership = Membership.objects.get(classroom=found, student=user)
    return JsonResponse(student_json(found, membership))


@api_view(("DELETE",))
def classroom_student(request: HttpRequest, classroom_id: int, student_id: int) -> JsonResponse:
    found = selectors.classroom_get_taught(user=_user(request), classroom_id=classroom_id)
    membership = selectors.members(classroom=found).filter(id=student_id).first()
    if membership is None:
        raise Http404(f"the class has no student {student_id}")
    services.membership_remove(membership=membership)
    live.publish_removed(classroom_id=found.id, student=membership.id)
    return JsonResponse({"removed": membership.id})


@api_view(("POST",))
def classroom_exercises(request: HttpRequest, classroom_id: int) -> JsonResponse:
    user = _user(request)
    found = selectors.classroom_get_taught(user=user, classroom_id=classroom_id)
    body = json_body(request)
    project_id = field(body, "project", int)
    project = None
    if project_id is not None:
        project = Project.objects.filter(id=project_id, owner=user).first()
        if project is None:
            raise ApiError(f"you have no project {project_id}", field="project")
    exercise = services.exercise_create(
        classroom=found,
        title=body.get("title"),
        instructions=field(body, "instructions", str, default=""),
        project=project,
        checks=body.get("checks"),
    )
    return JsonResponse(exercise_json(exercise), status=201)


@api_view(("GET",))
def classroom_dashboard(request: HttpRequest, classroom_id: int) -> JsonResponse:
    found = selectors.classroom_get_taught(user=_user(request), classroom_id=classroom_id)
    exercise_id = request.GET.get("exercise")
    if exercise_id is not None and not exercise_id.isdigit():
        raise ApiError("exercise must be an exercise's id", field="exercise")
    return JsonResponse(
        selectors.dashboard(classroom=found, exercise_id=int(exercise_id) if exercise_id else None)
    )
