from __future__ import annotations

from django.apps import AppConfig


class TakeHomeConfig(AppConfig):
    name = "builds.takehome"
    label = "takehome"
    verbose_name = "Images taken home"
