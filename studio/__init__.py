"""Dockerfile Studio: the Django project and the studio's own domain (accounts, pages)."""

from __future__ import annotations

# Loaded with Django so that `shared_task`s bind to the studio's Celery app.
from .celery import app as celery_app

__all__ = ["celery_app"]
