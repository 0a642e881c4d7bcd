"""/healthz: whether each part the studio needs answers, for people and for load balancers.

200 when every check passes, 503 otherwise. Anyone gets the status; what each check found (where
Redis is, the workers' host names, the sandbox's version, the database) says much about the machine,
so only staff and requests from the machine itself get `failing` and `checks`. Under `make run`
the supervisor's view of its services (restarts, how each last ended) is one more check."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .celery import app as celery_app

TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


def check_database() -> Check:
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return Check(False, f"{connection.vendor}: {exc}")
    if pending:
        return Check(False, f"{connection.vendor}: {len(pending)} migrations not applied (manage.py migrate)")
    return Check(True, f"{connection.vendor}: up, migrated")


def check_redis() -> Check:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        return Check(False, f"{_without_password(settings.REDIS_URL)}: {exc}")
    finally:
        client.close()
    return Check(True, f"{_without_password(settings.REDIS_URL)}: answers PING")


def ask_workers() -> list[dict[str, Any]]:
    """Each answering worker's sandbox report, as {worker name: {ok, detail}}."""
    # limit=1: one answer is enough to know builds will be picked up, and it returns at once
    # instead of waiting out the whole timeout for workers that may not exist.
    answers = celery_app.control.broadcast("sandbox_status", reply=True, timeout=TIMEOUT_S, limit=1)
    return answers or []  # None only without reply=True


def check_workers_and_sandbox() -> tuple[Check, Check]:
    """The workers answer for the sandbox: they run it, the web server need not be able to."""
    try:
        replies = ask_workers()
    except Exception as exc:
        failed = Check(False, f"the workers could not be asked: {exc}")
        return failed, Check(False, "not checked: the workers could not be asked")
    if not replies:
        return (
            Check(False, f"no Celery worker answered within {TIMEOUT_S:g}s"),
            Check(False, "not checked: no worker answered"),
        )
    name, report = next(iter(replies[0].items()))
    workers = Check(True, "answered: " + ", ".join(n for reply in replies for n in reply))
    if not isinstance(report, dict) or "ok" not in report:
        # A worker running older code answers {"error": "No such command"}.
        return workers, Check(False, f"{name} cannot report on its sandbox: {report}")
    return workers, Check(bool(report["ok"]), f"{name}: {report['detail']}")


def check_services() -> Check | None:
    """The `make run` supervisor's services, from the view it keeps in STUDIO_RUNNER_STATUS; None
    when the studio runs without it (compose, or each process started by hand)."""
    path = os.environ.get("STUDIO_RUNNER_STATUS", "").strip()
    if not path:
        return None
    try:
        services = json.loads(Path(path).read_text())["services"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Check(False, f"the supervisor's status cannot be read: {exc}")
    words = []
    for name, service in services.items():
        word = f"{name} {service['state']}"
        if service["restarts"] or service["state"] != "running":
            times = {0: "never", 1: "once"}.get(service["restarts"], f"{service['restarts']} times")
            word += f" (restarted {times}; last it {service['last_exit']}"
            word += f" at {service['last_exit_at']})"
        words.append(word)
    return Check(all(s["state"] == "running" for s in services.values()), "; ".join(words))


def may_see_details(request: HttpRequest) -> bool:
    """Staff, or a request from this machine (uvicorn puts a proxy's X-Forwarded-For client here
    only when the proxy is on loopback, so a proxied stranger does not count as local)."""
    if getattr(request.user, "is_staff", False):
        return True
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, Check] = {"database": check_database(), "redis": check_redis()}
    # The workers are reached through Redis; asking them while it is down would only wait out a timeout.
    if checks["redis"].ok:
        checks["workers"], checks["sandbox"] = check_workers_and_sandbox()
    else:
        checks["workers"] = Check(False, "not checked: Redis does not answer")
        checks["sandbox"] = Check(False, "not checked: the workers, which run it, cannot be reached")
    services = check_services()
    if services is not None:
        checks["services"] = services
    failing = [name for name, check in checks.items() if not check.ok]
    body: dict[str, Any] = {"status": "failing" if failing else "ok"}
    if may_see_details(request):
        body["failing"] = failing
        body["checks"] = {name: asdict(check) for name, check in checks.items()}
    return JsonResponse(body, status=503 if failing else 200)
