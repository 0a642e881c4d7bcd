"""Taking a build's image home through the served studio: the download streams an archive a real
Docker loads and runs, named safely whatever the project is called, cached by ETag, shown only
to those who may see the build; a push goes only under the operator's registry and prefix, and
names that are not Docker's are refused naming the field."""
# ruff: noqa: F811 (fixtures are imported, then named as arguments)

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.builds.takehome import (  # noqa: F401
    MESSAGE,
    PREFIX,
    PushStudio,
    ok,
    project_with_build,
    push_studio,
    rss_kb,
    studio_pushing_to,
)
from tests.conftest import Browser, StudioServer, Worker
from tests.engine.registry_server import DockerDaemon, docker  # noqa: F401

pytestmark = pytest.mark.usefixtures("celery_worker", "base_image")
STALE_AFTER_S = 6  # the tests' STUDIO_BUILD_STALE_AFTER_S
HOSTILE_NAME = 'Ünïcode "../../etc/passwd"\r\nX-Evil: 1; <script>日本'


def download(browser: Browser, path: str, out: Path, headers: dict[str, str] | None = None,
             ) -> tuple[int, dict[str, str]]:
    """GET `path` into `out` a chunk at a time, with the browser's cookies: (status, headers)."""
    request = urllib.request.Request(browser.base + path, headers=headers or {})
    try:
        with browser._opener.open(request, timeout=120) as reply, open(out, "wb") as f:
            while chunk := reply.read(1 << 20):
                f.write(chunk)
            return reply.status, {k.lower(): v for k, v in reply.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}


def test_the_downloaded_archive_loads_into_docker_and_runs(
    studio_server: StudioServer, docker: DockerDaemon, tmp_path: Path
) -> None:
    alice = Browser(studio_server.url)
    alice.sign_up(f"alice-{uuid.uuid4().hex[:8]}")
    _, build_id = project_with_build(alice, HOSTILE_NAME)
    home = ok(alice.get(f"/api/builds/{build_id}/home/"))["archive"]
    assert home["file"] == "unicode-etc-passwd-x-evil-1-script-build-1.tar"
    assert home["loads_as"] == "studio/unicode-etc-passwd-x-evil-1-script:build-1"

    archive = tmp_path / "image.tar"
    status, headers = download(alice, home["url"], archive)
    assert status == 200
    assert headers["content-type"] == "application/x-tar"
    assert headers["content-disposition"] == f'attachment; filename="{home["file"]}"'
    assert int(headers["content-length"]) == archive.stat().st_size == home["size"]
    assert headers["cache-control"] == "private, no-cache"
    etag = headers["etag"]

    # Asked again with its ETag: 304, nothing sent again.
    again, again_headers = download(alice, home["url"], tmp_path / "again.tar", {"If-None-Match": etag})
    assert again == 304 and again_headers["etag"] == etag

    loaded = docker("load", "-i", str(archive))
    assert f"Loaded image: {home['loads_as']}" in loaded.stdout
    ran = docker("run", "--rm", "--network=none", home["loads_as"])
    assert ran.stdout == f"{MESSAGE}\n"
    docker("rmi", home["loads_as"])

    # This studio names no push registry: no push, and the answer says why.
    refused = alice.api("POST", f"/api/builds/{build_id}/push/", {"repository": "app", "tag": "1"})
    assert refused.status == 409 and "STUDIO_PUSH_REGISTRY is not set" in refused.json()["error"]


def test_a_share_link_downloads_and_a_stranger_finds_nothing(
    push_studio: PushStudio, tmp_path: Path
) -> None:
    base = push_studio.server.url
    alice, bob = Browser(base), Browser(base)
    alice.sign_up(f"alice-{uuid.uuid4().hex[:8]}")
    bob.sign_up(f"bob-{uuid.uuid4().hex[:8]}")
    project_id, build_id = project_with_build(alice, "shared app")

    assert download(bob, f"/builds/{build_id}/image.tar", tmp_path / "bob.tar")[0] == 404
    assert bob.get(f"/api/builds/{build_id}/home/").status == 404
    refused = bob.api("POST", f"/api/builds/{build_id}/push/", {"repository": "stolen", "tag": "1"})
    assert refused.status == 404, refused.text

    token = ok(alice.api("POST", f"/api/projects/{project_id}/share/"), 200)["share_token"]
    home = ok(bob.get(f"/api/builds/{build_id}/home/?token={token}"))
    assert home["push"] == {"allowed": False, "registry": f"{push_studio.registry.host}/{PREFIX}",
                            "off_because": None, "latest": None}
    status, _ = download(bob, home["archive"]["url"], tmp_path / "shared.tar")
    assert status == 200 and (tmp_path / "shared.tar").stat().st_size == home["archive"]["size"]
    # Read-only: the holder of the link may look and download; pushing takes no link.
    assert bob.api("POST", f"/api/builds/{build_id}/push/?token={token}",
                   {"repository": "x", "tag": "1"}).status == 404


@pytest.fixture(scope="module")
def owner_with_build(push_studio: PushStudio, worker_process: Worker, base_image: str) -> tuple[Browser, int]:
    """One person with one built project, for the many refusals below: builds take a while."""
    if not worker_process.running:
        worker_process.start()
    alice = Browser(push_studio.server.url)
    alice.sign_up(f"alice-{uuid.uuid4().hex[:8]}")
    return alice, project_with_build(alice, "names")[1]


@pytest.mark.parametrize(("body", "field"), [
    ({"repository": "../etc", "tag": "1"}, "repository"),
    ({"repository": "Upper", "tag": "1"}, "repository"),
    ({"repository": "evil.example:443/x", "tag": "1"}, "repository"),
    ({"repository": "a//b", "tag": "1"}, "repository"),
    ({"repository": "a/b/c/d", "tag": "1"}, "repository"),
    ({"repository": "x" * 129, "tag": "1"}, "repository"),
    ({"repository": "", "tag": "1"}, "repository"),
    ({"repository": "app\n", "tag": "1"}, "repository"),
    ({"repository": 7, "tag": "1"}, "repository"),
    ({"repository": "app", "tag": "-rf"}, "tag"),
    ({"repository": "app", "tag": "v1@sha256:00"}, "tag"),
    ({"repository": "app", "tag": "t" * 129}, "tag"),
    ({"repository": "app", "tag": "a b"}, "tag"),
    ({"repository": "app", "tag": ""}, "tag"),
])
def test_hostile_repositories_and_tags_are_refused_naming_the_field(
    owner_with_build: tuple[Browser, int], body: dict[str, object], field: str
) -> None:
    alice, build_id = owner_with_build
    refused = alice.api("POST", f"/api/builds/{build_id}/push/", body)
    assert refused.status == 400, refused.text
    assert refused.json()["field"] == field
    assert ok(alice.get(f"/api/builds/{build_id}/home/"))["push"]["latest"] is None  # nothing queued


def test_a_push_goes_only_under_the_operators_prefix(push_studio: PushStudio) -> None:
    alice = Browser(push_studio.server.url)
    alice.sign_up(f"alice-{uuid.uuid4().hex[:8]}")
    _, build_id = project_with_build(alice, "prefixed")
    # A first part that looks like a host is only a path under the prefix, never another registry.
    push = ok(alice.api("POST", f"/api/builds/{build_id}/push/",
                        {"repository": "evil.example/app", "tag": "v1"}), 202)
    assert push["reference"] == f"{push_studio.registry.host}/{PREFIX}/evil.example/app:v1"


def someone_with_an_image(push_studio: PushStudio, name: str, size: int) -> tuple[Browser, str]:
    """A new person whose project `name` built an image holding `size` random bytes: they, and
    the path that downloads it."""
    person = Browser(push_studio.server.url)
    person.sign_up(f"alice-{uuid.uuid4().hex[:8]}")
    dockerfile = f"FROM studio/busybox:1.35\nRUN head -c {size} /dev/urandom > /big\n"
    _, build_id = project_with_build(person, name, dockerfile)
    return person, str(ok(person.get(f"/api/builds/{build_id}/home/"))["archive"]["url"])


def test_the_web_process_streams_a_200_mb_image_in_little_memory(
    push_studio: PushStudio, tmp_path: Path
) -> None:
    alice, url = someone_with_an_image(push_studio, "big", 209715200)
    pid = push_studio.server.service.process.pid
    before = rss_kb(pid)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kb(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        status, headers = download(alice, url, tmp_path / "big.tar")
    finally:
        done.set()
        sampler.join()
    size = (tmp_path / "big.tar").stat().st_size
    assert status == 200 and size == int(headers["content-length"]) > 200 * 1024 * 1024
    grown_mb = (peak - before) / 1024
    print(f"\nweb process RSS: {before / 1024:.0f} MB before, {peak / 1024:.0f} MB at peak "
          f"(+{grown_mb:.1f} MB) for a {size / 1e6:.0f} MB archive")
    assert grown_mb < 48, f"the web process grew {grown_mb:.0f} MB serving a {size >> 20} MB archive"


def test_one_person_streams_two_downloads_at_once_and_a_third_is_told_to_wait(
    push_studio: PushStudio, tmp_path: Path
) -> None:
    # Bigger than what loopback's socket buffers take in, so a download stays open while unread.
    alice, path = someone_with_an_image(push_studio, "three-downloads", 41943040)
    url = alice.base + path
    streaming = [alice._opener.open(urllib.request.Request(url), timeout=60) for _ in range(2)]
    try:
        assert all(reply.status == 200 and reply.read(1 << 20) for reply in streaming)
        with pytest.raises(urllib.error.HTTPError) as third:
            alice._opener.open(urllib.request.Request(url), timeout=60)
        assert third.value.code == 429 and third.value.headers["Retry-After"] == "5"
        assert "downloading 2 images already" in json.loads(third.value.read())["error"]
        # Bob's requests are not counted with hers (and he sees none of her images).
        bob = Browser(push_studio.server.url)
        bob.sign_up(f"bob-{uuid.uuid4().hex[:8]}")
        assert bob.get(url.removeprefix(alice.base)).status == 404

        streaming.pop().close()  # she gives one up half-way: its place is free again
        deadline = time.monotonic() + 15
        while True:
            status, headers = download(alice, url.removeprefix(alice.base), tmp_path / "again.tar")
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert status == 200 and (tmp_path / "again.tar").stat().st_size == int(headers["content-length"])
    finally:
        for reply in streaming:
            reply.close()


@contextlib.contextmanager
def silent_registry() -> Iterator[str]:
    """A "registry" that takes connections and never answers: a push to it runs until its
    client gives up (a minute)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stopping = threading.Event()

    def take() -> None:
        listener.settimeout(0.2)
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    taker = threading.Thread(target=take, daemon=True)
    taker.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stopping.set()
        taker.join()
        for conn in [*held, listener]:
            conn.close()


def test_a_push_whose_worker_dies_says_so_and_the_next_push_is_taken(
    worker_process: Worker, studio_env: dict[str, str], tmp_path: Path
) -> None:
    # The only worker on the queue, so that it is the one pushing when it is killed.
    worker_process.stop()
    lone = Worker(studio_env, tmp_path)
    lone.start()
    try:
        with silent_registry() as host, studio_pushing_to(host, studio_env, tmp_path) as server:
            alice = Browser(server.url)
            alice.sign_up(f"alice-{uuid.uuid4().hex[:8]}")
            _, build_id = project_with_build(alice, "dies-pushing")
            ok(alice.api("POST", f"/api/builds/{build_id}/push/", {"repository": "app", "tag": "v1"}), 202)

            def latest() -> dict[str, Any]:
                return dict(ok(alice.get(f"/api/builds/{build_id}/home/"))["push"]["latest"])

            wait_until(lambda: latest()["status"] == "running", 30)
            # Alive, however long the registry keeps it waiting: its heartbeat says so.
            time.sleep(STALE_AFTER_S + 2)
            assert latest()["status"] == "running"

            lone.kill()
            wait_until(lambda: latest()["status"] == "failed", STALE_AFTER_S + 10)
            assert "the worker pushing it went away" in latest()["error"]
            # The dead push holds nothing up.
            again = alice.api("POST", f"/api/builds/{build_id}/push/", {"repository": "app", "tag": "v2"})
            assert again.status == 202, again.text
    finally:
        if lone.running:
            lone.kill()


def wait_until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)
