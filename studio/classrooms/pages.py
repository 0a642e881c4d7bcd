"""The classroom's pages: the list of one's classes, joining with a code, the teacher's dashboard
with its controls, and a student's view of their exercises. Forms post to the same services the
JSON API calls; a refused request shows its message on the page and changes nothing."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from builds.models import Build
from builds.selectors import build_dockerfile_text
from studio.classrooms.models import Membership
from studio.errors import Rejected
from studio.models import User
from studio.projects.models import Project

from . import live, mistakes, pack, predictions, selectors, services
from .api import join_url, studio_url
from .export import to_csv
from .pack import split_steps
from .selectors import TEACHER


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@login_required
@require_http_methods(["GET", "POST"])
def classrooms(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    error = None
    if request.method == "POST":
        try:
            made = services.classroom_create(teacher=user, name=request.POST.get("name"))
        except Rejected as refused:
            error = refused.message
        else:
            return redirect("classroom-page", made.id)
    return render(
        request,
        "classrooms/list.html",
        {
            "taught": selectors.classrooms_taught(user=user),
            "joined": selectors.memberships_of(user=user),
            "error": error,
        },
    )


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, code: str = "") -> HttpResponse:
    code = request.POST.get("code", code) or request.GET.get("code", "")
    context: dict[str, Any] = {
        "code": services.normalise_code(code),
        "name": request.POST.get("display_name", ""),
    }
    if request.method == "POST" and request.user.is_authenticated:
        try:
            membership = services.classroom_join(
                user=_user(request), code=code, display_name=request.POST.get("display_name")
            )
        except Rejected as refused:
            context["error"] = refused.message
        else:
            return redirect("classroom-page", membership.classroom_id)
    context["next"] = request.get_full_path()
    return render(request, "classrooms/join.html", context)


@login_required
def classroom(request: HttpRequest, classroom_id: int) -> HttpResponse:
    user = _user(request)
    found, role = selectors.classroom_get(user=user, classroom_id=classroom_id)
    if role == TEACHER:
        return _dashboard(request, found)
    membership = Membership.objects.get(classroom=found, student=user)
    exercises = [
        {
            "exercise": a.exercise,
            "project": a.project,
            "studio_url": studio_url(a.project_id),
            "results": a.results,
            "steps": split_steps(a.exercise.instructions),
            "state": selectors.copy_state(a),
            "state_words": selectors.STATE_WORDS[selectors.copy_state(a)],
            "build": selectors.latest_build(a.project_id),
        }
        for a in selectors.assignments_of(membership=membership).order_by("-exercise__created_at")
    ]
    shared = found.shared_project
    return render(
        request,
        "classrooms/student.html",
        {
            "classroom": found,
            "membership": membership,
            "exercises": exercises,
            "shared": {"project": shared, "url": studio_url(shared.id)} if shared else None,
        },
    )


def _dashboard(request: HttpRequest, classroom: Any) -> HttpResponse:
    exercise_id = request.GET.get("exercise")
    exercise = selectors.exercise_current(
        classroom=classroom, exercise_id=int(exercise_id) if exercise_id and exercise_id.isdigit() else None
    )
    starter_project = exercise.starter.project_id if exercise and exercise.starter else None
    return render(
        request,
        "classrooms/dashboard.html",
        {
            "classroom": classroom,
            "join_url": join_url(request, classroom),
            "exercise": exercise,
            "exercise_checks": selectors.exercise_json(exercise)["checks"] if exercise else [],
            "exercise_steps": split_steps(exercise.instructions) if exercise else [],
            "lessons": pack.lessons(),
            "accuracy": predictions.accuracy(exercise=exercise) if exercise else [],
            "exercises": classroom.exercises.all(),
            "students": selectors.members(classroom=classroom),
            "projects": Project.objects.filter(owner=classroom.teacher).order_by("name"),
            "present_url": f"{studio_url(starter_project)}?large=1" if starter_project else None,
            "shared_present_url": (
                f"{studio_url(classroom.shared_project_id)}?large=1" if classroom.shared_project_id else None
            ),
        },
    )


def _back(request: HttpRequest, classroom_id: int, error: str | None = None) -> HttpResponse:
    """Back to the dashboard, with what was refused shown there once."""
    if error:
        messages.error(request, error)
    return redirect("classroom-page", classroom_id)


@login_required
@require_POST
def exercise_new(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """Hand out an exercise from the dashboard's form: a project (or a new starter) and the checks
    whose fields were filled in."""
    user = _user(request)
    found = selectors.classroom_get_taught(user=user, classroom_id=classroom_id)
    form = request.POST
    project = None
    if form.get("project"):
        project = (
            Project.objects.filter(id=form["project"], owner=user).first()
            if form["project"].isdigit()
            else None
        )
        if project is None:
            return _back(request, found.id, "choose one of your projects")
    try:
        services.exercise_create(
            classroom=found,
            title=form.get("title"),
            instructions=form.get("instructions", ""),
            project=project,
            checks=_checks_from_form(form),
        )
    except Rejected as refused:
        return _back(request, found.id, refused.message)
    return _back(request, found.id)


@login_required
@require_POST
def lesson_new(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """Hand out the lesson of the pack picked on the dashboard, and show its grid."""
    found = selectors.classroom_get_taught(user=_user(request), classroom_id=classroom_id)
    try:
        exercise = services.exercise_from_lesson(classroom=found, slug=request.POST.get("lesson"))
    except Rejected as refused:
        return _back(request, found.id, refused.message)
    return redirect(f"{reverse('classroom-page', args=[found.id])}?exercise={exercise.id}")


@login_required
@require_POST
def exercise_edit(request: HttpRequest, classroom_id: int, exercise_id: int) -> HttpResponse:
    found = selectors.classroom_get_taught(user=_user(request), classroom_id=classroom_id)
    exercise = selectors.exercise_current(classroom=found, exercise_id=exercise_id)
    assert exercise is not None
    try:
        services.exercise_update(
            exercise=exercise, title=request.POST.get("title"), instructions=request.POST.get("instructions")
        )
    except Rejected as refused:
        return _back(request, found.id, refused.message)
    return redirect(f"{reverse('classroom-page', args=[found.id])}?exercise={exercise.id}")


@login_required
def results_csv(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """The exercise's results (the latest unless ?exercise=) as a CSV file."""
    found = selectors.classroom_get_taught(user=_user(request), classroom_id=classroom_id)
    raw = request.GET.get("exercise", "")
    exercise = selectors.exercise_current(classroom=found, exercise_id=int(raw) if raw.isdigit() else None)
    if exercise is None:
        raise Http404("the class has no exercise yet")
    table = to_csv(selectors.results_table(exercise=exercise))
    reply = HttpResponse(table, content_type="text/csv; charset=utf-8")
    reply["Content-Disposition"] = f'attachment; filename="class-{found.id}-exercise-{exercise.id}.csv"'
    return reply


def _seat(request: HttpRequest, classroom_id: int, exercise_id: int, student_id: int) -> Any:
    found = selectors.classroom_get_taught(user=_user(request), classroom_id=classroom_id)
    exercise = selectors.exercise_current(classroom=found, exercise_id=exercise_id)
    assert exercise is not None
    return selectors.assignment_of(exercise=exercise, student_id=student_id)


@login_required
@require_POST
def student_reset(request: HttpRequest, classroom_id: int, exercise_id: int, student_id: int) -> HttpResponse:
    assignment = _seat(request, classroom_id, exercise_id, student_id)
    try:
        services.assignment_reset(assignment=assignment)
    except Rejected as refused:
        return _back(request, classroom_id, refused.message)
    messages.info(request, f"{assignment.membership.display_name}'s copy is the starter again.")
    return redirect(f"{reverse('classroom-page', args=[classroom_id])}?exercise={exercise_id}")


@login_required
def student_builds(
    request: HttpRequest, classroom_id: int, exercise_id: int, student_id: int
) -> HttpResponse:
    """A student's builds of one exercise, first to last, each opening in the studio."""
    assignment = _seat(request, classroom_id, exercise_id, student_id)
    builds = selectors.builds_in_order(project_id=assignment.project_id)
    for build in builds:
        build["url"] = studio_url(assignment.project_id, build["id"])
    return render(
        request,
        "classrooms/student_builds.html",
        {"assignment": assignment, "classroom": assignment.exercise.classroom, "builds": builds},
    )


@login_required
@require_POST
def prediction_new(request: HttpRequest, classroom_id: int, exercise_id: int) -> HttpResponse:
    """The studio panel's form: the steps the student ticked as "will rebuild", for the next build."""
    user = _user(request)
    found, role = selectors.classroom_get(user=user, classroom_id=classroom_id)
    membership = Membership.objects.filter(classroom=found, student=user).first()
    assignment = (
        selectors.assignments_of(membership=membership).filter(exercise_id=exercise_id).first()
        if role != TEACHER and membership is not None
        else None
    )
    if assignment is None:
        raise Http404(f"you have no copy of exercise {exercise_id}")
    ticked = [int(n) for n in request.POST.getlist("rebuild") if n.isdigit()]
    try:
        predictions.prediction_make(assignment=assignment, rebuild=ticked)
    except Rejected as refused:
        messages.error(request, refused.message)
    return redirect(studio_url(assignment.project_id))


def _checks_from_form(form: Any) -> list[dict[str, Any]]:
    def number(name: str) -> Any:
        value = form.get(name, "").strip()
        return int(value) if value.isdigit() else value

    out: list[dict[str, Any]] = []
    if form.get("change_file", "").strip():
        out.append(
            {"kind": "rebuild_after_change", "file": form["change_file"], "max_steps": number("change_max")}
        )
    if form.get("max_mb", "").strip():
        out.append({"kind": "image_size", "max_mb": number("max_mb")})
    if form.get("max_layers", "").strip():
        out.append({"kind": "layers", "max": number("max_layers")})
    if form.get("absent_path", "").strip():
        out.append({"kind": "absent_path", "path": form["absent_path"]})
    return out


@login_required
@require_POST
def student_remove(request: HttpRequest, classroom_id: int, student_id: int) -> HttpResponse:
    found = selectors.classroom_get_taught(user=_user(request), classroom_id=classroom_id)
    membership = selectors.members(classroom=found).filter(id=student_id).first()
    if membership is None:
        raise Http404(f"the class has no student {student_id}")
    services.membership_remove(membership=membership)
    live.publish_removed(classroom_id=found.id, student=membership.id)
    return _back(request, found.id)


@login_required
@require_POST
def classroom_settings(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """Close or reopen the class, or choose the project it may look at."""
    found = selectors.classroom_get_taught(user=_user(request), classroom_id=classroom_id)
    changes: dict[str, Any] = {}
    if "closed" in request.POST:
        changes["closed"] = request.POST["closed"] == "true"
    if "shared_project" in request.POST:
        raw = request.POST["shared_project"]
        changes["shared_project"] = int(raw) if raw.isdigit() else None
    try:
        services.classroom_update(classroom=found, **changes)
    except Rejected as refused:
        return _back(request, found.id, refused.message)
    return _back(request, found.id)


@login_required
def mistake_example(request: HttpRequest, classroom_id: int, exercise_id: int) -> HttpResponse:
    """One student's Dockerfile that makes a mistake of the class (?code=, the largest group's
    when left out; ?n= picks which student of the group), the lines at fault marked, with no
    name on it: large enough to put on the projector and talk about."""
    found = selectors.classroom_get_taught(user=_user(request), classroom_id=classroom_id)
    exercise = selectors.exercise_current(classroom=found, exercise_id=exercise_id)
    assert exercise is not None
    rows = selectors.dashboard_rows(exercise=exercise)
    groups = mistakes.groups(rows)
    code = request.GET.get("code", "")
    group = next((g for g in groups if g["code"] == code), None) if code else (groups[0] if groups else None)
    if group is None:
        raise Http404("no student of the class makes that mistake in their latest build")
    raw = request.GET.get("n", "0")
    count = len(group["students"])
    n = int(raw) % count if raw.isdigit() and len(raw) < 6 else 0
    student = group["students"][n]["student"]
    row = next(r for r in rows if r["student"] == student)
    mistake = next(m for m in row["mistakes"] if m["code"] == group["code"])
    build = Build.objects.filter(id=row["build"]["id"]).first() if row["build"] else None
    text = (build_dockerfile_text(build=build) if build else None) or ""
    return render(
        request,
        "classrooms/mistake_example.html",
        {
            "classroom": found,
            "exercise": exercise,
            "group": group,
            "mistake": mistake,
            "lines": mistakes.marked_lines(text, mistake),
            "n": n + 1,
            "count": count,
            "next_n": (n + 1) % count,
        },
    )
