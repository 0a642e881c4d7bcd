"""What every JSON endpoint shares: errors as `{"error": message, ...}`, the session's user,
bodies read as JSON, and CSRF failures answered in JSON rather than with an HTML page."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.cache import never_cache

from .errors import Rejected

P = ParamSpec("P")
View = Callable[Concatenate[HttpRequest, P], HttpResponse]


class ApiError(Exception):
    """A request the view itself refuses (services raise `Rejected`): `status` and a message a
    person can act on, plus details that point at the cause (`field`, `file`, `line`, `limit`...)."""

    def __init__(self, message: str, *, status: int = 400, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.details = details

    def response(self) -> JsonResponse:
        return JsonResponse({"error": self.message, **self.details}, status=self.status)


def api_view(
    methods: tuple[str, ...], *, login_required: bool = True
) -> Callable[[View[P]], Callable[Concatenate[HttpRequest, P], HttpResponse]]:
    """Make a function a JSON endpoint answering `methods`. The session's user must be signed in
    unless `login_required` is false. Every answer also sets the CSRF cookie, so a script that only
    ever talked to the API has the token its next POST needs."""

    def decorate(view: View[P]) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
        @functools.wraps(view)
        @never_cache
        def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            get_token(request)
            try:
                if request.method not in methods:
                    allowed = ", ".join(methods)
                    raise ApiError(f"{request.method} is not allowed here (allowed: {allowed})", status=405)
                if login_required and not request.user.is_authenticated:
                    raise ApiError("log in first", status=401)
                return view(request, *args, **kwargs)
            except ApiError as error:
                response = error.response()
            except Rejected as refused:
                response = JsonResponse({"error": refused.message, **refused.details}, status=refused.status)
                if "retry_after" in refused.details:
                    response["Retry-After"] = str(refused.details["retry_after"])
            except Http404 as missing:
                response = JsonResponse({"error": str(missing) or "not found"}, status=404)
            if response.status_code == 405:
                response["Allow"] = ", ".join(methods)
            return response

        return wrapped

    return decorate


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's body as a JSON object (an empty body is an empty object)."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError("the request body is too large", status=413, limit="request_bytes") from None
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError("the body must be a JSON object")
    return data


def field(data: dict[str, Any], name: str, kind: type, *, default: Any = None, required: bool = False) -> Any:
    """`data[name]`, checked to be of `kind`; a wrong or missing value names the field."""
    if name not in data or data[name] is None:
        if required:
            raise ApiError(f"{name} is required", field=name)
        return default
    value = data[name]
    # bool is an int in Python; a JSON `true` is no number of anything.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(f"{name} must be {_kind_name(kind)}", field=name)
    return value


def _kind_name(kind: type) -> str:
    return {str: "a string", bool: "true or false", int: "a whole number", dict: "an object"}.get(
        kind, kind.__name__
    )


def int_param(
    request: HttpRequest, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(f"{name} must be a whole number", field=name) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ApiError(f"{name} must be between {minimum} and {maximum}", field=name)
    return value


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": f"CSRF check failed ({reason}): send the csrftoken cookie's value as X-CSRFToken"},
            status=403,
        )
    return html_csrf_failure(request, reason)
