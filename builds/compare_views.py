"""Comparing two builds: the page that draws it (`/compare/<a>/<b>/`, from the JSON of builds/api.py's
`/api/compare/<a>/<b>/`) and the picker (`/compare/`). Whoever may not see both
builds is told neither exists (404). A share link's token opens a build of a private project:
`token` for both builds, or `a_token` / `b_token` for each."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from studio.models import User
from studio.projects import access
from studio.projects.models import Project
from studio.projects.selectors import AnyUser, project_can_view

from .models import Build
from .selectors import build_get

PICKER_PROJECTS = 50
PICKER_BUILDS_PER_PROJECT = 30


def both_builds(
    user: AnyUser,
    a_id: int,
    b_id: int,
    *,
    token: str | None = None,
    a_token: str | None = None,
    b_token: str | None = None,
) -> tuple[Build, Build]:
    a = build_get(user=user, build_id=a_id, token=a_token or token)
    b = build_get(user=user, build_id=b_id, token=b_token or token)
    return a, b


@login_required
def compare_page(request: HttpRequest, a_id: int, b_id: int) -> HttpResponse:
    query = {name: request.GET.get(name) or None for name in ("token", "a_token", "b_token")}
    a, b = both_builds(request.user, a_id, b_id, **query)
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
