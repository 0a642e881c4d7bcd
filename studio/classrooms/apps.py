from __future__ import annotations

from django.apps import AppConfig


class ClassroomsConfig(AppConfig):
    name = "studio.classrooms"
    label = "classrooms"
    verbose_name = "Classrooms"

    def ready(self) -> None:
        # The classrooms listen to builds finishing (builds.signals), and tell projects and builds
        # what they cannot ask: who sees a copy, when it is frozen, which cache a class shares.
        from . import grants, receivers  # noqa: F401

        grants.register()
