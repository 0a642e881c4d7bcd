from __future__ import annotations

from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "studio"
    verbose_name = "Dockerfile Studio"

    def ready(self) -> None:
        # The classrooms listen to builds finishing (builds.signals).
        from .classrooms import receivers  # noqa: F401
