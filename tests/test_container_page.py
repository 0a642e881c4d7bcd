"""The container lab on the studio page, in Chromium against the real server and worker: Run a
finished build, watch the container's writable layer drawn on top of the stack with exactly what
it added, changed and deleted (hostile names shown as text), commit it as one more layer, remove
it; at a laptop's, a projector's and a phone's size."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest

from builds.engine.store import Store

from .pages import ARTIFACTS, page_marks, screenshot, sign_up, watch_errors
from .test_studio_page import _api

pytest.importorskip("playwright.sync_api")
pytestmark = page_marks("studio.js")

LAPTOP = {"width": 1440, "height": 900}
PROJECTOR = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}

DOCKERFILE = """\
FROM busybox:latest
RUN echo studio > /etc/hostname && echo {who} > /who
CMD ["cat", "/who"]
"""
HOSTILE = "a\nb<img src=x onerror=alert(1)>"
COMMAND = ("echo hi > /new; echo x >> /etc/hostname; rm /bin/ls; "
           "touch \"$(printf 'a\\nb<img src=x onerror=alert(1)>')\"; echo done")

IN_VIEW = """e => {
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth;
}"""
NO_SIDEWAYS = "() => document.documentElement.scrollWidth <= innerWidth"


def _get(page: Any, path: str) -> Any:
    return page.evaluate("async (path) => await (await fetch(path)).json()", path)


def _built(page: Any, base: str) -> tuple[int, int]:
    sign_up(page, base, f"lab-{uuid.uuid4().hex[:8]}")
    who = uuid.uuid4().hex[:10]
    made = _api(page, "/api/projects/", {"name": "lab", "dockerfile": DOCKERFILE.format(who=who)})
    project_id: int = made["id"]
    page.goto(f"{base}/studio/{project_id}/")
    page.wait_for_selector("#project-studio[data-ready=true]")
    page.locator("#build-button").click()
    page.wait_for_selector("#project-studio[data-build-status=succeeded]", timeout=60_000)
    return project_id, int(page.locator("#project-studio").get_attribute("data-build") or 0)


def _rows(page: Any) -> set[tuple[str, str]]:
    rows = page.locator("#layer-stack .band-writable .writable-files li")
    return {(rows.nth(i).locator(".change-word").inner_text(), rows.nth(i).locator("code").inner_text())
            for i in range(rows.count())}


def _fits(page: Any, selector: str, name: str) -> None:
    page.locator(selector).scroll_into_view_if_needed()
    assert page.locator(selector).evaluate(IN_VIEW), f"{name}: {selector} is not inside the window"
    assert page.evaluate(NO_SIDEWAYS), f"{name}: the page scrolls sideways"


def test_alice_runs_her_image_and_sees_its_writable_layer_then_commits_it(
    studio_server: Any, celery_worker: Any, base_image: Any, chromium: Any, studio_env: dict[str, str]
) -> None:
    context = chromium.new_context(viewport=LAPTOP)
    page = context.new_page()
    errors = watch_errors(page)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    base = studio_server.url
    project_id, build_id = _built(page, base)
    build = _get(page, f"/api/builds/{build_id}/")
    store = Store(studio_env["STUDIO_DATA_DIR"])
    image = store.get_image(build["image"]["digest"])
    assert image is not None
    before = [store.write_layer_tar(layer, io.BytesIO()) for layer in image.layers]
    # Before any run: the dotted placeholder, and a Run button.
    assert page.locator("#layer-stack .band-container").is_visible()
    assert page.locator("#run-button").is_visible()

    page.fill("#container-command", COMMAND)
    page.locator("#run-button").click()
    page.wait_for_selector("#layer-stack .band-writable.writable-exited", timeout=60_000)
    assert page.locator(".container-output pre").inner_text() == "done\n"
    assert page.locator("#layer-stack .band-writable .band-status").inner_text().lower() == "exited 0"
    assert _rows(page) == {
        ("added", "/new"), ("changed", "/etc/hostname"), ("deleted", "/bin/ls"),
        ("added", "/a\\nb<img src=x onerror=alert(1)>"),
    }
    # The name is text on the page, never markup: no image was made of it, no script ran.
    assert page.locator("#layer-stack img").count() == 0 and dialogs == []
    assert "vanish when it is removed" in page.locator("#layer-stack .band-writable").inner_text()
    # The writable layer replaces the placeholder, on top of the image's top layer.
    assert page.locator("#layer-stack .band-container").is_hidden()
    top, writable = (page.locator(s).bounding_box() for s in ('#layer-stack .band[data-step="2"]',
                                                              "#layer-stack .band-writable"))
    assert top is not None and writable is not None and writable["y"] + writable["height"] <= top["y"]

    for size, name in ((LAPTOP, "laptop"), (PROJECTOR, "projector"), (PHONE, "phone")):
        page.set_viewport_size(size)
        _fits(page, "#layer-stack .band-writable", name)
        _fits(page, "#run-button", name)
        page.locator("#layer-stack .band-writable").scroll_into_view_if_needed()
        screenshot(page, f"container-layer-{name}.png")
        if name == "laptop":  # the README's picture: the build's side of the page
            page.locator(".build-pane").screenshot(path=str(ARTIFACTS / "container-lab.png"))

    # Projector mode (large text) shows the same layer, and no empty band beside it.
    page.set_viewport_size(PROJECTOR)
    page.goto(f"{base}/studio/{project_id}/?large=1")
    page.wait_for_selector("#layer-stack .band-writable.writable-exited", timeout=30_000)
    assert page.locator("#layer-stack .band-container").is_hidden()
    assert page.locator("#layer-stack .band-committed").is_hidden()
    _fits(page, "#layer-stack .band-writable", "projector, large text")
    screenshot(page, "container-layer-large-text.png")

    # Coming back, the page shows the container it left.
    page.set_viewport_size(LAPTOP)
    page.goto(f"{base}/studio/{project_id}/?large=0")
    page.wait_for_selector("#layer-stack .band-writable.writable-exited", timeout=30_000)
    assert ("deleted", "/bin/ls") in _rows(page)

    page.get_by_role("button", name="Commit as image").click()
    page.wait_for_selector("#layer-stack .band-committed:not([hidden])", timeout=30_000)
    assert page.locator("#layer-stack .band-writable").is_hidden()
    assert page.locator("#layer-stack .band-container").is_visible()  # a new container would go on top
    committed_text = page.locator("#layer-stack .band-committed").inner_text()
    assert "2 added · 1 changed · 1 deleted" in committed_text and "has 3 layers" in committed_text
    committed, placeholder, top = (page.locator(s).bounding_box() for s in (
        "#layer-stack .band-committed", "#layer-stack .band-container", '#layer-stack .band[data-step="2"]'))
    assert placeholder["y"] + placeholder["height"] <= committed["y"] < top["y"]
    for size, name in ((LAPTOP, "laptop"), (PROJECTOR, "projector"), (PHONE, "phone")):
        page.set_viewport_size(size)
        _fits(page, "#layer-stack .band-committed", name)
    page.set_viewport_size(LAPTOP)
    page.locator("#layer-stack .band-committed").scroll_into_view_if_needed()
    screenshot(page, "container-committed-laptop.png")
    # The build's own image is as it was.
    assert [store.write_layer_tar(layer, io.BytesIO()) for layer in image.layers] == before
    assert errors == []
    context.close()


def test_remove_discards_the_layer_and_a_viewer_gets_no_run_button(
    studio_server: Any, celery_worker: Any, base_image: Any, chromium: Any
) -> None:
    context = chromium.new_context(viewport=PROJECTOR)
    page = context.new_page()
    errors = watch_errors(page)
    base = studio_server.url
    project_id, build_id = _built(page, base)
    page.fill("#container-command", "echo hi > /new")
    page.locator("#run-button").click()
    page.wait_for_selector("#layer-stack .band-writable.writable-exited", timeout=60_000)
    page.get_by_role("button", name="Remove").click()
    page.wait_for_selector("#layer-stack .band-writable", state="hidden")
    assert page.locator("#layer-stack .band-container").is_visible()
    assert _get(page, f"/api/builds/{build_id}/container/") == {"container": None}

    # Someone with the share link sees the build, not a Run button.
    token = _api(page, f"/api/projects/{project_id}/share/", {})["share_token"]
    other = chromium.new_context(viewport=PROJECTOR)
    bob = other.new_page()
    sign_up(bob, base, f"bob-{uuid.uuid4().hex[:8]}")
    bob.goto(f"{base}/studio/{project_id}/?token={token}")
    bob.wait_for_selector("#project-studio[data-build-status=succeeded]", timeout=30_000)
    assert bob.locator("#run-button").is_hidden()
    assert errors == []
    other.close()
    context.close()
