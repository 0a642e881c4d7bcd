from __future__ import annotations

from django.apps import AppConfig


class BuildsConfig(AppConfig):
    name = "builds"
    verbose_name = "Builds"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from studio.projects.models import Project

        from .planning import forget_project

        post_delete.connect(forget_project, sender=Project, dispatch_uid="builds.forget_project")
