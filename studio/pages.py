"""The studio's plain pages: the home page, your projects, a project's studio, and the recorded
demo. The studio itself is a script (frontend/src/main.ts) that talks to the JSON API."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from studio import demo
from studio.errors import Rejected
from studio.models import User

from .classrooms.selectors import copy_lesson
from .projects import selectors
from .projects.starter import starter_create, starter_name


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "studio/home.html")


@login_required
@require_http_methods(["GET", "POST"])
def projects_page(request: HttpRequest) -> HttpResponse:
    """Your projects, and a button that makes a new one from the starter."""
    assert isinstance(request.user, User)
    error = ""
    if request.method == "POST":
        name = request.POST.get("name", "").strip() or starter_name(owner=request.user)
        try:
            project = starter_create(owner=request.user, name=name)
        except Rejected as refused:
            error = refused.message
        else:
            return redirect("project_studio", project_id=project.id)
    projects = selectors.project_list(user=request.user)
    return render(
        request,
        "studio/projects.html",
        {"projects": projects, "error": error, "suggested": starter_name(owner=request.user)},
        status=400 if error else 200,
    )


@login_required
def project_studio(request: HttpRequest, project_id: int) -> HttpResponse:
    """A project's studio: the editor, the build, its layer stack and the history. Whoever may not
    see the project gets the same 404 as for one that does not exist."""
    token = request.GET.get("token") or None
    project = selectors.project_get(user=request.user, project_id=project_id, token=token)
    return render(
        request,
        "studio/project.html",
        {
            "project": project,
            "can_edit": project.owner_id == request.user.pk,
            # A student's exercise copy shows its lesson in a panel beside the editor.
            "lesson": copy_lesson(project_id=project.id),
        },
    )


def demo_page(request: HttpRequest) -> HttpResponse:
    """The recorded demo, no account needed: the Dockerfile, the edit between two builds, and the
    two builds replayed into the layer stack with the reason for every layer."""
    return render(
        request,
        "studio/studio_page.html",
        {
            "dockerfile_lines": demo.dockerfile_lines(),
            "edit": demo.EDIT,
            "edit_lines": demo.diff_lines(demo.EDIT.before, demo.EDIT.after),
        },
    )
