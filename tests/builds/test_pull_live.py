"""A build over the web whose FROM names an image on a registry: the worker pulls it, fetching
only the layers its store lacks, and the page hears the pull as events of the FROM step."""
# ruff: noqa: F811 (the registry fixture is imported, then named as an argument)

from __future__ import annotations

import time
from pathlib import Path

import pytest

from builds.engine import image as images
from builds.engine.builder import BuildOptions, build
from builds.engine.registry.push import push
from builds.engine.seed import busybox_rootfs
from builds.engine.store import Store
from tests.builds.test_builds_live import events_until, finished, project, start, stored_events
from tests.conftest import Browser
from tests.engine.registry_server import RegistryServer, registry  # noqa: F401

pytestmark = pytest.mark.usefixtures("base_image", "celery_worker")


def pushed_image(registry: RegistryServer, tmp_path: Path, word: str) -> str:
    """busybox with one layer of its own (holding `word`), pushed from a store of its own."""
    store = Store(tmp_path / "elsewhere")
    images.import_any(store, busybox_rootfs(tmp_path / "busybox.tar"), "busybox:latest")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {word} > /word\n")
    assert build(store, BuildOptions(context=context, tag="word:1")).status == "succeeded"
    ref = f"{registry.host}/words/{word}:1"
    push(store, "word:1", ref)
    return ref


def test_a_from_on_a_registry_is_pulled_by_the_worker_and_the_page_sees_it(
    browser: Browser, registry: RegistryServer, tmp_path: Path
) -> None:
    word = f"w{time.monotonic_ns()}"
    ref = pushed_image(registry, tmp_path, word)
    browser.sign_up(f"alice-pull-{word}")
    project_id = project(browser, f"FROM {ref}\nRUN cat /word\n")
    started = start(browser, project_id)
    with browser.websocket(f"/ws/builds/{started['id']}/") as ws:
        events = events_until(ws, finished, timeout=60)

    assert events[-1]["status"] == "succeeded", events[-1]
    pulls = [e for e in events if e["type"] == "image.pull"]
    assert pulls and {e["step"] for e in pulls} == {1} and {e["image"] for e in pulls} == {ref}
    layers = {e["layer"]: e["status"] for e in pulls if e["layer"]}
    # The worker's store has busybox already: only the layer with the word is fetched.
    assert sorted(layers.values()) == ["done", "exists"]
    from_done = next(i for i, e in enumerate(events) if e["type"] == "step.finished" and e["step"] == 1)
    assert all(events.index(e) < from_done for e in pulls)
    assert word in "".join(e["text"] for e in events if e["type"] == "step.log")
    assert stored_events(browser, started["id"]) == events


def test_a_from_the_registry_lacks_fails_the_build_naming_the_image_and_line(
    browser: Browser, registry: RegistryServer
) -> None:
    browser.sign_up(f"alice-missing-{time.monotonic_ns()}")
    project_id = project(browser, f"# a base that is nowhere\nFROM {registry.host}/nowhere:1\nRUN true\n")
    started = start(browser, project_id)
    with browser.websocket(f"/ws/builds/{started['id']}/") as ws:
        events = events_until(ws, finished, timeout=60)
    error = events[-1]["error"]
    assert events[-1]["status"] == "failed"
    assert error["line"] == 2
    assert f"{registry.host}/nowhere:1 was not found on {registry.host}" in error["message"]


def test_a_from_on_a_loopback_registry_the_operator_did_not_list_is_refused(
    browser: Browser, registry: RegistryServer, tmp_path: Path
) -> None:
    """The same registry spelled `localhost` (not in STUDIO_REGISTRY_ALLOW_PRIVATE): the worker
    sends it nothing, and the build fails saying why."""
    word = f"w{time.monotonic_ns()}"
    ref = pushed_image(registry, tmp_path, word).replace("127.0.0.1", "localhost")
    seen = registry.log.read_text().count("HTTP/1.1")
    browser.sign_up(f"alice-private-{word}")
    project_id = project(browser, f"FROM {ref}\nRUN cat /word\n")
    started = start(browser, project_id)
    with browser.websocket(f"/ws/builds/{started['id']}/") as ws:
        events = events_until(ws, finished, timeout=60)

    assert events[-1]["status"] == "failed"
    error = events[-1]["error"]
    assert error["line"] == 1 and "loopback address (127.0.0.1)" in error["message"], error
    assert "STUDIO_REGISTRY_ALLOW_PRIVATE" in error["message"]
    assert registry.log.read_text().count("HTTP/1.1") == seen
