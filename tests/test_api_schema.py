"""The API's OpenAPI description is served, and keeps up with the routes it describes."""

from __future__ import annotations

import json
import re
from typing import Any

from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

UNDOCUMENTED = {"/api/ping/", "/api/schema/", "/api/"}  # the wiring check, the description, the root


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


def test_every_api_route_is_described_and_every_reference_resolves() -> None:
    served = Client().get("/api/schema/")
    assert served.status_code == 200
    document = json.loads(served.content)
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == api_routes() - UNDOCUMENTED
    schemas = document["components"]["schemas"]
    assert {ref.removeprefix("#/components/schemas/") for ref in refs(document)} <= set(schemas)
