"""Workers on several hosts (here: separate processes, each with a store of its own): a scope's
builds follow the worker that holds its cache, and a build sent to a worker that died is not
left waiting for it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from builds import locality
from tests.builds.hosts import Hosts, hosts
from tests.builds.test_builds_live import wait_for_status
from tests.builds.test_cache_scopes_live import FILES, STARTER, build, own_project, verdicts
from tests.classrooms.test_classrooms import ok, person


@pytest.fixture(scope="module")
def two_hosts(studio_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    with hosts(studio_env, tmp_path_factory.mktemp("hosts"), count=2) as made:
        yield made


def test_a_students_builds_stay_on_the_worker_that_holds_their_cache(two_hosts: Hosts) -> None:
    alice = person(two_hosts.web, "alice")
    project = own_project(alice, STARTER, FILES)
    first = build(alice, project)
    second = build(alice, project)
    assert two_hosts.worker_of(second["id"]) is two_hosts.worker_of(first["id"])
    assert verdicts(second) == ["cached"] * 5


def test_a_build_sent_to_a_worker_that_died_is_built_by_another_at_once(two_hosts: Hosts) -> None:
    for worker in two_hosts.workers:
        if not worker.running:
            worker.start()
    alice = person(two_hosts.web, "alice")
    project = own_project(alice, STARTER, FILES)
    first = build(alice, project)
    holder = two_hosts.worker_of(first["id"])
    holder.kill()  # its liveness lasts a few seconds more: the next build is sent to it

    started = time.monotonic()
    queued: dict[str, Any] = ok(alice.api("POST", f"/api/projects/{project}/builds/", {}), 202)
    routed = redis.Redis.from_url(two_hosts.env["REDIS_URL"]).hget(locality.ROUTED_KEY, str(queued["id"]))
    assert routed is not None and routed.decode().startswith(holder.name + "@")

    # Not the BUILD_REQUEUE_AFTER_S (300 s) a lost message waits: the worker's liveness runs out
    # (WORKER_ALIVE_TTL_S) and the other worker sends the build on.
    done = wait_for_status(alice, queued["id"], {"succeeded", "failed", "cancelled"}, timeout=45)
    assert done["status"] == "succeeded", done
    assert time.monotonic() - started < locality.WORKER_ALIVE_TTL_S + 30
    assert two_hosts.worker_of(queued["id"]) is not holder
