"""Comparing two builds: the JSON (`/api/compare/<a>/<b>/`, and one row's details on demand), the
page that draws it (`/compare/<a>/<b>/`) and the picker (`/compare/`). Whoever may not see both
builds is told neither exists (404). A share link's token opens a build of a private project:
`token` for both builds, or `a_token` / `b_token` for each."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Max, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from studio.api import ApiError, api_view
from studio.models import User
from studio.projects import access
from studio.projects.models import Project
from studio.projects.selectors import project_can_view

from .compare.report import build_comparison, row_detail
from .engine.store import Store
from .models import Build
from .selectors import build_get

PICKER_PROJECTS = 50
PICKER_BUILDS_PER_PROJECT = 30


def _both(request: HttpRequest, a_id: int, b_id: int) -> tuple[Build, Build]:
    shared = request.GET.get("token") or None
    a = build_get(user=request.user, build_id=a_id, token=request.GET.get("a_token") or shared)
    b = build_get(user=request.user, build_id=b_id, token=request.GET.get("b_token") or shared)
    return a, b


def _store() -> Store:
    return Store(settings.STUDIO_DATA_DIR)


@api_view(("GET",))
def compare(request: HttpRequest, a_id: int, b_id: int) -> JsonResponse:
    a, b = _both(request, a_id, b_id)
    return JsonResponse(build_comparison(a, b, store=_store()))


def _step_param(request: HttpRequest, name: str) -> int | None:
    raw = request.GET.get(name, "")
    if raw in ("", "none"):
        return None
    if not raw.isdigit():
        raise ApiError(f"{name} must be a step number of build {name}, or empty for a gap", field=name)
    return int(raw)


@api_view(("GET",))
def compare_row(request: HttpRequest, a_id: int, b_id: int) -> JsonResponse:
    a, b = _both(request, a_id, b_id)
    a_step, b_step = _step_param(request, "a"), _step_param(request, "b")
    if a_step is None and b_step is None:
        raise ApiError("name a step of either build: ?a=<step>&b=<step>", field="a")
    try:
        return JsonResponse(row_detail(a, b, a_step=a_step, b_step=b_step, store=_store()))
    except LookupError as missing:
        raise Http404(str(missing)) from None


@login_required
def compare_page(request: HttpRequest, a_id: int, b_id: int) -> HttpResponse:
    a, b = _both(request, a_id, b_id)
    return render(request, "studio/compare.html", {"a": a, "b": b, "query": request.GET.urlencode()})


def _pickable_projects(user: User) -> list[Project]:
    """Projects with builds the person may see, latest build first: their own, public ones, and
    those a class opens to them (a teacher's students' copies, the project a teacher shares with
    the class). Each is checked with `project_can_view`, the one rule of who sees what."""
    granted = access.granted_projects(user=user)
    candidates = (
        Project.objects.filter(Q(owner=user) | Q(visibility=Project.Visibility.PUBLIC) | granted)
        .filter(builds__isnull=False)
        .annotate(last_build=Max("builds__id"))
        .select_related("owner")
        .order_by("-last_build")[:PICKER_PROJECTS]
    )
    return [project for project in candidates if project_can_view(user=user, project=project)]


@login_required
def compare_picker(request: HttpRequest) -> HttpResponse:
    """Two selects of the builds the person may see; choosing sends them to the comparison."""
    error = ""
    a, b = request.GET.get("a", ""), request.GET.get("b", "")
    if a or b:
        if a.isdigit() and b.isdigit():
            return redirect("compare-page", a_id=int(a), b_id=int(b))
        error = "Choose two builds."
    assert isinstance(request.user, User)  # login_required let only signed-in people through
    groups = [
        {"project": project, "builds": list(project.builds.order_by("-id")[:PICKER_BUILDS_PER_PROJECT])}
        for project in _pickable_projects(request.user)
    ]
    return render(request, "studio/compare_picker.html", {"groups": groups, "error": error})
