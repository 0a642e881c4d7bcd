"""/healthz: the state of the database, Redis, the workers and the build sandbox."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from pytest_django import Settings

from studio.runner import free_port

from .conftest import Browser, Worker


def test_healthz_sees_the_database_redis_and_a_worker_of_the_running_studio(
    browser: Browser, celery_worker: Worker
) -> None:
    reply = browser.get("/healthz")
    body = reply.json()
    checks = body["checks"]
    assert checks["database"]["ok"] and checks["redis"]["ok"] and checks["workers"]["ok"], checks
    assert celery_worker.name in checks["workers"]["detail"]
    if checks["sandbox"]["ok"]:
        assert (reply.status, body["status"], body["failing"]) == (200, "ok", [])
    else:
        assert (reply.status, body["status"], body["failing"]) == (503, "failing", ["sandbox"])


@pytest.mark.django_db
def test_healthz_is_503_and_names_redis_when_redis_is_down(client: Client, settings: Settings) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    reply = client.get("/healthz")
    assert reply.status_code == 503
    body = reply.json()
    assert "redis" in body["failing"]
    assert "database" not in body["failing"]
    assert not body["checks"]["redis"]["ok"]
    assert body["checks"]["workers"] == {"ok": False, "detail": "not checked: Redis does not answer"}


def _not_implemented() -> tuple[bool, str]:
    raise NotImplementedError


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("available", "detail"),
    [
        (_not_implemented, "the build sandbox is not implemented yet"),
        (lambda: (False, "user namespaces are disabled"), "user namespaces are disabled"),
    ],
)
def test_healthz_is_503_and_names_the_sandbox_when_builds_cannot_run(
    client: Client, monkeypatch: pytest.MonkeyPatch, available: Callable[[], tuple[bool, str]], detail: str
) -> None:
    from builds.engine import sandbox

    monkeypatch.setattr(sandbox, "available", available)
    reply = client.get("/healthz")
    assert reply.status_code == 503
    assert "sandbox" in reply.json()["failing"]
    assert reply.json()["checks"]["sandbox"] == {"ok": False, "detail": detail}
