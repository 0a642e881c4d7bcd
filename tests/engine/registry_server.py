"""Real servers for the registry tests: Debian's `docker-registry` (the Distribution project's
registry) on a free loopback port, plain or with TLS and an htpasswd login, and a private
Docker daemon (`bench/docker_daemon.sh`: no bridge, its own data root and socket)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

PROJECT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "alice", "s3cret-pass"
SERVICE, ISSUER = "studio-test-registry", "studio-test-issuer"


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


def _config(root: Path, port: int, *, tls: tuple[Path, Path] | None, htpasswd: Path | None,
            token_realm: str | None = None) -> Path:
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
    if token_realm and tls:
        lines.append(f"auth: {{token: {{realm: '{token_realm}', service: {SERVICE}, issuer: {ISSUER}, "
                     f"rootcertbundle: {tls[0]}}}}}")
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
def running_registry(root: Path, *, secure: bool = False, token_realm: str | None = None,
                     tls: tuple[Path, Path] | None = None) -> Iterator[RegistryServer]:
    """A registry whose storage and log are under `root`. `secure`: TLS with a self-signed
    certificate, and the htpasswd login USER/PASSWORD; `token_realm` (with `tls`): bearer
    tokens from that token service, as Docker Hub hands them out."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not installed (make test installs Debian's docker-registry)")
    root.mkdir(parents=True, exist_ok=True)
    if secure:
        tls = _self_signed(root)
    htpasswd = _htpasswd(root) if secure else None
    config = _config(root, port := _free_port(), tls=tls, htpasswd=htpasswd, token_realm=token_realm)
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


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenService:
    """A token service like Docker Hub's: anyone gets a pull token, only USER/PASSWORD a push
    token. Tokens are JWTs signed RS256 (with openssl) and carry the certificate (x5c) that
    the registry trusts."""

    cert: Path
    key: Path
    url: str = ""
    asked: list[dict[str, str]] = field(default_factory=list)  # {user, scope} per request

    def token(self, user: str, scopes: list[str]) -> str:
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = actions.split(",")
            allowed = wanted if user == USER else [a for a in wanted if a == "pull"]
            access.append({"type": kind, "name": name, "actions": allowed})
        claims = {"iss": ISSUER, "sub": user, "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": str(now) + user, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                                   input=signing_input.encode(), check=True, capture_output=True).stdout
        return f"{signing_input}.{_b64url(signature)}"


@contextlib.contextmanager
def running_token_service(cert: Path, key: Path) -> Iterator[TokenService]:
    service = TokenService(cert=cert, key=key)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            user = ""
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                if (name, password) != (USER, PASSWORD):
                    self.send_response(401)
                    self.end_headers()
                    return
                user = name
            scopes = [s for value in query.get("scope", []) for s in value.split()]
            service.asked.append({"user": user, "scope": " ".join(scopes)})
            body = json.dumps({"token": service.token(user, scopes)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    service.url = f"https://127.0.0.1:{server.server_address[1]}/token"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[tuple[RegistryServer, TokenService]]:
    root = tmp_path / "token-registry"
    root.mkdir()
    cert, key = _self_signed(root)
    with running_token_service(cert, key) as tokens, \
            running_registry(root, token_realm=tokens.url, tls=(cert, key)) as server:
        yield server, tokens


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
