"""The JSON API for builds (see /api/schema/ for every field)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from studio.api import api_view, field, int_param, json_body
from studio.models import User
from studio.projects.files import check_file_size
from studio.projects.selectors import project_get

from . import inspector, lint, planning, selectors, services, throttle
from .models import Build


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # api_view let only signed-in users through
    return request.user


def _token(request: HttpRequest) -> str | None:
    return request.GET.get("token") or None


def build_json(build: Build, *, steps: bool = False) -> dict[str, object]:
    out: dict[str, object] = selectors.build_summary(build)
    if steps:
        out["plan"] = selectors.build_plan(build=build)
        out["steps"] = [selectors.step_json(step) for step in selectors.build_steps(build=build)]
    return out


@api_view(("GET", "POST"))
def project_builds(request: HttpRequest, project_id: int) -> JsonResponse:
    user = _user(request)
    if request.method == "GET":
        services.builds_reap_if_due()
        project = project_get(user=user, project_id=project_id, token=_token(request))
        before = int_param(request, "before", 0, minimum=0) or None
        limit = int_param(request, "limit", 50, minimum=1, maximum=200)
        found = selectors.build_list(project=project, before=before, limit=limit)
        return JsonResponse({"builds": [build_json(b) for b in found]})
    project = project_get(user=user, project_id=project_id, write=True)
    body = json_body(request)
    build = services.build_create(
        project=project,
        user=user,
        target=field(body, "target", str, default=""),
        build_args=field(body, "build_args", dict, default={}),
        no_cache=field(body, "no_cache", bool, default=False),
    )
    return JsonResponse(build_json(build), status=202)


@api_view(("POST",))
def project_plan(request: HttpRequest, project_id: int) -> JsonResponse:
    user = _user(request)
    project = project_get(user=user, project_id=project_id, write=True)
    body = json_body(request)
    with throttle.PREDICTIONS.turn(user.pk):
        found = planning.project_predict(
            project=project,
            user=user,
            dockerfile=field(body, "dockerfile", str),
            target=field(body, "target", str, default=""),
            build_args=field(body, "build_args", dict, default={}),
            no_cache=field(body, "no_cache", bool, default=False),
        )
    return JsonResponse(found)


@api_view(("POST",))
def project_lint(request: HttpRequest, project_id: int) -> JsonResponse:
    user = _user(request)
    project = project_get(user=user, project_id=project_id, token=_token(request))
    text = field(json_body(request), "dockerfile", str)
    if text is None:
        text = planning.saved_dockerfile(project=project)
    check_file_size(project.dockerfile_path, len(text.encode("utf-8", "surrogatepass")))
    with throttle.LINTS.turn(user.pk):
        return JsonResponse({"diagnostics": lint.dockerfile_lint(text=text)})


@api_view(("GET",))
def build(request: HttpRequest, build_id: int) -> JsonResponse:
    services.builds_reap_if_due()
    found = selectors.build_get(user=_user(request), build_id=build_id, token=_token(request))
    return JsonResponse(build_json(found, steps=True))


@api_view(("GET",))
def build_step(request: HttpRequest, build_id: int, number: int) -> JsonResponse:
    found = selectors.build_get(user=_user(request), build_id=build_id, token=_token(request))
    return JsonResponse(inspector.step_detail(build=found, number=number))


@api_view(("POST",))
def build_cancel(request: HttpRequest, build_id: int) -> JsonResponse:
    found = selectors.build_get(user=_user(request), build_id=build_id)
    project_get(user=request.user, project_id=found.project_id, write=True)
    return JsonResponse(build_json(services.build_cancel(build=found)), status=202)


@api_view(("GET",))
def build_events(request: HttpRequest, build_id: int) -> JsonResponse:
    services.builds_reap_if_due()
    found = selectors.build_get(user=_user(request), build_id=build_id, token=_token(request))
    after = int_param(request, "after", 0, minimum=0)
    limit = int_param(
        request, "limit", selectors.MAX_EVENTS_PAGE, minimum=1, maximum=selectors.MAX_EVENTS_PAGE
    )
    events = selectors.build_events(build_id=found.id, after=after, limit=limit)
    return JsonResponse(
        {
            "build": found.id,
            "status": found.status,
            "events": events,
            # More may follow: the page was full, or the build is still going.
            "more": len(events) == limit or not found.finished,
        }
    )
