"""The studio's one JSON API: a django-ninja `NinjaAPI` at /api/, with a router per app (each in its
app's `api.py`), and its OpenAPI 3.1 description derived from the same typed schemas that validate
the requests and shape the answers, served at /api/schema/.

Why django-ninja rather than Django REST framework with drf-spectacular: the API is a set of plain
function views over services and selectors that already return dicts, behind Django's session and
CSRF. Ninja keeps those functions as they are and takes their types (pydantic models, annotated
query and path parameters) as the one source of both validation and the schema; DRF would add
serializer classes, viewsets and its own request/response and auth layers, and drf-spectacular
would still infer the schema from them after the fact, a second description beside the code.

What the studio adds to ninja, so that answers stay as they were: a body parser that refuses
hostile JSON (too deep, lone surrogates, numbers past 2**53, NaN) naming the field; every refusal
as `{"error": message, ...details}`, a type error naming the field (`mode must be a whole number`);
the session's user required (401 `log in first`) with Django's CSRF check first (403 in JSON);
a path id past any row's answered 404; and every answer uncached and setting the CSRF cookie.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.utils.cache import add_never_cache_headers
from django.utils.datastructures import MultiValueDict
from django.views.decorators.http import require_GET
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.operation import Operation
from ninja.parser import Parser
from ninja.security import SessionAuth
from ninja.utils import check_csrf

from builds.api import router as builds
from builds.containers.api import router as containers
from builds.engine.events import json_schema as events_schema
from builds.imagelab_api import router as imagelab

from .api import EVENT_MARK, ApiError, parse_json_object
from .classrooms.api import router as classrooms
from .errors import Rejected
from .projects.api import router as projects


class JsonBody(Parser):
    """Bodies read as the studio always read them (see `parse_json_object`); a query parameter
    sent empty (`?token=`) counts as not sent, so it takes its default."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        return parse_json_object(request.body)

    def parse_querydict(
        self, data: MultiValueDict[str, str], list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        found = super().parse_querydict(data, list_fields, request)
        return {key: value for key, value in found.items() if value != ""}


class _CsrfRefused(Exception):
    def __init__(self, response: HttpResponse) -> None:
        super().__init__("CSRF check failed")
        self.response = response


class StudioSession(SessionAuth):
    """Django's session, with Django's own CSRF check first: its refusal comes from
    CSRF_FAILURE_VIEW (studio.api.csrf_failure), in JSON, naming the reason."""

    def _get_key(self, request: HttpRequest) -> str | None:
        if self.csrf and not getattr(request, "_ninja_csrf_exempt", False):
            refused = check_csrf(request)
            if refused is not None:
                raise _CsrfRefused(refused)
        return request.COOKIES.get(self.param_name)


class StudioApi(NinjaAPI):
    def get_content_type(self) -> str:
        return "application/json"  # as JsonResponse says it, and the API always has

    def get_openapi_operation_id(self, operation: Operation) -> str:
        return operation.view_func.__name__  # unique across the routers: the generated types' names


def _every_answer(run: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Around every operation: the CSRF cookie set, so that a script that only ever talked to the
    API has the token its next POST needs; nothing cached, since every answer is someone's own."""

    operation = getattr(run, "__self__", None)
    takes_json = any(
        model.__ninja_param_source__ == "body" for model in getattr(operation, "models", ())
    )

    @functools.wraps(run)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        get_token(request)
        try:
            if takes_json and not request.body.strip():
                request._body = b"{}"  # an empty body is an empty object, as it always was
            response = run(request, *args, **kwargs)
        except RequestDataTooBig:
            response = too_large()
        add_never_cache_headers(response)
        return response

    return wrapped


api = StudioApi(
    title="Dockerfile Studio",
    version="1",
    description=(
        "The studio's JSON API. Every refusal is `{\"error\": message}` with details naming its "
        "cause (`field`, `file`, `line`, `limit`...). Sign in with the session cookie; send the "
        "csrftoken cookie's value as X-CSRFToken with every request that changes something.\n\n"
        "Websockets (same session cookie; other sites' pages are refused):\n\n"
        "- `ws/builds/{build_id}/[?after=SEQ][&token=T]`: the build's events (the `Event` schema), "
        "stored ones first, then live ones, each exactly once in `seq` order.\n"
        "- `ws/projects/{project_id}/[?token=T]`: `{\"type\": \"build.status\", \"build\": Build}` "
        "whenever a build of the project is queued or changes status."
    ),
    urls_namespace="api",
    openapi_url=None,  # served by `schema` below: GET only, as every other endpoint is strict
    docs_url=None,
    auth=StudioSession(),
    parser=JsonBody(),
)
api.add_decorator(_every_answer, mode="view")


def _error(message: str, status: int, **details: Any) -> JsonResponse:
    return JsonResponse({"error": message, **details}, status=status)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, error: ApiError) -> HttpResponse:
    return error.response()


@api.exception_handler(Rejected)
def _rejected(request: HttpRequest, refused: Rejected) -> HttpResponse:
    response = _error(refused.message, refused.status, **refused.details)
    if "retry_after" in refused.details:
        response["Retry-After"] = str(refused.details["retry_after"])
    return response


def too_large() -> JsonResponse:
    return _error("the request body is too large", 413, limit="request_bytes")


@api.exception_handler(RequestDataTooBig)
def _too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return too_large()


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, missing: Http404) -> HttpResponse:
    return _error(str(missing) or "not found", 404)


@api.exception_handler(_CsrfRefused)
def _csrf_refused(request: HttpRequest, refused: _CsrfRefused) -> HttpResponse:
    return refused.response


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    if isinstance(error.__cause__, ApiError):  # the body parser's refusal, wrapped by ninja
        return error.__cause__.response()
    if isinstance(error, AuthenticationError):
        return _error("log in first", 401)
    return _error(error.message, error.status_code)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, invalid: ValidationError) -> HttpResponse:
    first = invalid.errors[0]
    source, *where = first["loc"]
    if source == "path":
        return _error("not found", 404)  # an id past any row's, or of no valid form
    if source == "body" and len(where) > 1:
        where = where[1:]  # the view's parameter holding the whole body
    if not where:
        return _error("the body must be a JSON object", 400)
    name = str(where[0])
    inner = ".".join(str(part) for part in where[1:])
    return _error(f"{name}{': ' + inner if inner else ''} {_says(first)}", 400, field=name)


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    raise exc  # studio.api.JsonErrors logs it and answers 500 in JSON


KINDS = {
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
}


def _says(error: dict[str, Any]) -> str:
    """What is wrong, said as the studio says it: `must be a whole number`, `is required`."""
    kind, context = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind in KINDS:
        return f"must be {KINDS[kind]}"
    if kind == "greater_than_equal":
        return f"must be at least {context['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {context['le']}"
    if kind == "literal_error":
        return f"must be {context['expected']}"
    return str(error["msg"]).lower()


@require_GET
def schema(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document())


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI 3.1 description, as ninja derives it from the routers' types, with the
    engine's events described by their own JSON Schema (msgspec's, from builds.engine.events)."""
    document = json.loads(json.dumps(api.get_openapi_schema()))
    schemas = document["components"]["schemas"]
    events = json.loads(json.dumps(events_schema()).replace("#/$defs/", "#/components/schemas/"))
    for name, definition in events.pop("$defs").items():
        assert name not in schemas, f"an event's schema {name} shadows an API schema"
        schemas[name] = definition
    schemas["Event"] = {"description": "one of the engine's build events, told apart by `type`", **events}
    document = _with_event_refs(document)
    return document


def openapi_text() -> str:
    """The description as frontend/openapi.json holds it: stable key order, one trailing newline."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _with_event_refs(node: Any) -> Any:
    if node == EVENT_MARK:
        return {"$ref": "#/components/schemas/Event"}
    if isinstance(node, dict):
        return {key: _with_event_refs(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_with_event_refs(value) for value in node]
    return node


api.add_router("", projects)
api.add_router("", builds)
api.add_router("", imagelab)
api.add_router("", containers)
api.add_router("", classrooms)
