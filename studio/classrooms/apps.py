from __future__ import annotations

from django.apps import AppConfig


class ClassroomsConfig(AppConfig):
    name = "studio.classrooms"
    label = "classrooms"
    verbose_name = "Classrooms"

    def ready(self) -> None:
        # The classrooms listen to builds finishing (builds.signals).
        from . import receivers  # noqa: F401
