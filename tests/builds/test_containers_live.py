"""Containers from the web, for real: a person runs their own finished build on the Celery worker,
follows it on its websocket, reads its writable layer, commits it as a new image or removes it;
nobody else gets near it, it is bounded, and a worker dying under it loses nothing."""

from __future__ import annotations

import copy
import io
import json
import time
from typing import Any

import pytest
from websockets.sync.client import ClientConnection

from builds.engine.store import Image, Store
from tests.builds.test_builds_live import project
from tests.builds.test_plan_live import build_now
from tests.conftest import Browser, StudioServer, Worker

pytestmark = pytest.mark.usefixtures("base_image", "celery_worker")

DOCKERFILE = """\
FROM studio/busybox:1.35
RUN echo studio > /etc/hostname && echo {who} > /who
ENV GREETING=hello
CMD ["sh", "-c", "echo $GREETING from $(cat /who)"]
"""
WRITES = ["sh", "-c", "echo hi > /new; echo x >> /etc/hostname; rm /bin/ls; echo done"]


def built(browser: Browser, who: str) -> dict[str, Any]:
    browser.sign_up(who)
    return build_now(browser, project(browser, DOCKERFILE.format(who=who)))


def run(browser: Browser, build_id: int, cmd: list[str] | None = None) -> dict[str, Any]:
    started = browser.api("POST", f"/api/builds/{build_id}/containers/", {"cmd": cmd})
    assert started.status == 202, started.text
    found: dict[str, Any] = started.json()
    return found


def wait_ended(browser: Browser, container_id: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, Any] = browser.get(f"/api/containers/{container_id}/").json()
        if found["status"] not in ("queued", "running"):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def follow(ws: ClientConnection) -> tuple[str, dict[str, Any]]:
    """What a page hears: the snapshot's output plus the live output after it, and the end."""
    first = json.loads(ws.recv(timeout=30))
    assert first["type"] == "container.state"
    output = first["container"]["output"]
    state = first["container"]
    while state["status"] in ("queued", "running"):
        event = json.loads(ws.recv(timeout=60))
        if event["type"] == "container.log":
            if event["offset"] + len(event["text"]) > len(output):
                output += event["text"][len(output) - event["offset"]:]
        elif event["type"] == "container.layer":
            state = event["container"]
    return output, state


def changes(found: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["change"], c["path"]) for c in found["diff"]["changes"]}


def layer_bytes(store: Store, image: Image) -> list[str]:
    return [store.write_layer_tar(layer, io.BytesIO()) for layer in image.layers]


def test_alice_runs_her_build_and_sees_its_writable_layer(browser: Browser, studio_env: dict[str, str]
                                                          ) -> None:
    build = built(browser, "alice-run-1")
    store = Store(studio_env["STUDIO_DATA_DIR"])
    image = store.get_image(build["image"]["digest"])
    assert image is not None
    before = layer_bytes(store, image)
    started = run(browser, build["id"], WRITES)
    assert started["status"] == "queued" and started["cmd"] == WRITES
    with browser.websocket(f"/ws/containers/{started['id']}/") as ws:
        output, ended = follow(ws)
    assert output == "done\n"
    assert (ended["status"], ended["exit_code"]) == ("exited", 0)
    assert changes(ended) == {("added", "new"), ("modified", "etc/hostname"), ("deleted", "bin/ls")}
    assert {c["path"]: c["size"] for c in ended["diff"]["changes"]}["etc/hostname"] == len("studio\nx\n")
    assert browser.get(f"/api/builds/{build['id']}/container/").json()["container"]["id"] == started["id"]
    # The image is unchanged, byte for byte.
    assert layer_bytes(store, image) == before

    # Without a command, the image's own CMD with its ENV.
    plain = wait_ended(browser, run(browser, build["id"])["id"])
    assert (plain["output"], plain["diff"]["total"]) == ("hello from alice-run-1\n", 0)
    # Running again replaced the earlier container of the build: its layer is gone.
    assert browser.get(f"/api/containers/{started['id']}/").json()["status"] == "removed"


def commit(browser: Browser, container_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Commit as the page does: ask, then follow the container's socket to the commit's end.
    Returns the answer to the request and every state the page was sent after it."""
    with browser.websocket(f"/ws/containers/{container_id}/") as ws:
        first = json.loads(ws.recv(timeout=30))
        assert first["type"] == "container.state"
        asked = browser.api("POST", f"/api/containers/{container_id}/commit/")
        assert asked.status == 202, asked.text
        states = []
        while not states or states[-1]["status"] == "committing":
            event = json.loads(ws.recv(timeout=60))
            assert event["type"] == "container.layer", event
            states.append(event["container"])
    return asked.json(), states


def test_commit_makes_an_image_whose_top_layer_is_the_diff(browser: Browser, studio_env: dict[str, str]
                                                           ) -> None:
    build = built(browser, "alice-run-2")
    store = Store(studio_env["STUDIO_DATA_DIR"])
    image = store.get_image(build["image"]["digest"])
    assert image is not None
    before = layer_bytes(store, image)
    ended = wait_ended(browser, run(browser, build["id"], WRITES)["id"])
    asked, states = commit(browser, ended["id"])
    # Committing until the image is stored: never committed without it.
    assert (asked["status"], asked["committed_image"]) == ("committing", None)
    assert [s["status"] for s in states] == ["committed"]
    found = states[-1]
    assert browser.get(f"/api/containers/{ended['id']}/").json() == found
    new = store.get_image(found["committed_image"]["digest"])
    assert new is not None and new.layers[:-1] == image.layers
    top = store.layer(new.layers[-1], changes=True)
    assert {(c.change, c.path) for c in top.changes} == changes(ended)
    assert found["committed_image"]["layer"]["id"] == top.id
    assert layer_bytes(store, image) == before
    again = browser.api("POST", f"/api/containers/{ended['id']}/commit/")
    assert again.status == 409 and "committed" in again.json()["error"]


def test_removing_the_container_discards_its_layer(browser: Browser, studio_env: dict[str, str]) -> None:
    build = built(browser, "alice-run-3")
    ended = wait_ended(browser, run(browser, build["id"], WRITES)["id"])
    store = Store(studio_env["STUDIO_DATA_DIR"])
    containers = store.root / "containers"
    assert any((p / "upper" / "new").exists() for p in containers.iterdir())
    gone = browser.api("DELETE", f"/api/containers/{ended['id']}/")
    assert gone.status == 200 and gone.json()["status"] == "removed"
    # The worker that ran it discards its layer, in its own store.
    deadline = time.monotonic() + 30
    while any((p / "upper" / "new").exists() for p in containers.iterdir()):
        assert time.monotonic() < deadline, "the writable layer was never discarded"
        time.sleep(0.2)
    assert browser.get(f"/api/builds/{build['id']}/container/").json() == {"container": None}
    assert browser.api("POST", f"/api/containers/{ended['id']}/commit/").status == 409


def test_nobody_else_may_run_or_see_alices_container(browser: Browser, studio_server: StudioServer) -> None:
    build = built(browser, "alice-run-4")
    ended = wait_ended(browser, run(browser, build["id"], ["true"])["id"])
    token = browser.api("POST", f"/api/projects/{build['project']}/share/").json()["share_token"]
    bob = Browser(studio_server.url)
    bob.sign_up("bob-run-4")
    # Bob may look at the build with its share link, but a container is its owner's alone.
    assert bob.get(f"/api/builds/{build['id']}/?token={token}").status == 200
    assert bob.api("POST", f"/api/builds/{build['id']}/containers/?token={token}", {}).status == 404
    assert bob.api("POST", f"/api/builds/{build['id']}/containers/", {}).status == 404
    assert bob.get(f"/api/builds/{build['id']}/container/").status == 404
    assert bob.get(f"/api/containers/{ended['id']}/").status == 404
    assert bob.api("POST", f"/api/containers/{ended['id']}/commit/").status == 404
    assert bob.api("DELETE", f"/api/containers/{ended['id']}/").status == 404
    with pytest.raises(Exception), bob.websocket(f"/ws/containers/{ended['id']}/") as ws:  # noqa: B017
        ws.recv(timeout=5)
    assert browser.get(f"/api/containers/{ended['id']}/").json()["status"] == "exited"


def test_one_container_at_a_time_and_bad_commands_refused(browser: Browser) -> None:
    build = built(browser, "alice-run-5")
    first = run(browser, build["id"], ["sleep", "2"])
    second = browser.api("POST", f"/api/builds/{build['id']}/containers/", {"cmd": ["true"]})
    assert second.status == 429 and second.json()["limit"] == "containers_at_once"
    for bad in ({"cmd": "rm -rf /"}, {"cmd": ["x"] * 65}, {"cmd": ["a\x00b"]}):
        refused = browser.api("POST", f"/api/builds/{build['id']}/containers/", bad)
        assert refused.status == 400, refused.text
        assert refused.json().get("field") == "cmd"
    assert wait_ended(browser, first["id"])["status"] == "exited"


def test_a_container_past_its_time_limit_is_stopped(browser: Browser) -> None:
    build = built(browser, "alice-run-6")
    ended = wait_ended(browser, run(browser, build["id"], ["sleep", "60"])["id"], timeout=40)
    assert (ended["status"], ended["exit_code"]) == ("exited", 137)
    assert "the container ran longer than its time limit of 5 seconds" in ended["message"]


def test_hostile_names_and_many_files_come_back_capped(browser: Browser) -> None:
    build = built(browser, "alice-run-7")
    script = 'touch "/a\nb<img src=x onerror=alert(1)>"; mkdir /many && cd /many && seq 3000 | xargs touch'
    ended = wait_ended(browser, run(browser, build["id"], ["sh", "-c", script])["id"])
    diff = ended["diff"]
    assert (diff["total"], diff["added"], diff["truncated"], len(diff["changes"])) == (3002, 3002, True, 500)
    assert ("added", "a\nb<img src=x onerror=alert(1)>") in changes(ended)


def test_a_worker_dying_under_a_container_fails_it_with_a_message(browser: Browser, celery_worker: Worker
                                                                  ) -> None:
    build = built(browser, "alice-run-8")
    started = run(browser, build["id"], ["sleep", "30"])
    deadline = time.monotonic() + 30
    while browser.get(f"/api/containers/{started['id']}/").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    celery_worker.kill()
    ended = wait_ended(browser, started["id"], timeout=30)
    assert ended["status"] == "failed" and "the worker running this container stopped" in ended["message"]
    # Its place is free again: the next container runs once a worker is back.
    celery_worker.start()
    assert wait_ended(browser, run(browser, build["id"], ["true"])["id"])["status"] == "exited"


def test_an_image_whose_env_holds_a_nul_fails_to_run_with_the_variable_named(
    browser: Browser, studio_env: dict[str, str]
) -> None:
    store = Store(studio_env["STUDIO_DATA_DIR"])
    base = store.get_image("studio/busybox:1.35")
    assert base is not None
    config = copy.deepcopy(base.config)
    config.setdefault("config", {}).update(Env=["PATH=/bin", "GREETING=hi\x00there"], Cmd=["env"])
    odd = Image(config=config, layers=list(base.layers))  # as an image imported from anywhere may be
    store.put_image(odd)
    store.tag("studio/nul-env:1", odd.digest)
    browser.sign_up("alice-run-9")
    try:
        build = build_now(browser, project(browser, "FROM studio/nul-env:1\nLABEL odd=yes\n"))
    finally:
        store.untag("studio/nul-env:1")  # the store's base images are everyone's: leave none behind
    ended = wait_ended(browser, run(browser, build["id"])["id"])
    assert ended["status"] == "failed", ended
    assert ended["message"] == ('the image\'s Env variable "GREETING" holds a NUL character, '
                                "which no process's environment can carry")
    # The worker is well: the next container runs.
    plain = build_now(browser, project(browser, DOCKERFILE.format(who="alice-run-9")))
    assert wait_ended(browser, run(browser, plain["id"], ["true"])["id"])["status"] == "exited"
