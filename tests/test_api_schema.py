"""The API's OpenAPI description is derived from the same typed schemas that validate its requests
and shape its answers (django-ninja), served at /api/schema/, and checked in as
frontend/openapi.json for the page's generated types. Every route is in it with what it takes and
answers, and what it says about a request is what the API enforces."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from builds.engine.events import json_schema as events_schema
from studio.api_root import openapi_text
from studio.classrooms.models import Classroom, Exercise
from studio.models import User
from studio.projects.services import project_create

UNDOCUMENTED = {"/api/ping/", "/api/schema/", "/api/"}  # the wiring check, the description, the root
CHECKED_IN = Path(__file__).resolve().parent.parent / "frontend" / "openapi.json"
METHODS = ("get", "put", "post", "patch", "delete")
# The operations that take a JSON body, and the upload, whose body is an archive.
JSON_BODIES = {
    ("post", "/api/projects/"),
    ("patch", "/api/projects/{project_id}/"),
    ("put", "/api/projects/{project_id}/files/{path}"),
    ("post", "/api/projects/{project_id}/files-move/"),
    ("post", "/api/projects/{project_id}/builds/"),
    ("post", "/api/projects/{project_id}/plan/"),
    ("post", "/api/projects/{project_id}/lint/"),
    ("post", "/api/builds/{build_id}/push/"),
    ("post", "/api/builds/{build_id}/containers/"),
    ("post", "/api/classrooms/"),
    ("post", "/api/classrooms/join/"),
    ("patch", "/api/classrooms/{classroom_id}/"),
    ("post", "/api/classrooms/{classroom_id}/exercises/"),
    ("patch", "/api/classrooms/{classroom_id}/exercises/{exercise_id}/"),
    ("post", "/api/classrooms/{classroom_id}/exercises/{exercise_id}/prediction/"),
    ("post", "/api/builds/{build_id}/squash/"),
    ("post", "/api/builds/{build_id}/bytes/rewrite/"),
}
UPLOAD = ("post", "/api/projects/{project_id}/context/")


def api_routes(patterns: list[Any] | None = None, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found |= api_routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern) and route.startswith("api/"):
            found.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))
    return found


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"]} if "$ref" in node else set()
        return own.union(*(refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(value) for value in node))
    return set()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    served = Client().get("/api/schema/")
    assert served.status_code == 200 and served["Content-Type"] == "application/json"
    return json.loads(served.content)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, route, item[method])
        for route, item in document["paths"].items()
        for method in METHODS
        if method in item
    ]


def test_every_api_route_is_described_and_every_reference_resolves(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == api_routes() - UNDOCUMENTED
    schemas = document["components"]["schemas"]
    assert {ref.removeprefix("#/components/schemas/") for ref in refs(document)} <= set(schemas)


def test_every_operation_says_what_it_answers_and_what_it_takes(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    bodies = set()
    for method, route, operation in operations(document):
        where = f"{method.upper()} {route}"
        assert operation["operationId"] and operation["description"], where
        answered = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert len(answered) == 1, where
        (success,) = answered.values()
        named = refs(success["content"]["application/json"]["schema"])  # one, or a oneOf of roles
        assert named, where
        for ref in named:
            assert schemas[ref.removeprefix("#/components/schemas/")]["properties"], where
        for code in ("401", "404"):  # signed in, and no way into another person's work
            assert operation["responses"][code]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, where
        if "requestBody" in operation:
            content = operation["requestBody"]["content"]
            if "application/json" in content:
                bodies.add((method, route))
                assert "$ref" in content["application/json"]["schema"], where
            else:
                assert (method, route) == UPLOAD and "application/x-tar" in content
    assert bodies == JSON_BODIES


def test_build_events_are_the_engines_own_event_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    events = schemas["EventsOut"]["properties"]["events"]["items"]
    assert events == {"$ref": "#/components/schemas/Event"}
    mapping = schemas["Event"]["discriminator"]["mapping"]
    assert set(mapping) == set(events_schema()["discriminator"]["mapping"])
    assert schemas["StepFinished"]["properties"]["type"] == {"enum": ["step.finished"]}


def body_for(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """A body with every required field of the right type."""
    right = {"string": "x", "integer": 1, "boolean": True}
    out = {}
    for name in schema.get("required", []):
        kinds = [schema["properties"][name].get("type")]
        out[name] = right[kinds[0]]
    return out


WRONG = {"string": 1, "integer": "1", "boolean": "yes"}


def scalar_type(prop: dict[str, Any]) -> str | None:
    """string, integer or boolean, alone or or-null."""
    options = prop.get("anyOf", [prop])
    kinds = {option.get("type") for option in options} - {"null"}
    kind = kinds.pop() if len(kinds) == 1 else None
    return kind if kind in WRONG else None


@pytest.mark.django_db
def test_what_the_description_says_of_a_request_body_is_what_the_api_enforces(
    document: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    """Each typed field of each documented JSON body, sent with the wrong type, is refused 400
    naming that field: the description and the validation are one."""
    settings.VAR_DIR = tmp_path / "var"
    settings.STUDIO_DATA_DIR = tmp_path / "store"
    user = User.objects.create_user(username="schema", password="x")
    project = project_create(owner=user, name="p", dockerfile="FROM busybox\n")
    classroom = Classroom.objects.create(teacher=user, name="c", join_code="ABCD2345")
    exercise = Exercise.objects.create(classroom=classroom, title="e")
    client = Client()
    client.force_login(user)
    schemas = document["components"]["schemas"]
    checked = 0
    for method, route in sorted(JSON_BODIES):
        operation = document["paths"][route][method]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = schemas[ref.removeprefix("#/components/schemas/")]
        where = route.format(
            project_id=project.id, classroom_id=classroom.id, exercise_id=exercise.id, path="a.txt",
            build_id=1,  # a body of the wrong type is refused before any build is looked up
        )
        for name, prop in schema["properties"].items():
            kind = scalar_type(prop)
            if kind is None:
                continue
            body = {**body_for(schema, schemas), name: WRONG[kind]}
            answer = client.generic(method.upper(), where, json.dumps(body), content_type="application/json")
            assert answer.status_code == 400, (method, route, name, answer.content)
            assert answer.json()["field"] == name, (method, route, answer.json())
            checked += 1
    assert checked >= 20


def test_the_checked_in_description_for_the_page_is_current(document: dict[str, Any]) -> None:
    """frontend/openapi.json is what `manage.py export_openapi` writes; the page's types are
    generated from it (frontend/src/api-types.test.ts keeps those current in turn)."""
    assert json.loads(openapi_text()) == document
    assert CHECKED_IN.read_text(encoding="utf-8") == openapi_text(), (
        "frontend/openapi.json is stale: run `manage.py export_openapi`, then `npm run api-types`"
    )


def test_export_openapi_writes_the_description(tmp_path: Path) -> None:
    written = tmp_path / "openapi.json"
    call_command("export_openapi", output=written)
    assert written.read_text(encoding="utf-8") == openapi_text()
