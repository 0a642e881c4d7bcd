"""One cache for workers on several hosts (here: two worker processes, each with a store of its
own): the index in Redis, the layers in a real registry (Debian's docker-registry). A student
whose next build lands on the other worker finds it cached, as on one machine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from builds import locality, stores
from tests.builds.hosts import Hosts, hosts
from tests.builds.test_builds_live import events_until, wait_for_status
from tests.builds.test_cache_scopes_live import FILES, STARTER, build, own_project, step, verdicts
from tests.builds.test_containers_live import commit, run, wait_ended
from tests.classrooms.test_classrooms import ok, person, put
from tests.conftest import Browser
from tests.engine.registry_server import running_registry


def _index_url(studio_env: dict[str, str]) -> str:
    return studio_env["REDIS_URL"].rsplit("/", 1)[0] + "/15"


@pytest.fixture(scope="module")
def shared_hosts(studio_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    root = tmp_path_factory.mktemp("shared-hosts")
    with running_registry(root / "registry") as registry:
        extra = {
            "STUDIO_CACHE_INDEX": _index_url(studio_env),
            "STUDIO_CACHE_REGISTRY": f"{registry.host}/studio-cache",
        }
        with hosts(studio_env, root, count=2, extra=extra) as made:
            yield made


def layers_in(store: Path) -> set[str]:
    return {p.name for p in (store / "l").iterdir() if p.is_dir()}


def test_a_students_next_build_on_the_other_worker_is_still_fully_cached(shared_hosts: Hosts) -> None:
    alice = person(shared_hosts.web, "alice")
    project = own_project(alice, STARTER, FILES)
    first = build(alice, project)
    assert verdicts(first) == ["built"] * 5
    holder = shared_hosts.worker_of(first["id"])
    other = next(w for w in shared_hosts.workers if w is not holder)
    assert not layers_in(shared_hosts.store_of(other)) >= layers_in(shared_hosts.store_of(holder))

    shared_hosts.shut_down(holder)  # its host goes away: alice's next build goes to the other one
    second = build(alice, project)
    assert shared_hosts.worker_of(second["id"]) is other
    assert verdicts(second) == ["cached"] * 5
    assert second["cache"] == {"hits": 5, "misses": 0}
    assert second["image"]["digest"] == first["image"]["digest"]
    # The layers came through the registry: the other store holds them now, a cache of it.
    assert layers_in(shared_hosts.store_of(other)) >= layers_in(shared_hosts.store_of(holder))

    # And an edit is told apart as on one machine: which file changed, under which COPY.
    put(alice, project, "app.py", "print('mine')\n")
    edited = build(alice, project)
    assert verdicts(edited) == ["cached", "cached", "cached", "built", "built"]
    reason = step(edited, "COPY . .")["reason"]
    assert reason["code"] == "files_changed" and "app.py" in reason["message"], reason


SLOW = STARTER.replace('RUN cat app.py > /built', 'RUN cat app.py > /built && sleep 30')


def _shared_records(studio_env: dict[str, str]) -> int:
    """How many cache records the workers have shared (each is in Redis once its layer is in the
    registry)."""
    client = redis.Redis.from_url(_index_url(studio_env))
    try:
        return sum(1 for _ in client.scan_iter(match="studio:cache:*:r:*"))
    finally:
        client.close()


def test_a_worker_killed_mid_build_hands_its_student_over_and_the_next_build_hits_the_cache(
    shared_hosts: Hosts, studio_env: dict[str, str]
) -> None:
    for worker in shared_hosts.workers:
        if not worker.running:
            worker.start()
    alice = person(shared_hosts.web, "alice")
    project = own_project(alice, SLOW, FILES)
    shared_before = _shared_records(studio_env)
    started = ok(alice.api("POST", f"/api/projects/{project}/builds/", {}), 202)
    with alice.websocket(f"/ws/builds/{started['id']}/") as ws:
        events_until(ws, lambda e: e["type"] == "step.started" and e["step"] == 6, timeout=60)
    holder = shared_hosts.worker_of(started["id"])
    # The four steps it built reach the registry (in the background) while the slow one runs.
    deadline = time.monotonic() + 60
    while _shared_records(studio_env) < shared_before + 4 and time.monotonic() < deadline:
        time.sleep(0.25)
    assert _shared_records(studio_env) >= shared_before + 4, "the built steps were never shared"
    holder.kill()
    assert wait_for_status(alice, started["id"], {"failed"}, 30)["status"] == "failed"

    again = build(alice, project)
    assert shared_hosts.worker_of(again["id"]) is not holder
    assert verdicts(again) == ["cached", "cached", "cached", "cached", "built"]


def test_the_web_server_shows_what_workers_built_though_it_shares_no_disk_with_them(
    shared_hosts: Hosts,
) -> None:
    for worker in shared_hosts.workers:
        if not worker.running:
            worker.start()
    bob = person(shared_hosts.web, "bob")
    project = own_project(bob, STARTER, FILES)
    first = build(bob, project)
    put(bob, project, "app.py", "print('bob')\n")
    second = build(bob, project)
    web_store = Path(shared_hosts.env["STUDIO_DATA_DIR"])
    copied = step(second, "COPY . .")
    web_had = layers_in(web_store) if (web_store / "l").exists() else set()
    assert copied["layer"]["digest"][7:23] not in web_had

    # The step inspector lists the layer's files: fetched from the registry into the web's store,
    # once the worker has pushed it there (in the background, after the build's last event).
    deadline = time.monotonic() + 30
    while True:
        detail = ok(bob.api("GET", f"/api/builds/{second['id']}/steps/{copied['step']}/"))
        if detail["files"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "app/app.py" in [f["path"] for f in detail["files"]], detail["files"]
    assert copied["layer"]["digest"][7:23] in layers_in(web_store)
    assert detail["cache_inputs"] is not None

    # A comparison reads both images, their base layers included, by their digests.
    compared = ok(bob.api("GET", f"/api/compare/{first['id']}/{second['id']}/"))
    shared = compared["summary"]["shared_layers"]
    assert shared is not None and shared["count"] >= 3, compared["summary"]


def exited_container(hosts: Hosts, name: str) -> tuple[Browser, dict[str, Any], dict[str, Any]]:
    """A new person, their build, and a container of it that wrote /new and exited."""
    for worker in hosts.workers:
        if not worker.running:
            worker.start()
    owner = person(hosts.web, name)
    built = build(owner, own_project(owner, STARTER, FILES))
    ran = wait_ended(owner, run(owner, built["id"], ["sh", "-c", "echo hi > /new"])["id"])
    assert ran["status"] == "exited", ran["message"]
    return owner, built, ran


def _upper_dirs(store: Path) -> set[str]:
    """The containers whose writable layer is in `store`."""
    return {p.name for p in (store / "containers").glob("*") if (p / "upper").is_dir()}


def test_a_container_is_committed_and_removed_on_its_worker_and_the_web_reads_the_commit(
    shared_hosts: Hosts, settings: Any,
) -> None:
    carol, built, ran = exited_container(shared_hosts, "carol")
    holder = shared_hosts.store_of(shared_hosts.container_worker(ran["id"]))
    assert len(_upper_dirs(holder)) == 1
    web = Path(shared_hosts.env["STUDIO_DATA_DIR"])

    asked, states = commit(carol, ran["id"])
    assert asked["status"] == "committing"
    assert [s["status"] for s in states] == ["committed"], states
    committed = states[-1]["committed_image"]
    assert _upper_dirs(holder) == set()  # its layer is the image's now
    assert not (web / "containers").exists()  # the web's store never held it

    # The web reads the commit as it reads any image built elsewhere: through the shared cache.
    settings.STUDIO_DATA_DIR = web
    settings.CACHE_INDEX_URL = shared_hosts.env["STUDIO_CACHE_INDEX"]
    settings.CACHE_REGISTRY = shared_hosts.env["STUDIO_CACHE_REGISTRY"]
    store = stores.web_store()
    image = stores.image_here(store, committed["digest"])
    assert image is not None and len(image.layers) == committed["layers"]
    assert image.layers[-1] == committed["layer"]["id"]
    assert {(c.change, c.path) for c in store.layer(image.layers[-1], changes=True).changes} == {
        ("added", "new")}

    again = wait_ended(carol, run(carol, built["id"], ["sh", "-c", "echo x > /x"])["id"])
    holder = shared_hosts.store_of(shared_hosts.container_worker(again["id"]))
    assert len(_upper_dirs(holder)) == 1
    removed = ok(carol.api("DELETE", f"/api/containers/{again['id']}/"))
    assert removed["status"] == "removed"
    deadline = time.monotonic() + 30
    while _upper_dirs(holder):
        assert time.monotonic() < deadline, "the worker never discarded the writable layer"
        time.sleep(0.2)


def test_a_commit_whose_worker_is_gone_ends_failed_with_a_message(shared_hosts: Hosts) -> None:
    dave, _, ran = exited_container(shared_hosts, "dave")
    shared_hosts.container_worker(ran["id"]).kill()  # no other store holds its layer
    asked = ok(dave.api("POST", f"/api/containers/{ran['id']}/commit/"), 202)
    assert asked["status"] == "committing"
    # Within its liveness key's life and a heartbeat's patience, not the five minutes a
    # message may wait for a busy worker.
    deadline = time.monotonic() + locality.WORKER_ALIVE_TTL_S + 20
    while (found := ok(dave.get(f"/api/containers/{ran['id']}/")))["status"] == "committing":
        assert time.monotonic() < deadline, found
        time.sleep(0.5)
    assert (found["status"], found["committed_image"]) == ("failed", None)
    assert "the worker holding this container's writable layer is gone" in found["message"]
