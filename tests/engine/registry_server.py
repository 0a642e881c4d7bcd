"""Real servers for the registry tests: Debian's `docker-registry` (the Distribution project's
registry) on a free loopback port, plain or with TLS and an htpasswd login, and a private
Docker daemon (`bench/docker_daemon.sh`: no bridge, its own data root and socket)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

PROJECT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "alice", "s3cret-pass"


@dataclass
class RegistryServer:
    host: str  # "127.0.0.1:<port>"
    storage: Path
    log: Path
    ca: Path | None = None  # the certificate it serves, when it speaks TLS

    def blob_file(self, digest: str) -> Path:
        hex_ = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"

    def blob_downloads(self) -> int:
        """GETs of blobs the registry answered so far (from its access log)."""
        return sum(1 for line in self.log.read_text().splitlines()
                   if '"GET /v2/' in line and "/blobs/sha256:" in line)

    def blob_uploads(self) -> int:
        return sum(1 for line in self.log.read_text().splitlines()
                   if '"PUT /v2/' in line and "/blobs/uploads/" in line)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(root: Path, port: int, *, tls: tuple[Path, Path] | None, htpasswd: Path | None) -> Path:
    lines = [
        "version: 0.1",
        "log: {level: info, accesslog: {disabled: false}}",
        f"storage: {{filesystem: {{rootdirectory: {root / 'storage'}}}, delete: {{enabled: true}}}}",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        "  secret: studio-tests",
    ]
    if tls:
        lines.append(f"  tls: {{certificate: {tls[0]}, key: {tls[1]}}}")
    if htpasswd:
        lines.append(f"auth: {{htpasswd: {{realm: studio-tests, path: {htpasswd}}}}}")
    path = root / "config.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _self_signed(root: Path) -> tuple[Path, Path]:
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def _htpasswd(root: Path) -> Path:
    if shutil.which("htpasswd") is None:
        pytest.fail("htpasswd is not installed (make test installs apache2-utils)")
    out = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True)
    path = root / "htpasswd"
    path.write_text(out.stdout)
    return path


@contextlib.contextmanager
def running_registry(root: Path, *, secure: bool = False) -> Iterator[RegistryServer]:
    """A registry whose storage and log are under `root`; `secure`: TLS with a self-signed
    certificate, and the htpasswd login USER/PASSWORD."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not installed (make test installs Debian's docker-registry)")
    root.mkdir(parents=True, exist_ok=True)
    tls = _self_signed(root) if secure else None
    config = _config(root, port := _free_port(), tls=tls, htpasswd=_htpasswd(root) if secure else None)
    log = root / "registry.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    server = RegistryServer(host=f"127.0.0.1:{port}", storage=root / "storage", log=log,
                            ca=tls[0] if tls else None)
    try:
        _wait_for(server, process)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for(server: RegistryServer, process: subprocess.Popen[bytes]) -> None:
    scheme = "https" if server.ca else "http"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"docker-registry exited at start: {server.log.read_text()[-2000:]}")
        try:
            requests.get(f"{scheme}://{server.host}/v2/", timeout=1, verify=str(server.ca or True))
            return
        except requests.exceptions.ConnectionError:
            time.sleep(0.05)
    pytest.fail(f"docker-registry did not answer within 15 s: {server.log.read_text()[-2000:]}")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServer]:
    with running_registry(tmp_path / "registry") as server:
        yield server


@pytest.fixture
def secure_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    with running_registry(tmp_path / "secure-registry", secure=True) as server:
        yield server


@dataclass
class DockerDaemon:
    env: dict[str, str]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["/usr/bin/docker", *args], env=self.env, capture_output=True, text=True,
                              check=check, timeout=120)


@pytest.fixture(scope="session")
def docker() -> Iterator[DockerDaemon]:
    """A private Docker daemon for the whole run, or a skip saying why none can start."""
    if os.geteuid() != 0:
        pytest.skip("a Docker daemon needs root, and these tests do not run as root")
    if shutil.which("dockerd") is None or not Path("/usr/bin/docker").exists():
        pytest.skip("Debian's docker.io is not installed (make test installs it)")
    script = PROJECT / "bench" / "docker_daemon.sh"
    state = Path(f"/tmp/studio-dockerd-{os.getpid()}")
    started = subprocess.run(["bash", str(script), "start", str(state)], capture_output=True, text=True)
    if started.returncode != 0:
        shutil.rmtree(state, ignore_errors=True)
        pytest.skip(f"no Docker daemon can start on this machine: {started.stderr.strip()[-500:]}")
    host = started.stdout.strip().splitlines()[-1].split("=", 1)[1]
    try:
        yield DockerDaemon(env={**os.environ, "DOCKER_HOST": host})
    finally:
        subprocess.run(["bash", str(script), "stop", str(state)], capture_output=True)
        shutil.rmtree(state, ignore_errors=True)
