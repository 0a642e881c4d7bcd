"""The classrooms' websocket, gathered by studio/routing.py."""

from __future__ import annotations

from typing import Any

from django.urls import path

from .consumers import ClassroomConsumer

# Channels routes consumers with django.urls.path, which django-stubs types for HTTP views only.
websocket_urlpatterns: list[Any] = [
    path("ws/classrooms/<int:classroom_id>/", ClassroomConsumer.as_asgi()),  # type: ignore[arg-type]
]
