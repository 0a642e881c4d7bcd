"""The build domain's websockets, gathered by studio/routing.py."""

from __future__ import annotations

from typing import Any

from django.urls import path

from .consumers import BuildConsumer, ProjectConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/builds/<int:build_id>/", BuildConsumer.as_asgi()),
    path("ws/projects/<int:project_id>/", ProjectConsumer.as_asgi()),
]
