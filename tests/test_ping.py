"""The whole chain, with nothing stood in: an HTTP request enqueues a task through Redis, a real
Celery worker runs it and publishes on the channel layer, and the person's websocket, served by
uvicorn, receives it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection

from .conftest import Browser, StudioServer, Worker


def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=15))
    return message


def test_alice_hears_each_ping_come_back_from_the_worker(browser: Browser, celery_worker: Worker) -> None:
    browser.sign_up("alice")
    with browser.websocket("/ws/ping/") as ws:
        for _ in range(2):  # twice: the worker must publish again after its first event loop is gone
            sent = browser.post("/api/ping/")
            assert sent.status == 202
            heard = receive(ws)
            assert heard == {"type": "pong", "token": sent.json()["token"], "worker": heard["worker"]}
            assert heard["worker"].startswith(celery_worker.name + "@")


def test_bob_does_not_hear_alices_pings(studio_server: StudioServer, celery_worker: Worker) -> None:
    alice, bob = Browser(studio_server.url), Browser(studio_server.url)
    alice.sign_up("alice-2")
    bob.sign_up("bob")
    with alice.websocket("/ws/ping/") as alice_ws, bob.websocket("/ws/ping/") as bob_ws:
        alices = alice.post("/api/ping/").json()["token"]
        assert receive(alice_ws)["token"] == alices
        # Alice's pong was published before Bob's ping: had it reached Bob, it would come first.
        bobs = bob.post("/api/ping/").json()["token"]
        assert receive(bob_ws)["token"] == bobs


def test_a_visitor_who_is_not_logged_in_can_neither_listen_nor_ping(browser: Browser) -> None:
    with pytest.raises(InvalidStatus) as refused:
        browser.websocket("/ws/ping/")
    assert refused.value.response.status_code == 403

    browser.get("/accounts/login/")  # a CSRF cookie, so only the missing login can refuse it
    sent = browser.post("/api/ping/")
    assert sent.status == 403
    assert sent.json() == {"error": "log in first"}


def test_a_page_on_another_site_cannot_open_the_socket_with_alices_cookie(browser: Browser) -> None:
    browser.sign_up("alice-3")
    with pytest.raises(InvalidStatus) as refused:
        browser.websocket("/ws/ping/", origin="http://evil.example")
    assert refused.value.response.status_code == 403
