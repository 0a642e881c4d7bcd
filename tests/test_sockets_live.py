"""A build's websocket when Redis, its channel layer, goes away: the page is told with a close
frame, reconnects with `?after=` and loses nothing; and a socket whose page has gone stops."""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.builds.test_builds_live import events_until, finished, project, start, stored_events

from .conftest import Browser, RedisServer, StudioServer

pytestmark = pytest.mark.usefixtures("base_image", "celery_worker")

SLOW = """\
FROM studio/busybox:1.35
RUN for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo tick $i; sleep 0.5; done
RUN echo last
"""
CATCH_UP_FAILED = "catching up from the database failed"


def _log(studio_server: StudioServer) -> str:
    assert studio_server.service.log is not None
    return studio_server.service.log.read_text(errors="replace")


@pytest.mark.parametrize("down_s", [0, 3], ids=["back-at-once-empty", "away-3s"])
def test_redis_dying_closes_the_socket_with_a_close_frame_and_the_page_resumes_without_gaps(
    browser: Browser, redis_server: RedisServer, down_s: float
) -> None:
    browser.sign_up(f"sockets-1-{down_s}")
    build = start(browser, project(browser, SLOW), no_cache=True)
    with browser.websocket(f"/ws/builds/{build['id']}/") as ws:
        heard = events_until(ws, lambda e: e["type"] == "step.log")
        redis_server.restart(down_s)
        # The page hears a proper close (not a dropped connection) soon after Redis went.
        closed_at = time.monotonic() + 15
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                heard.append(json.loads(ws.recv(timeout=max(0.1, closed_at - time.monotonic()))))
        assert closed.value.rcvd is not None, "the socket was dropped without a close frame"
        assert closed.value.rcvd.code == 1012, closed.value.rcvd

    # As the page does: reconnect after the last event it applied.
    deadline = time.monotonic() + 20
    while True:
        try:
            with browser.websocket(f"/ws/builds/{build['id']}/?after={heard[-1]['seq']}") as ws:
                heard += events_until(ws, finished, timeout=30)
            break
        except (ConnectionClosed, InvalidHandshake, OSError):
            assert time.monotonic() < deadline, "the socket did not come back after Redis did"
            time.sleep(0.5)

    seqs = [e["seq"] for e in heard]
    assert seqs == list(range(1, len(seqs) + 1))
    assert heard == stored_events(browser, build["id"])
    assert heard[-1]["status"] == "succeeded"


def test_a_socket_whose_page_left_stops_and_logs_nothing_more(
    browser: Browser, redis_server: RedisServer, studio_server: StudioServer
) -> None:
    browser.sign_up("sockets-2")
    build = start(browser, project(browser, SLOW), no_cache=True)
    before = _log(studio_server).count(CATCH_UP_FAILED)
    with browser.websocket(f"/ws/builds/{build['id']}/") as ws:
        events_until(ws, lambda e: e["type"] == "step.log")
        # Redis goes for a while the page is there, and the page goes without a word (a closed laptop).
        redis_server.restart(down_s=3)
        ws.close_socket()
    time.sleep(3 * 2.0 + 1)
    assert _log(studio_server).count(CATCH_UP_FAILED) == before, _log(studio_server)[-3000:]
