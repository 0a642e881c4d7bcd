"""The image lab as a person sees it in Chromium, on a laptop (1440x900), from a projector
(1280x720) and on a phone (390x844): their images as stacks of layers with the shared ones
marked, the squash measured, and the compare page marking the layers two builds share. Nothing
wider than the screen; the parts the page is about on it."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Browser, StudioServer, Worker
from tests.pages import page_marks, screenshot, watch_errors
from tests.test_pages_fit import MEASURE, SIZES, build, ok

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.usefixtures("base_image"), *page_marks("compare.js")]

DOCKERFILE = """\
FROM studio/busybox:1.35
RUN head -c {size} /dev/urandom > /{who}-tools.bin
COPY app.sh /app/app.sh
"""
# A hostile project name: markup, a long unbroken word; it must show as text, inside the page.
NAME = "<b>x</b>-a-project-name-long-enough-to-overflow-a-phone-screen-if-nothing-wraps-{run}"


@dataclass
class Scene:
    person: Browser
    builds: list[int]


def signed_up(server: StudioServer, worker: Worker, prefix: str) -> tuple[Browser, str]:
    """A new person, signed up with a name of its own (and the worker up for their builds)."""
    if not worker.running:
        worker.start()
    run = uuid.uuid4().hex[:6]
    person = Browser(server.url)
    person.sign_up(f"{prefix}-{run}")
    return person, run


@pytest.fixture(scope="module")
def scene(studio_server: StudioServer, worker_process: Worker) -> Scene:
    person, run = signed_up(studio_server, worker_process, "lab-page")
    builds = []
    for n, size in enumerate((300000, 120000)):
        name = NAME.format(run=run) if n == 0 else f"second-{run}"
        made = ok(person.api("POST", "/api/projects/", {"name": name, "dockerfile": DOCKERFILE.format(
            size=size, who=run)}), 201)
        ok(person.api("PUT", f"/api/projects/{made['id']}/files/app.sh", {"content": f"echo {run}\n"}))
        builds.append(build(person, int(made["id"])))
    started = person.api("POST", f"/api/builds/{builds[0]}/squash/", {"file": "app.sh"})
    assert started.status == 202, started.text
    deadline = time.monotonic() + 120
    while ok(person.get(f"/api/builds/{builds[0]}/squash/"))["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, "the measure did not finish"
        time.sleep(0.5)
    return Scene(person, builds)


def open_tab(chromium: Any, server: StudioServer, scene: Scene, path: str, size: tuple[int, int]) -> Any:
    context = chromium.new_context(viewport={"width": size[0], "height": size[1]})
    context.add_cookies([{"name": c.name, "value": c.value, "url": server.url} for c in scene.person.cookies])
    tab = context.new_page()
    tab.goto(server.url + path)
    return tab


def fits(tab: Any, keys: list[str], whole: list[str]) -> list[str]:
    seen = tab.evaluate(MEASURE, [keys, whole])
    problems = []
    if seen["scrollWidth"] > seen["innerWidth"]:
        problems.append(f"{seen['scrollWidth']} px wide in {seen['innerWidth']}: {seen['wide']}")
    if seen["outside"]:
        problems.append(f"off the screen: {seen['outside']}")
    if seen["cut"]:
        problems.append(f"cut short: {seen['cut']}")
    return problems


@pytest.mark.parametrize("size_name", list(SIZES))
def test_the_images_page_draws_shared_layers_and_the_measured_squash(
    studio_server: StudioServer, chromium: Any, scene: Scene, size_name: str
) -> None:
    tab = open_tab(chromium, studio_server, scene, f"/images/?build={scene.builds[0]}", SIZES[size_name])
    errors = watch_errors(tab)
    tab.wait_for_selector("#squash-result .variant.squashed")
    problems = fits(tab, [".site-header nav", ".images-totals", ".image-bar", ".images-layers table",
                          ".squash-form button", ".variant.layered", ".variant.squashed"], [".images-total"])
    screenshot(tab, f"imagelab-{size_name}.png", full_page=True)
    assert problems == [] and errors == [], (problems, errors)
    # Both own images are drawn, named as text (the markup in a name is not markup), the base
    # layer striped as shared in each.
    own = tab.locator(".image-row.own")
    assert own.count() == 2
    names = own.locator(".image-name strong").all_inner_texts()
    assert any(name.startswith("<b>x</b>-a-project") for name in names), names
    assert any(name.startswith("second-") for name in names), names
    assert tab.locator(".image-name b").count() == 0
    assert own.first.locator("rect[fill^='url(#stripes']").count() >= 1
    # The measure: four figures, each marked measured; the layered push the smaller.
    assert tab.locator("#squash-result .measured").count() == 4
    sent = tab.locator(".variant dd").all_inner_texts()
    assert any("layer)" in text for text in sent)
    tab.get_by_role("link", name="Images").click()
    tab.wait_for_selector(".images-totals")
    tab.context.close()


@pytest.mark.parametrize("size_name", list(SIZES))
def test_the_compare_page_marks_the_layers_two_builds_share(
    studio_server: StudioServer, chromium: Any, scene: Scene, size_name: str
) -> None:
    # The same project built again after an edit to app.sh: the RUN's layer is shared.
    second_project = ok(scene.person.get(f"/api/builds/{scene.builds[1]}/"))["project"]
    ok(scene.person.api("PUT", f"/api/projects/{second_project}/files/app.sh", {"content": "echo edited\n"}))
    again = build(scene.person, second_project)
    tab = open_tab(chromium, studio_server, scene, f"/compare/{scene.builds[1]}/{again}/", SIZES[size_name])
    errors = watch_errors(tab)
    tab.wait_for_selector("#compare[data-ready=true]")
    shared = tab.locator(".cmp-row.shared-layer")
    assert shared.count() == 2
    assert shared.nth(0).locator(".cmp-shared").inner_text() == "shared base"
    assert "RUN head -c 120000" in shared.nth(1).inner_text()
    assert shared.nth(1).locator(".cmp-shared").inner_text() == "shared layer"
    problems = fits(tab, [".cmp-summary", ".cmp-row.shared-layer .cmp-shared"], [".cmp-mid"])
    shared.nth(1).scroll_into_view_if_needed()
    screenshot(tab, f"imagelab-compare-{size_name}.png")
    assert problems == [] and errors == [], (problems, errors)
    tab.context.close()
