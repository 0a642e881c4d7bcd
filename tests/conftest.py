"""The studio's real services for the tests, each started once per session and only when a test
asks for it: a Redis server, a migrated SQLite database every process shares, a Celery worker and
the ASGI app served by uvicorn. Plus `Browser`, which talks to the served app as a person's
browser would (cookies, CSRF, websockets)."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from studio.runner import (
    Service,
    StartError,
    celery_worker_argv,
    free_port,
    spawn,
    start_redis,
    stop,
    uvicorn_argv,
    wait_for_port,
)

PROJECT_DIR = Path(__file__).resolve().parent.parent
PASSWORD = "layer-cake-1984"  # passes Django's password validators


@dataclass
class RedisServer:
    url: str
    port: int


@dataclass
class Worker:
    service: Service
    name: str  # its Celery node name, e.g. test-1a2b@host


@dataclass
class StudioServer:
    url: str
    service: Service


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    port = free_port()
    service = start_redis(port, tmp_path_factory.mktemp("redis"), persist=False)
    yield RedisServer(f"redis://127.0.0.1:{port}/0", port)
    stop([service])


@pytest.fixture(scope="session")
def studio_env(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of the studio's processes in the tests, with its database migrated."""
    state = tmp_path_factory.mktemp("studio")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "STUDIO_VAR_DIR": str(state),
        "DATABASE_URL": f"sqlite:///{state / 'studio.sqlite3'}",
        "REDIS_URL": redis_server.url,
        "STUDIO_DATA_DIR": str(state / "store"),
        "SECRET_KEY": "tests-only-" + uuid.uuid4().hex,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=PROJECT_DIR,
        env=env,
        check=True,
        capture_output=True,
    )
    return env


@pytest.fixture(scope="session")
def celery_worker(studio_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    name = f"test-{uuid.uuid4().hex[:8]}@%h"
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    service = spawn(
        "celery worker",
        celery_worker_argv(concurrency=1, pool="solo", name=name),
        env=studio_env,
        log=log,
        cwd=PROJECT_DIR,
    )
    try:
        deadline = time.monotonic() + 60
        while " ready." not in (log.read_text(errors="replace") if log.exists() else ""):
            if service.process.poll() is not None or time.monotonic() > deadline:
                raise StartError(f"the Celery worker did not start:\n{service.log_tail(30)}")
            time.sleep(0.1)
        yield Worker(service, name.split("@")[0])
    finally:
        stop([service])


@pytest.fixture(scope="session")
def studio_server(
    studio_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StudioServer]:
    port = free_port()
    log = tmp_path_factory.mktemp("uvicorn") / "uvicorn.log"
    service = spawn("uvicorn", uvicorn_argv("127.0.0.1", port), env=studio_env, log=log, cwd=PROJECT_DIR)
    try:
        wait_for_port("127.0.0.1", port, service)
        yield StudioServer(f"http://127.0.0.1:{port}", service)
    finally:
        stop([service])


@dataclass
class Response:
    status: int
    body: bytes
    url: str

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Browser:
    """A person's browser pointed at the live server: it keeps cookies and sends the CSRF token
    and Origin the way a page of the studio would."""

    base: str
    cookies: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def __post_init__(self) -> None:
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    def request(self, method: str, path: str, data: dict[str, str] | None = None) -> Response:
        headers = {"Origin": self.base, "Referer": self.base + path}
        body = None
        if method == "POST":
            token = self.cookie("csrftoken")
            if token is not None:
                headers["X-CSRFToken"] = token
            body = urllib.parse.urlencode(data or {}).encode()
        request = urllib.request.Request(self.base + path, data=body, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=30) as reply:
                return Response(reply.status, reply.read(), reply.url)
        except urllib.error.HTTPError as error:
            return Response(error.code, error.read(), error.url)

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, data: dict[str, str] | None = None) -> Response:
        return self.request("POST", path, data)

    def sign_up(self, username: str, password: str = PASSWORD) -> Response:
        self.get("/accounts/signup/")  # for the CSRF cookie, as the page would
        form = {"username": username, "password1": password, "password2": password}
        page = self.post("/accounts/signup/", form)
        assert f"Signed in as <strong>{username}</strong>" in page.text, _errors(page.text)
        return page

    def websocket(self, path: str, *, origin: str | None = None) -> ClientConnection:
        ws_url = re.sub(r"^http", "ws", self.base) + path
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.cookies)
        headers = {"Cookie": cookies} if cookies else None
        return connect(
            ws_url, origin=origin or self.base, additional_headers=headers, proxy=None, open_timeout=10
        )


def _errors(html: str) -> str:
    return " / ".join(re.findall(r'<ul class="errorlist[^"]*">(.*?)</ul>', html, re.S)) or html[:500]


@pytest.fixture
def browser(studio_server: StudioServer) -> Browser:
    return Browser(studio_server.url)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # The real hasher is slow on purpose; tests in this process only need a password to match.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
