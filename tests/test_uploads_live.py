"""A huge upload is refused by the served studio with a 413 that names the limit, before the
whole body has to arrive (the tests' studio allows uploads of 1 MB)."""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

from .conftest import UPLOAD_MAX_BYTES, Browser


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
