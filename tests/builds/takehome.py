"""What the take-home tests share: a studio server whose operator named a push registry (a real
docker-registry on loopback), and building a project through the API."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from studio.runner import free_port, spawn, stop, uvicorn_argv, wait_for_port
from tests.conftest import PROJECT_DIR, Browser, StudioServer
from tests.engine.registry_server import RegistryServer, running_registry

PREFIX = "studio/class-a"
MESSAGE = "taken-home"
DOCKERFILE = f'FROM studio/busybox:1.35\nRUN echo {MESSAGE} > /msg\nCMD ["cat", "/msg"]\n'


@dataclass
class PushStudio:
    server: StudioServer
    registry: RegistryServer


@contextlib.contextmanager
def studio_pushing_to(
    registry_host: str, studio_env: dict[str, str], log_dir: Path
) -> Iterator[StudioServer]:
    """The studio served with STUDIO_PUSH_REGISTRY naming `registry_host` (same database, Redis
    and store as the tests' studio, so the tests' worker runs its pushes)."""
    port = free_port()
    env = {**studio_env, "STUDIO_PUSH_REGISTRY": f"{registry_host}/{PREFIX}"}
    service = spawn("uvicorn", uvicorn_argv("127.0.0.1", port), env=env, log=log_dir / "uvicorn.log",
                    cwd=PROJECT_DIR)
    try:
        wait_for_port("127.0.0.1", port, service)
        yield StudioServer(f"http://127.0.0.1:{port}", service)
    finally:
        stop([service])


@pytest.fixture(scope="module")
def push_studio(studio_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushStudio]:
    """The studio pushing to a registry of its own."""
    with running_registry(tmp_path_factory.mktemp("push-registry")) as registry, \
            studio_pushing_to(registry.host, studio_env, tmp_path_factory.mktemp("push-uvicorn")) as server:
        yield PushStudio(server, registry)


def ok(reply: Any, status: int = 200) -> Any:
    assert reply.status == status, reply.text
    return reply.json()


def project_with_build(browser: Browser, name: str, dockerfile: str = DOCKERFILE) -> tuple[int, int]:
    """A project named `name`, built once, successfully: (project id, build id)."""
    made = browser.api("POST", "/api/projects/", {"name": name, "dockerfile": dockerfile})
    project_id = int(ok(made, 201)["id"])
    build_id = int(ok(browser.api("POST", f"/api/projects/{project_id}/builds/", {}), 202)["id"])
    deadline = time.monotonic() + 120
    while (status := ok(browser.get(f"/api/builds/{build_id}/"))["status"]) in ("queued", "running"):
        assert time.monotonic() < deadline, f"build {build_id} did not finish"
        time.sleep(0.2)
    assert status == "succeeded"
    return project_id, build_id


def wait_for_push(browser: Browser, build_id: int, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        latest = ok(browser.get(f"/api/builds/{build_id}/home/"))["push"]["latest"]
        if latest and latest["status"] not in ("queued", "running"):
            return dict(latest)
        assert time.monotonic() < deadline, f"the push did not end: {latest}"
        time.sleep(0.2)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
