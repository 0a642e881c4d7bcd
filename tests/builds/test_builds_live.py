"""Builds over the web, end to end with nothing stood in: HTTP to uvicorn, a real Celery worker
running the real engine in its sandbox, events through Redis to a real websocket. Each test reads
as what a person at the studio would notice."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection

from tests.conftest import Browser, RedisServer, StudioServer, Worker

pytestmark = pytest.mark.usefixtures("base_image", "celery_worker")

CLASSROOM = """\
FROM studio/busybox:1.35
WORKDIR /app
COPY greeting.txt .
RUN cat greeting.txt && echo built > built.txt
RUN for i in 1 2 3; do echo "line $i"; done
CMD ["cat", "/app/greeting.txt"]
"""


def project(browser: Browser, dockerfile: str, files: dict[str, str] | None = None) -> int:
    made = browser.api(
        "POST", "/api/projects/", {"name": f"p-{time.monotonic_ns()}", "dockerfile": dockerfile}
    )
    assert made.status == 201, made.text
    project_id: int = made.json()["id"]
    for path, content in (files or {}).items():
        put = browser.api("PUT", f"/api/projects/{project_id}/files/{path}", {"content": content})
        assert put.status == 200, put.text
    return project_id


def start(browser: Browser, project_id: int, **options: Any) -> dict[str, Any]:
    started = browser.api("POST", f"/api/projects/{project_id}/builds/", options)
    assert started.status == 202, started.text
    build: dict[str, Any] = started.json()
    assert build["status"] == "queued"
    return build


def receive(ws: ClientConnection, timeout: float = 30) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return message


def events_until(
    ws: ClientConnection, stop: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> list[Any]:
    """Events from the socket up to and including the first that `stop` accepts."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while not seen or not stop(seen[-1]):
        seen.append(receive(ws, max(0.1, deadline - time.monotonic())))
    return seen


def finished(event: dict[str, Any]) -> bool:
    return bool(event["type"] == "build.finished")


def build_of(browser: Browser, build_id: int) -> dict[str, Any]:
    found = browser.get(f"/api/builds/{build_id}/")
    assert found.status == 200, found.text
    result: dict[str, Any] = found.json()
    return result


def wait_for_status(browser: Browser, build_id: int, statuses: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        build = build_of(browser, build_id)
        if build["status"] in statuses or time.monotonic() > deadline:
            return build
        time.sleep(0.2)


def stored_events(browser: Browser, build_id: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        page = browser.get(
            f"/api/builds/{build_id}/events/?after={events[-1]['seq'] if events else 0}"
        ).json()
        events.extend(page["events"])
        if not page["events"]:
            return events


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def test_alice_watches_every_event_of_her_build_arrive_in_order(browser: Browser) -> None:
    browser.sign_up("alice-live-1")
    project_id = project(browser, CLASSROOM, {"greeting.txt": "hello, class\n"})
    build = start(browser, project_id)

    with browser.websocket(f"/ws/builds/{build['id']}/") as ws:
        events = events_until(ws, finished)

    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "build.started"
    assert [s["instruction"] for s in events[0]["steps"]][:3] == [
        "FROM studio/busybox:1.35",
        "WORKDIR /app",
        "COPY greeting.txt .",
    ]
    logs = "".join(e["text"] for e in events if e["type"] == "step.log")
    assert "hello, class" in logs and "line 3" in logs
    assert events[-1]["status"] == "succeeded"
    # What the socket showed is what the studio kept.
    assert stored_events(browser, build["id"]) == events
    done = build_of(browser, build["id"])
    assert done["status"] == "succeeded"
    assert done["image"]["digest"].startswith("sha256:")
    step_events = [
        {k: v for k, v in e.items() if k not in ("type", "seq")}
        for e in events
        if e["type"] == "step.finished"
    ]
    assert done["steps"] == step_events
    assert done["cache"] == events[-1]["cache"]


def test_a_page_that_reconnects_with_after_misses_nothing_and_sees_nothing_twice(browser: Browser) -> None:
    browser.sign_up("alice-live-2")
    slow = CLASSROOM.replace('echo "line $i"', 'echo "line $i"; sleep 0.3')
    project_id = project(browser, slow, {"greeting.txt": "hello again\n"})
    build = start(browser, project_id)

    with browser.websocket(f"/ws/builds/{build['id']}/") as ws:
        first = events_until(ws, lambda e: e["type"] == "step.log")
    assert not any(finished(e) for e in first)
    with browser.websocket(f"/ws/builds/{build['id']}/?after={first[-1]['seq']}") as ws:
        rest = events_until(ws, finished)

    seqs = [e["seq"] for e in first + rest]
    assert seqs == list(range(1, len(seqs) + 1))
    assert rest[-1]["status"] == "succeeded"


def test_bob_can_neither_see_nor_build_nor_listen_to_alices_project(studio_server: StudioServer) -> None:
    alice, bob, nobody = Browser(studio_server.url), Browser(studio_server.url), Browser(studio_server.url)
    alice.sign_up("alice-live-3")
    bob.sign_up("bob-live-3")
    project_id = project(alice, CLASSROOM, {"greeting.txt": "private\n"})
    build = start(alice, project_id)

    for path in (
        f"/api/projects/{project_id}/",
        f"/api/builds/{build['id']}/",
        f"/api/builds/{build['id']}/events/",
        f"/api/projects/{project_id}/builds/",
    ):
        refused = bob.get(path)
        assert refused.status == 404, path
        assert "not found" in refused.json()["error"]
    assert bob.api("POST", f"/api/projects/{project_id}/builds/", {}).status == 404
    assert bob.api("POST", f"/api/builds/{build['id']}/cancel/").status == 404
    for who, path in (
        (bob, f"/ws/builds/{build['id']}/"),
        (bob, f"/ws/projects/{project_id}/"),
        (nobody, f"/ws/builds/{build['id']}/"),
    ):
        with pytest.raises(InvalidStatus) as refused_ws:
            who.websocket(path)
        assert refused_ws.value.response.status_code == 403
    assert nobody.get(f"/api/builds/{build['id']}/").json() == {"error": "log in first"}

    # With the share link Bob may look and listen, but still not build.
    token = alice.api("POST", f"/api/projects/{project_id}/share/").json()["share_token"]
    assert bob.get(f"/api/builds/{build['id']}/?token={token}").status == 200
    with bob.websocket(f"/ws/builds/{build['id']}/?token={token}") as ws:
        assert events_until(ws, finished)[0]["seq"] == 1
    assert bob.api("POST", f"/api/projects/{project_id}/builds/?token={token}", {}).status == 404


def test_the_project_channel_announces_a_build_from_queue_to_outcome(browser: Browser) -> None:
    browser.sign_up("alice-live-4")
    project_id = project(browser, CLASSROOM, {"greeting.txt": "announced\n"})
    with browser.websocket(f"/ws/projects/{project_id}/") as ws:
        build = start(browser, project_id)
        statuses = []
        while not statuses or statuses[-1] not in ("succeeded", "failed"):
            message = receive(ws)
            assert message["type"] == "build.status" and message["build"]["id"] == build["id"]
            statuses.append(message["build"]["status"])
    assert statuses == ["queued", "running", "succeeded"]


def test_a_failing_step_is_the_builds_outcome_named_by_its_line_and_never_retried(browser: Browser) -> None:
    browser.sign_up("alice-live-5")
    project_id = project(browser, "FROM studio/busybox:1.35\nRUN echo about to fail\nRUN exit 3\n")
    build = start(browser, project_id)
    with browser.websocket(f"/ws/builds/{build['id']}/") as ws:
        events = events_until(ws, finished)
    assert events[-1]["status"] == "failed"
    done = build_of(browser, build["id"])
    assert done["status"] == "failed"
    assert done["error"]["line"] == 3 and "exited with code 3" in done["error"]["message"]
    assert [s["status"] for s in done["steps"]] == ["cached", "built", "failed"]
    time.sleep(1)  # a retry would have started by now
    assert [e["type"] for e in stored_events(browser, build["id"])].count("build.started") == 1


def test_cancelling_stops_a_running_build_at_once_and_a_queued_one_before_it_starts(browser: Browser) -> None:
    browser.sign_up("alice-live-6")
    project_id = project(browser, "FROM studio/busybox:1.35\nRUN sleep 30\n")
    running = start(browser, project_id, no_cache=True)
    queued = start(browser, project_id, no_cache=True)
    with browser.websocket(f"/ws/builds/{running['id']}/") as ws:
        events_until(ws, lambda e: e["type"] == "step.started" and e["step"] == 2)

        cancelled = browser.api("POST", f"/api/builds/{queued['id']}/cancel/")
        assert cancelled.status == 202 and cancelled.json()["status"] == "cancelled"
        asked = time.monotonic()
        assert browser.api("POST", f"/api/builds/{running['id']}/cancel/").status == 202
        last = events_until(ws, finished)[-1]
    assert time.monotonic() - asked < 3
    assert last["status"] == "cancelled"
    assert build_of(browser, running["id"])["status"] == "cancelled"
    never_ran = build_of(browser, queued["id"])
    assert never_ran["status"] == "cancelled" and never_ran["started_at"] is None
    assert [e["type"] for e in stored_events(browser, queued["id"])] == ["build.finished"]
    again = browser.api("POST", f"/api/builds/{running['id']}/cancel/")
    assert again.status == 409 and "already finished" in again.json()["error"]


def test_one_projects_builds_take_turns_while_another_projects_build_runs_beside(browser: Browser) -> None:
    browser.sign_up("alice-live-7")
    slow = "FROM studio/busybox:1.35\nRUN sleep 1.5 && echo {name}\n"
    first_project = project(browser, slow.format(name="first"))
    other_project = project(browser, slow.format(name="other"))
    first = start(browser, first_project, no_cache=True)
    second = start(browser, first_project, no_cache=True)
    other = start(browser, other_project, no_cache=True)

    done = {
        b["id"]: wait_for_status(browser, b["id"], {"succeeded", "failed"}, 30)
        for b in (first, second, other)
    }
    first, second, other = done[first["id"]], done[second["id"]], done[other["id"]]
    assert {first["status"], second["status"], other["status"]} == {"succeeded"}
    assert at(second["started_at"]) >= at(first["finished_at"])
    assert at(other["started_at"]) < at(first["finished_at"]) and at(first["started_at"]) < at(
        other["finished_at"]
    )


def test_a_build_whose_worker_is_killed_ends_failed_and_says_so(
    browser: Browser, celery_worker: Worker, studio_env: dict[str, str]
) -> None:
    browser.sign_up("alice-live-8")
    project_id = project(browser, "FROM studio/busybox:1.35\nRUN sleep 30\n")
    build = start(browser, project_id, no_cache=True)
    tmp = Path(studio_env["STUDIO_DATA_DIR"]) / "tmp"
    with browser.websocket(f"/ws/builds/{build['id']}/") as ws:
        events_until(ws, lambda e: e["type"] == "step.started" and e["step"] == 2)
        deadline = time.monotonic() + 10
        while not (running := {p.name for p in tmp.iterdir() if p.name.startswith("step-")}):
            assert time.monotonic() < deadline, "the step's upper directory never appeared"
            time.sleep(0.05)
        celery_worker.kill()
        killed = time.monotonic()
        # Nobody but the web server is left to notice: looking at the build is what reaps it.
        done = wait_for_status(browser, build["id"], {"failed"}, 20)
        last = events_until(ws, finished, timeout=5)[-1]
    assert done["status"] == "failed"
    assert time.monotonic() - killed < 12
    assert "the worker running this build stopped" in done["error"]["message"]
    assert last["status"] == "failed" and last["error"] == done["error"]
    seqs = [e["seq"] for e in stored_events(browser, build["id"])]
    assert seqs == list(range(1, len(seqs) + 1))

    # A worker started again builds as before, and the dead build's half-made layer is gone
    # from the store's work space.
    celery_worker.start()
    after = start(browser, project(browser, "FROM studio/busybox:1.35\nRUN echo back\n"))
    assert wait_for_status(browser, after["id"], {"succeeded", "failed"}, 20)["status"] == "succeeded"
    assert not running & {p.name for p in tmp.iterdir()}


def test_a_build_outlives_a_redis_restart_and_keeps_every_event(
    browser: Browser, redis_server: RedisServer, celery_worker: Worker
) -> None:
    browser.sign_up("alice-live-9")
    project_id = project(
        browser, "FROM studio/busybox:1.35\nRUN echo before && sleep 3 && echo after\nRUN echo last step\n"
    )
    build = start(browser, project_id, no_cache=True)
    with browser.websocket(f"/ws/builds/{build['id']}/") as ws:
        heard = events_until(ws, lambda e: e["type"] == "step.log")
        redis_server.restart()
        # The live feed may stop with Redis; the stored events must not.
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            heard += events_until(ws, finished, timeout=15)
    assert [e["seq"] for e in heard] == list(range(1, len(heard) + 1))

    done = wait_for_status(browser, build["id"], {"succeeded", "failed"}, 30)
    assert done["status"] == "succeeded"
    events = stored_events(browser, build["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "build.finished"
    assert "after\n" in "".join(e["text"] for e in events if e["type"] == "step.log")
    # A page that reconnects now is given the whole build.
    with browser.websocket(f"/ws/builds/{build['id']}/") as ws:
        assert events_until(ws, finished) == events
    # And the studio goes on building, with the same worker.
    assert celery_worker.running
    again = start(browser, project_id, no_cache=True)
    with browser.websocket(f"/ws/builds/{again['id']}/") as ws:
        assert events_until(ws, finished)[-1]["status"] == "succeeded"


def test_a_worker_that_comes_straight_back_fails_the_build_it_lost_at_once(
    browser: Browser, celery_worker: Worker
) -> None:
    browser.sign_up("alice-live-10")
    project_id = project(browser, "FROM studio/busybox:1.35\nRUN sleep 30\n")
    build = start(browser, project_id, no_cache=True)
    with browser.websocket(f"/ws/builds/{build['id']}/") as ws:
        events_until(ws, lambda e: e["type"] == "step.started" and e["step"] == 2)
    celery_worker.kill()
    celery_worker.start()
    back = time.monotonic()
    # Well before the heartbeat goes stale (6 s here): the worker knows at start what it lost.
    done = wait_for_status(browser, build["id"], {"failed"}, 3)
    assert done["status"] == "failed", f"still {done['status']} {time.monotonic() - back:.1f} s after"
    assert "the worker running this build restarted" in done["error"]["message"]
