"""The Celery app: configured from the Django settings (the CELERY_* names), tasks found in the
installed apps' `tasks` modules and in CELERY_IMPORTS."""

from __future__ import annotations

import os

from celery import Celery

from . import brokerfix

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
brokerfix.install()

app = Celery("studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
