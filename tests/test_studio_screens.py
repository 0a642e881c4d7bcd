"""The studio on the screens it is used on, in a real browser against the real server and worker:
a laptop (1440x900), a classroom projector (1280x720) and a phone (390x844). What is asserted is
where things are, not only that they exist: the inspector's box inside the window, the stack and
the Dockerfile side by side, instructions read whole, no sideways scrolling."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .pages import page_marks, screenshot, sign_up, watch_errors
from .test_studio_page import _api

pytest.importorskip("playwright.sync_api")
pytestmark = page_marks("studio.js")

LAPTOP = {"width": 1440, "height": 900}
PROJECTOR = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}

# The echo makes the steps this test's own, so no earlier build serves them from the cache and
# the sleep is a step the page can be watched running.
SINGLE = """\
FROM busybox:latest
WORKDIR /srv
RUN echo {who} > /srv/id
RUN sleep 3 && echo slept > /srv/slept
ENV MODE=lesson
CMD ["cat", "/srv/id"]
"""

FOUR_STAGES = """\
FROM busybox:latest AS compile
RUN echo {who} > /compiled.txt
FROM busybox:latest AS assets
RUN echo css > /site.css && echo js > /site.js
FROM busybox:latest AS manual
RUN echo manual > /manual.txt
FROM busybox:latest
COPY --from=compile /compiled.txt /app/compiled.txt
COPY --from=assets /site.css /site.js /app/static/
COPY --from=manual /manual.txt /app/docs/manual.txt
CMD ["cat", "/app/compiled.txt"]
"""

IN_VIEW = """sel => {
  const e = document.querySelector(sel);
  if (!e || e.hidden) return false;
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth;
}"""

NO_SIDEWAYS = "() => document.documentElement.scrollWidth <= innerWidth"
# What sticks out past the window's right edge, named for the message when the page does.
WIDER = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > innerWidth + 1)
  .slice(0, 5).map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not shown"
    return box


def _inside(page: Any, selector: str) -> bool:
    return bool(page.evaluate(IN_VIEW, selector))


def _new_project(page: Any, base: str, dockerfile: str) -> int:
    sign_up(page, base, f"screens-{uuid.uuid4().hex[:8]}")  # the live database is shared
    project_id: int = _api(page, "/api/projects/", {"name": "screens", "dockerfile": dockerfile})["id"]
    return project_id


def _open(page: Any, base: str, project_id: int, query: str = "") -> None:
    page.goto(f"{base}/studio/{project_id}/{query}")
    page.wait_for_selector("#project-studio[data-ready=true]")


def test_the_stack_the_editor_and_the_inspector_are_on_screen_at_every_size(
    studio_server, celery_worker, base_image, chromium
) -> None:
    context = chromium.new_context(viewport=PROJECTOR)
    page = context.new_page()
    errors = watch_errors(page)
    base = studio_server.url
    project_id = _new_project(page, base, SINGLE.format(who=uuid.uuid4().hex[:10]))
    _open(page, base, project_id)
    assert page.locator("#build-caption").inner_text() == "No build yet: press Build."

    # While it builds, the band being made stays in the window, though she had scrolled away.
    page.locator("#build-button").click()
    page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
    page.wait_for_selector('#layer-stack .band.status-running[data-step="4"]', timeout=60_000)
    page.wait_for_function(IN_VIEW, arg='#layer-stack .band.status-running[data-step="4"]', timeout=5_000)
    page.wait_for_selector("#project-studio[data-build-status=succeeded]", timeout=60_000)
    build_id = page.locator("#project-studio").get_attribute("data-build")

    # Coming back, the project opens on its latest build, and the history marks it.
    _open(page, base, project_id)
    page.wait_for_selector("#project-studio[data-build-status=succeeded]", timeout=30_000)
    assert page.locator("#project-studio").get_attribute("data-build") == build_id
    assert page.locator("#build-caption").inner_text().startswith("Build #1")
    assert page.locator(f'.history-table tr.current[data-build="{build_id}"]').count() == 1
    assert f"build={build_id}" in page.url

    for size, name in ((LAPTOP, "laptop"), (PROJECTOR, "projector"), (PHONE, "phone")):
        page.set_viewport_size(size)
        band = '#layer-stack .band[data-step="3"]'
        # A click on a band: the inspector opens inside the window, whatever was scrolled.
        page.locator(band).scroll_into_view_if_needed()
        page.locator(band).click()
        page.wait_for_selector(
            "#inspector:not([hidden]) .layer-files, #inspector:not([hidden]) .inspector-section p"
        )
        assert _inside(page, "#inspector"), f"{name}: the inspector is outside the window"
        assert _inside(page, "#inspector .inspector-instruction"), name
        if size["width"] >= 1280:
            # Beside the Dockerfile: the lit lines and the inspector are both to be seen.
            editor, inspector = _box(page, ".cm-editor"), _box(page, "#inspector")
            assert editor["x"] + editor["width"] * 0.6 <= inspector["x"], name
        screenshot(page, f"studio-inspector-{name}.png")
        # Escape closes it and the band has the focus again.
        page.keyboard.press("Escape")
        page.wait_for_selector("#inspector[hidden]", state="attached")
        assert page.evaluate("() => document.activeElement.dataset.step") == "3", name
        # Enter on the focused band opens it again, in view.
        page.keyboard.press("Enter")
        page.wait_for_selector("#inspector:not([hidden])")
        assert _inside(page, "#inspector"), f"{name}: Enter opened the inspector outside the window"
        page.keyboard.press("Escape")
        page.wait_for_selector("#inspector[hidden]", state="attached")
        assert page.evaluate(NO_SIDEWAYS), f"{name}: the page scrolls sideways: {page.evaluate(WIDER)}"

    # Projector mode: the Dockerfile and the stack side by side at 1280x720, in large type.
    page.set_viewport_size(PROJECTOR)
    _open(page, base, project_id, "?large=1")
    page.wait_for_selector("#project-studio[data-build-status=succeeded]", timeout=30_000)
    editor, stack = _box(page, ".cm-editor"), _box(page, "#layer-stack .stacks")
    assert editor["x"] + editor["width"] <= stack["x"], "the editor and the stack stand side by side"
    assert editor["y"] < 250 and stack["y"] < 250, "both start near the top of the window"
    bands = page.locator("#layer-stack .band[data-step]")
    shown = sum(_inside(page, f'#layer-stack .band[data-step="{n}"]') for n in range(1, bands.count() + 1))
    screenshot(page, "studio-projector.png")
    assert shown == bands.count(), f"only {shown} of {bands.count()} bands on the projector"
    size = page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('.band-instruction')).fontSize)"
    )
    assert size >= 20, f"instructions in {size}px type cannot be read from the back row"
    # The teacher's cursor on the RUN line lights that line and its band.
    page.locator(".cm-line", has_text="sleep 3").click()
    page.wait_for_selector('#layer-stack .band.selected[data-step="4"]')
    assert _inside(page, '#layer-stack .band.selected[data-step="4"]')
    assert "sleep 3" in page.locator(".cm-activeLine").inner_text()
    lit = page.evaluate("() => getComputedStyle(document.querySelector('.cm-activeLine')).backgroundColor")
    assert lit not in ("rgba(0, 0, 0, 0)", "transparent"), lit
    screenshot(page, "studio-projector.png")

    # A phone: one column, the stack first, the editor when asked for; never wider than the screen.
    page.set_viewport_size(PHONE)
    _open(page, base, project_id, "?large=0")
    page.wait_for_selector("#project-studio[data-build-status=succeeded]", timeout=30_000)
    assert page.evaluate(NO_SIDEWAYS), "the studio is wider than the phone"
    assert page.locator("#editor-pane").is_hidden()
    stack = _box(page, "#layer-stack .stacks")
    assert stack["x"] >= 0 and stack["x"] + stack["width"] <= PHONE["width"]
    assert stack["y"] < PHONE["height"] / 2, "the stack comes first"
    screenshot(page, "studio-phone.png")
    page.get_by_role("button", name="Edit the files").click()
    assert page.locator("#editor-pane").is_visible()
    assert _box(page, "#editor-pane")["y"] > stack["y"]
    assert page.evaluate(NO_SIDEWAYS), "the open editor is wider than the phone"
    screenshot(page, "studio-phone-editor.png", full_page=True)
    assert errors == []
    context.close()


def test_four_stages_are_read_whole_and_only_the_image_gets_a_container_layer(
    studio_server, celery_worker, base_image, chromium
) -> None:
    context = chromium.new_context(viewport=PROJECTOR)
    page = context.new_page()
    errors = watch_errors(page)
    base = studio_server.url
    project_id = _new_project(page, base, FOUR_STAGES.format(who=uuid.uuid4().hex[:10]))
    _open(page, base, project_id)
    page.locator("#build-button").click()
    page.wait_for_selector("#project-studio[data-build-status=succeeded]", timeout=60_000)

    for size, name in ((PROJECTOR, "projector"), (LAPTOP, "laptop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.wait_for_timeout(200)  # the arrows are drawn again once the columns moved
        stacks = page.locator("#layer-stack .stack")
        assert [stacks.nth(i).get_attribute("data-stage") for i in range(4)] == [
            "compile",
            "assets",
            "manual",
            "3",
        ]
        screenshot(page, f"studio-multi-stage-{name}.png", full_page=True)
        pane = _box(page, "#layer-stack .stacks")
        for i in range(4):
            column = stacks.nth(i).bounding_box()
            assert (
                column["x"] >= pane["x"] - 1
                and column["x"] + column["width"] <= pane["x"] + pane["width"] + 1
            ), f"{name}: stage {i} is cut off"
        cut = page.evaluate(
            """() => [...document.querySelectorAll('#layer-stack .band-instruction')]
                 .filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)
                 .map(e => e.textContent)"""
        )
        assert cut == [], f"{name}: instructions cut short: {cut}"
        narrowest = page.evaluate(
            "() => Math.min(...[...document.querySelectorAll('#layer-stack .band-instruction')]"
            ".map(e => e.clientWidth))"
        )
        assert narrowest >= 150, f"{name}: an instruction has only {narrowest}px"
        assert page.locator(".stage-arrows path.stage-arrow").count() == 3, "an arrow for every COPY --from"
        # The writable layer belongs to the image that runs, not to the stages it copies from.
        assert page.locator("#layer-stack .band-container").count() == 1
        assert page.locator('#layer-stack .stack[data-stage="3"] .band-container').count() == 1
        assert page.evaluate(NO_SIDEWAYS), f"{name}: the page scrolls sideways: {page.evaluate(WIDER)}"
        screenshot(page, f"studio-multi-stage-{name}.png", full_page=True)
    assert errors == []
    context.close()


def test_the_owner_makes_copies_and_revokes_the_read_only_link(studio_server, chromium) -> None:
    context = chromium.new_context(viewport=LAPTOP)
    base = studio_server.url
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = context.new_page()
    errors = watch_errors(page)
    project_id = _new_project(page, base, SINGLE.format(who="share"))
    _open(page, base, project_id)

    page.locator("#share summary").click()
    page.get_by_role("button", name="Make a read-only link").click()
    page.wait_for_selector("#share[data-shared=true]")
    link = page.locator("#share-link").input_value()
    assert link.startswith(f"{base}/studio/{project_id}/?token=")
    assert page.evaluate("() => navigator.clipboard.readText()") == link
    assert _inside(page, ".share-body")
    screenshot(page, "studio-share.png")

    viewer = chromium.new_context(viewport=PHONE)
    other = viewer.new_page()
    sign_up(other, base, f"viewer-{uuid.uuid4().hex[:8]}")
    other.goto(link)
    other.wait_for_selector("#project-studio[data-ready=true]")
    assert other.locator("#build-button").is_disabled()
    assert other.locator("#share").count() == 0, "only the owner is offered the link"
    # On the viewer's phone the files are shown on demand, not offered for editing.
    assert other.get_by_role("button", name="Show the files").is_visible()
    assert other.evaluate(NO_SIDEWAYS)

    page.get_by_role("button", name="Revoke the link").click()
    page.wait_for_selector("#share[data-shared=false]")
    assert "Revoked" in page.locator(".share-status").inner_text()
    assert other.goto(link).status == 404
    # The owner's page says the same after a reload: no link.
    _open(page, base, project_id)
    page.locator("#share summary").click()
    assert page.get_by_role("button", name="Make a read-only link").is_visible()
    viewer.close()
    assert errors == []
    context.close()
