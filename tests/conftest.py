"""The studio's real services for the tests, each started once per session and only when a test
asks for it: a Redis server, a migrated SQLite database every process shares, a Celery worker, the
ASGI app served by uvicorn, and a busybox base image in the store the worker builds with. A test may
restart Redis or kill the worker; the worker is back for the next test that asks for it. Plus
`Browser`, which talks to the served app as a person's browser would (cookies, CSRF, websockets)."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
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

# The command line's warm engine (builds/engine/warm/) only where a test asks for it: the suite makes
# hundreds of stores, and each would keep an engine process until it is idle.
os.environ.setdefault("STUDIO_ENGINE_IDLE_S", "0")

PROJECT_DIR = Path(__file__).resolve().parent.parent
PASSWORD = "layer-cake-1984"  # passes Django's password validators
BASE_IMAGE = "studio/busybox:1.35"
UPLOAD_MAX_BYTES = 1 << 20  # small, so that a test can send a bigger upload quickly


@dataclass
class RedisServer:
    url: str
    port: int
    directory: Path
    service: Service

    def restart(self, down_s: float = 0) -> None:
        """Stop Redis and start it again on the same port, empty, as after a crash; `down_s` is how
        long it stays away in between."""
        stop([self.service], grace_s=0)
        time.sleep(down_s)
        self.service = start_redis(self.port, self.directory, persist=False)


class Worker:
    """The tests' Celery worker: prefork with two processes, as `make run` has it, so builds of
    two projects run side by side. `kill` is a machine losing power under it."""

    CONCURRENCY = 2

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}"  # its Celery node name is NAME@host
        self.env = env
        self.log_dir = log_dir
        self.service: Service | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.service is not None and self.service.process.poll() is None

    def start(self) -> None:
        self.starts += 1
        log = self.log_dir / f"worker-{self.starts}.log"
        argv = celery_worker_argv(concurrency=self.CONCURRENCY, name=f"{self.name}@%h")
        self.service = service = spawn("celery worker", argv, env=self.env, log=log, cwd=PROJECT_DIR)
        deadline = time.monotonic() + 60
        while " ready." not in (log.read_text(errors="replace") if log.exists() else ""):
            if service.process.poll() is not None or time.monotonic() > deadline:
                raise StartError(f"the Celery worker did not start:\n{service.log_tail(30)}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the worker and every process it started, with no chance to tidy up."""
        assert self.service is not None
        os.killpg(self.service.process.pid, signal.SIGKILL)
        self.service.process.wait()

    def stop(self) -> None:
        if self.service is not None:
            stop([self.service])


@dataclass
class StudioServer:
    url: str
    service: Service


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    port = free_port()
    directory = tmp_path_factory.mktemp("redis")
    server = RedisServer(
        f"redis://127.0.0.1:{port}/0", port, directory, start_redis(port, directory, persist=False)
    )
    yield server
    stop([server.service])


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
        # A dead worker's build is noticed within seconds, not the half minute a studio allows.
        "STUDIO_BUILD_HEARTBEAT_S": "1",
        "STUDIO_BUILD_STALE_AFTER_S": "6",
        # A container that runs past its time limit is stopped within a test's patience.
        "STUDIO_CONTAINER_TIMEOUT_S": "5",
        "STUDIO_UPLOAD_MAX_BYTES": str(UPLOAD_MAX_BYTES),
        # The tests' registries run on loopback, which web builds may reach only when listed;
        # spelled `localhost`, they stay refused (test_pull_live).
        "STUDIO_REGISTRY_ALLOW_PRIVATE": "127.0.0.1",
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
def base_image(studio_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """busybox in the store the worker builds with, under the names the tests' Dockerfiles use."""
    from builds.engine import image as images
    from builds.engine.seed import busybox_rootfs
    from builds.engine.store import Store

    if shutil.which("busybox") is None:
        pytest.fail("busybox-static is not installed (make test installs it)")
    tar = busybox_rootfs(tmp_path_factory.mktemp("base") / "busybox.tar")
    store = Store(studio_env["STUDIO_DATA_DIR"])
    for name in (BASE_IMAGE, "busybox:latest"):
        images.import_any(store, tar, name)
    return BASE_IMAGE


@pytest.fixture(scope="session")
def worker_process(studio_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    worker = Worker(studio_env, tmp_path_factory.mktemp("worker"))
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def celery_worker(worker_process: Worker) -> Worker:
    """The worker, started again first when an earlier test killed it."""
    if not worker_process.running:
        worker_process.start()
    return worker_process


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

    def api(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        body: bytes | None = None,
        content_type: str = "",
    ) -> Response:
        """A call to the JSON API as the studio's pages make it: JSON in (or `body` as it is), the
        CSRF token in its header."""
        headers = {"Origin": self.base, "Referer": self.base + path}
        token = self.cookie("csrftoken")
        if token is not None:
            headers["X-CSRFToken"] = token
        if payload is not None:
            body, content_type = json.dumps(payload).encode(), "application/json"
        if content_type:
            headers["Content-Type"] = content_type
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
    # Django 5 gives the list an id after its class: <ul class="errorlist" id="id_password2_error">
    return " / ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html, re.S)) or html[:500]


@pytest.fixture
def browser(studio_server: StudioServer) -> Browser:
    return Browser(studio_server.url)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # The real hasher is slow on purpose; tests in this process only need a password to match.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def no_redis_in_this_process(settings: Any) -> None:
    """Tests in this process never reach a Redis: not a studio running on this machine (a test's
    `build.1` must not reach someone's page), and not the tests' own, which the served studio uses."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # the discard port: refused at once


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright, for one module of page tests (Playwright's
    synchronous API keeps an event loop of its own while it runs, so it is not kept open beside
    the other modules' asyncio tests)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from .pages import CHROMIUM, CHROMIUM_ARGS

    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()
