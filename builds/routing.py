"""The build domain's websockets, gathered by studio/routing.py."""

from __future__ import annotations

from typing import Any

from django.urls import path

from .consumers import BuildConsumer, ProjectConsumer
from .containers.consumers import ContainerConsumer

# Channels routes consumers with django.urls.path, which django-stubs types for HTTP views only.
websocket_urlpatterns: list[Any] = [
    path("ws/builds/<int:build_id>/", BuildConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/projects/<int:project_id>/", ProjectConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/containers/<int:container_id>/", ContainerConsumer.as_asgi()),  # type: ignore[arg-type]
]
