"""The Celery app: configured from the Django settings (the CELERY_* names), tasks found in the
installed apps' `tasks` modules and in CELERY_IMPORTS."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.worker.control import inspect_command

from . import brokerfix

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
brokerfix.install()

app = Celery("studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@inspect_command()
def sandbox_status(state: Any) -> dict[str, Any]:
    """Whether this worker can run build steps: asked by /healthz, since only the workers run the
    sandbox (a web server in an unprivileged container could not, and need not)."""
    from builds.engine.sandbox.runner import available

    try:
        ok, detail = available()
    except Exception as exc:
        ok, detail = False, f"checking the build sandbox failed: {exc!r}"
    return {"ok": bool(ok), "detail": detail}
