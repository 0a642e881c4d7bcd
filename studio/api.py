"""What every JSON endpoint shares: errors as `{"error": message, ...}` (JsonErrors makes any error
under /api/ JSON), bodies read as JSON with bounds, CSRF failures answered in JSON rather than with
an HTML page, and the types the routers' signatures share (studio/api_root.py is the API itself)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.csrf import csrf_failure as html_csrf_failure
from ninja import Path, Query, Router
from pydantic import BaseModel, ConfigDict, WithJsonSchema
from pydantic import Field as PydField

log = logging.getLogger("studio.api")

# How deep a request's JSON may nest: the API's bodies need three levels; a deep one costs the
# parser its stack. Numbers must fit in a database's integer (and a JavaScript number).
MAX_JSON_DEPTH = 32
MAX_JSON_INT = 2**53 - 1
MAX_ID = 2**63 - 1  # an id in a URL past this is no row's: 404, not a database overflow


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


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """`raw` as a JSON object whose every string is valid Unicode, every whole number fits a
    JavaScript number, and whose nesting is bounded; an empty body is an empty object."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_constant=_not_json)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError("the body must be a JSON object")
    for name, value in data.items():
        if not _is_text(name):
            raise ApiError("a field's name is not valid Unicode text (it holds a lone surrogate)")
        _check_value(value, name, 1)
    return data


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not a JSON number")


def _too_deep() -> ApiError:
    return ApiError(f"the body nests deeper than {MAX_JSON_DEPTH} levels", limit="json_depth")


def _is_text(value: str) -> bool:
    """Valid Unicode: a JSON escape like \\ud800 gives Python a lone surrogate, which no database,
    file name or UTF-8 encoder takes."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_text(name: str) -> ApiError:
    return ApiError(f"{name} is not valid Unicode text (it holds a lone surrogate)", field=name)


def _check_value(value: Any, name: str, depth: int) -> None:
    """Every string of the body valid Unicode, every number in range, no deeper than the bound;
    a bad one is refused naming the top-level field it is in."""
    stack = [(value, depth)]
    while stack:
        item, level = stack.pop()
        if level > MAX_JSON_DEPTH:
            raise _too_deep()
        if isinstance(item, str):
            if not _is_text(item):
                raise _not_text(name)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_JSON_INT:
                raise ApiError(f"{name} holds a number out of range (at most {MAX_JSON_INT})", field=name)
        elif isinstance(item, dict):
            for key, inner in item.items():
                if not _is_text(key):
                    raise _not_text(name)
                stack.append((inner, level + 1))
        elif isinstance(item, list):
            stack.extend((inner, level + 1) for inner in item)


class JsonErrors:
    """Every error under /api/ in JSON, whatever raised it: a URL no endpoint has (404), a method a
    plain Django view refuses (405), a request Django itself refuses (400), and an exception no
    view expected, which is logged with its traceback and answered `{"error": ...}` with 500. The
    exception is still signalled as Django does, so the test client raises it rather than hide a bug."""

    sync_capable = True
    async_capable = True  # served by uvicorn: no thread hop of its own for every request

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._call_async(request)
        return self._as_json(request, self.get_response(request))

    async def _call_async(self, request: HttpRequest) -> HttpResponse:
        return self._as_json(request, await self.get_response(request))

    def _as_json(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not _under_api(request) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        status = response.status_code
        message = f"no API endpoint at {request.path}" if status == 404 else _phrase(status)
        replaced = JsonResponse({"error": message}, status=status)
        for header in ("Allow", "Retry-After"):
            if header in response:
                replaced[header] = response[header]
        return replaced

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not _under_api(request) or isinstance(exception, Http404):
            return None
        log.error("unexpected error answering %s %s", request.method, request.path, exc_info=exception)
        # From the exception itself: in an async studio this runs in another thread than raised it.
        exc_info = (type(exception), exception, exception.__traceback__)
        got_request_exception.send(sender=type(self), request=request, exc_info=exc_info)
        return JsonResponse(
            {"error": "the studio failed to answer this request; the error has been logged"}, status=500
        )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return f"error {status}"


def _under_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": f"CSRF check failed ({reason}): send the csrftoken cookie's value as X-CSRFToken"},
            status=403,
        )
    return html_csrf_failure(request, reason)


# What every router's operations share in their typed signatures.

# Where a schema holds one of the engine's build events: studio/api_root.py puts the events' own
# JSON Schema (builds.engine.events.json_schema()) in its place.
EVENT_MARK: dict[str, Any] = {"type": "object", "x-studio-event": True}

Id = Annotated[int, Path(le=MAX_ID, description="an id; past any row's is 404")]
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Token = Annotated[
    str | None, Query(description="a share link's token: lets someone other than the owner look")
]


class In(BaseModel):
    """A request body. Fields are strictly typed (a JSON `1.0` is no whole number, `"yes"` no
    true or false); fields it does not name are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")


class Out(BaseModel):
    """An answer: the fields it names are typed and documented; it keeps whatever else the studio's
    selectors add (a step's engine-specific fields), so the schema never drops data."""

    model_config = ConfigDict(extra="allow")


class Error(BaseModel):
    error: str = PydField(description="what was wrong, and what to do about it")
    field: str | None = PydField(None, description="the request field at fault")
    file: str | None = PydField(None, description="the project or upload file at fault")
    line: int | None = PydField(None, description="the Dockerfile line at fault")
    limit: str | None = PydField(
        None,
        description="the limit reached (413, 429): upload_bytes, file_bytes, project_bytes, project_files, "
        "path_depth, builds_per_minute, queued_builds_per_user, projects_per_user, json_depth...",
    )
    max: int | None = PydField(None, description="that limit's value")
    retry_after: int | None = PydField(None, description="seconds until trying again can succeed")


def errors(*codes: int) -> dict[int, type[Error]]:
    """Responses for an operation's refusals: each answered as `Error`."""
    return dict.fromkeys((400, 401, 403, 404, *codes), Error)


class StudioRouter(Router):
    """A router whose answers hold the keys the view gave, no more: a field the schema names but a
    selector left out stays out (`exclude_unset`), as the studio's answers always were."""

    def api_operation(self, methods: list[str], path: str, **options: Any) -> Any:
        if options.get("exclude_unset") is None:
            options["exclude_unset"] = True
        return super().api_operation(methods, path, **options)
