"""Every websocket route of the studio, gathered for asgi.py. The build domain adds its own in
`builds/routing.py` (a `websocket_urlpatterns` list), picked up here once it exists."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.urls import path

from .ping import PingConsumer


def optional_patterns(module: str, attribute: str) -> list[Any]:
    """`module.attribute`, or [] while that module does not exist. An error inside an existing
    module is raised, never mistaken for its absence."""
    try:
        found = import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return []
        raise
    return list(getattr(found, attribute))


# Channels routes consumers with django.urls.path, which django-stubs types for HTTP views only.
websocket_urlpatterns: list[Any] = [
    path("ws/ping/", PingConsumer.as_asgi()),  # type: ignore[arg-type]
    *optional_patterns("builds.routing", "websocket_urlpatterns"),
    *optional_patterns("studio.classrooms.routing", "websocket_urlpatterns"),
]
