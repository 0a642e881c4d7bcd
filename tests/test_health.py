"""/healthz: the state of the database, Redis, the workers and the build sandbox."""

from __future__ import annotations

import pytest
from django.test import Client
from pytest_django import Settings

from studio.runner import free_port

from .conftest import Browser, RedisServer, Worker


def test_healthz_sees_the_database_redis_and_a_worker_of_the_running_studio(
    browser: Browser, celery_worker: Worker
) -> None:
    reply = browser.get("/healthz")
    body = reply.json()
    checks = body["checks"]
    assert checks["database"]["ok"] and checks["redis"]["ok"] and checks["workers"]["ok"], checks
    assert celery_worker.name in checks["workers"]["detail"]
    # The sandbox is the worker's, reported by the worker.
    assert checks["sandbox"]["detail"].startswith(celery_worker.name), checks["sandbox"]
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


def test_a_worker_reports_its_sandbox_and_says_why_when_it_cannot_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from builds.engine.sandbox import runner
    from studio.celery import sandbox_status

    monkeypatch.setattr(runner, "available", lambda: (False, "user namespaces are disabled"))
    assert sandbox_status(None) == {"ok": False, "detail": "user namespaces are disabled"}

    def broken() -> tuple[bool, str]:
        raise OSError("no /proc")

    monkeypatch.setattr(runner, "available", broken)
    report = sandbox_status(None)
    assert report["ok"] is False and "no /proc" in report["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("replies", "failing", "detail"),
    [
        (
            [{"w1@host": {"ok": False, "detail": "user namespaces are disabled"}}],
            ["sandbox"],
            "w1@host: user namespaces are disabled",
        ),
        (
            [{"w1@host": {"error": "No such command"}}],
            ["sandbox"],
            "w1@host cannot report on its sandbox: {'error': 'No such command'}",
        ),
        ([], ["workers", "sandbox"], "not checked: no worker answered"),
    ],
)
def test_healthz_is_503_and_names_the_sandbox_when_the_workers_cannot_run_builds(
    client: Client,
    settings: Settings,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    replies: list[dict[str, object]],
    failing: list[str],
    detail: str,
) -> None:
    from studio import health

    settings.REDIS_URL = redis_server.url
    # The boundary here is the workers' answer; a real worker's is checked above.
    monkeypatch.setattr(health, "ask_workers", lambda: replies)
    reply = client.get("/healthz")
    assert reply.status_code == 503
    assert reply.json()["failing"] == failing
    assert reply.json()["checks"]["sandbox"] == {"ok": False, "detail": detail}


@pytest.mark.django_db
def test_a_stranger_hears_only_the_status_and_staff_or_the_machine_itself_hear_the_details(
    client: Client, settings: Settings, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio import health
    from studio.models import User

    settings.REDIS_URL = redis_server.url
    # Who hears what is the question here, not the workers' answer: Celery's broker is not this
    # test's Redis, and asking it would wait out kombu's retries (6 s a request).
    monkeypatch.setattr(health, "ask_workers", lambda: [])
    stranger = client.get("/healthz", REMOTE_ADDR="203.0.113.9")
    assert set(stranger.json()) == {"status"}
    assert stranger.json()["status"] in ("ok", "failing")
    assert redis_server.url.encode() not in stranger.content
    assert b"sqlite" not in stranger.content

    # Someone signed in but not staff is a stranger too.
    client.force_login(User.objects.create_user("carol"))
    assert set(client.get("/healthz", REMOTE_ADDR="203.0.113.9").json()) == {"status"}

    client.force_login(User.objects.create_user("olga", is_staff=True))
    staff = client.get("/healthz", REMOTE_ADDR="203.0.113.9").json()
    assert redis_server.url in staff["checks"]["redis"]["detail"]
    client.logout()
    local = client.get("/healthz", REMOTE_ADDR="127.0.0.1").json()
    assert set(local) == {"status", "failing", "checks"}
    assert set(client.get("/healthz", REMOTE_ADDR="::1").json()) == {"status", "failing", "checks"}
