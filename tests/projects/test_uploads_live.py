"""A huge upload is refused by the served studio with a 413 that names the limit, before the
whole body has to arrive (the tests' studio allows uploads of 1 MB); a small one that declares a
huge header costs the server's process no memory to speak of."""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from tests.archives import header_bomb
from tests.conftest import UPLOAD_MAX_BYTES, Browser, StudioServer


def send(
    browser: Browser, path: str, body: bytes | Iterator[bytes], headers: dict[str, str]
) -> tuple[int, dict]:
    url = urlsplit(browser.base)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    cookies = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    headers = {
        **headers,
        "Cookie": cookies,
        "X-CSRFToken": browser.cookie("csrftoken") or "",
        "Origin": browser.base,
        "Content-Type": "application/x-tar",
    }
    try:
        # The studio answers before the body is all there and closes the connection, so sending the
        # rest may fail, as it may for a browser; the answer is read all the same.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            chunked = not isinstance(body, bytes)
            connection.request("POST", path, body=body, headers=headers, encode_chunked=chunked)
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


def test_an_upload_larger_than_allowed_gets_a_413_naming_the_limit(browser: Browser) -> None:
    browser.sign_up("alice-upload")
    project_id = browser.api("POST", "/api/projects/", {"name": "big"}).json()["id"]
    path = f"/api/projects/{project_id}/context/"

    status, body = send(browser, path, b"\0" * (UPLOAD_MAX_BYTES + 1), {})
    assert status == 413
    assert body["limit"] == "upload_bytes" and body["max"] == UPLOAD_MAX_BYTES
    assert "1.0 MB an upload may be (STUDIO_UPLOAD_MAX_BYTES)" in body["error"]

    # Sent in chunks with no length given, it is cut off as it passes the limit.
    chunks = (b"\0" * 65536 for _ in range(UPLOAD_MAX_BYTES // 65536 + 2))
    status, body = send(browser, path, chunks, {})
    assert status == 413 and body["limit"] == "upload_bytes"
    files = browser.get(f"/api/projects/{project_id}/files/").json()["files"]
    assert [f["path"] for f in files] == ["Dockerfile"]


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_a_long_name_bomb_costs_the_server_no_memory(browser: Browser, studio_server: StudioServer) -> None:
    """A 250 KB gzip whose GNU long-name record declares 256 MB took the web process +754 MB."""
    browser.sign_up("mallory-bomb")
    project_id = browser.api("POST", "/api/projects/", {"name": "bomb"}).json()["id"]
    bomb = header_bomb(b"L", 256 << 20)
    assert len(bomb) < 300_000

    pid = studio_server.service.process.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
    before = memory_kb(pid, "VmRSS")
    status, body = send(browser, f"/api/projects/{project_id}/context/", bomb, {})
    grew_mb = (memory_kb(pid, "VmHWM") - before) / 1024

    assert status == 413 and body["limit"] == "tar_header_bytes", body
    assert grew_mb < 16, f"the server's peak memory grew {grew_mb:.0f} MB for a {len(bomb) >> 10} KB upload"
