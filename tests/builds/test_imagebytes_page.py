"""Where the bytes go, as a person sees it in Chromium on a laptop (1440x900), from a projector
(1280x720) and on a phone (390x844): the layers' bytes, the wasted bytes by line with the rewrite
measured, one layer's changes and the merged tree, all inside the screen; a file name with markup
and a newline shown as text; and the way there from the studio's stack."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from tests.builds.test_imagelab_page import fits, open_tab, signed_up
from tests.conftest import Browser, StudioServer, Worker
from tests.pages import page_marks, screenshot, watch_errors
from tests.test_pages_fit import SIZES, build, ok

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.usefixtures("base_image"), *page_marks("studio.js")]

# A cache filled and emptied by a later RUN (a rewrite), a tool overwritten by a later RUN (no
# rewrite: it is written again), and a file whose name holds markup and a newline.
DOCKERFILE = """\
FROM studio/busybox:1.35
RUN mkdir -p /opt/tools /var/cache/pkgs \\
 && head -c 400000 /dev/urandom > /var/cache/pkgs/tools-{run}.tar \\
 && head -c 120000 /dev/urandom > /opt/tools/tool \\
 && printf x > "/opt/tools/<img src=x onerror=alert(1)>$(printf 'new\\nline')"
COPY app.sh /app/app.sh
RUN head -c 90000 /dev/urandom > /opt/tools/tool
RUN rm -rf /var/cache/pkgs
"""
HOSTILE = "<img src=x onerror=alert(1)>new\\nline"  # as the page writes it


@dataclass
class Scene:
    person: Browser
    project: int
    build: int


@pytest.fixture(scope="module")
def scene(studio_server: StudioServer, worker_process: Worker) -> Scene:
    person, run = signed_up(studio_server, worker_process, "bytes-page")
    made = ok(person.api("POST", "/api/projects/", {"name": f"bytes-{run}",
                                                    "dockerfile": DOCKERFILE.format(run=run)}), 201)
    ok(person.api("PUT", f"/api/projects/{made['id']}/files/app.sh", {"content": f"echo {run}\n"}))
    build_id = build(person, int(made["id"]))
    started = person.api("POST", f"/api/builds/{build_id}/bytes/rewrite/", {"adder_line": 2, "hider_line": 8})
    assert started.status == 202, started.text
    deadline = time.monotonic() + 120
    while (measure := ok(person.get(f"/api/builds/{build_id}/bytes/"))["hidings"][0]["measure"])[
            "status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, "the rewrite was not measured"
        time.sleep(0.5)
    assert measure["status"] == "done", measure
    return Scene(person, int(made["id"]), build_id)


@pytest.mark.parametrize("size_name", list(SIZES))
def test_the_bytes_page_fits_and_shows_the_waste_by_line(
    studio_server: StudioServer, chromium: Any, scene: Any, size_name: str
) -> None:
    tab = open_tab(chromium, studio_server, scene, f"/builds/{scene.build}/bytes/", SIZES[size_name])
    errors = watch_errors(tab)
    tab.wait_for_selector("#bytes[data-ready=true]")
    tab.locator(".waste-files summary").click()
    for name in ("opt/", "tools/"):
        tab.locator(".tree-dir > details > summary", has_text=name).first.click()
    problems = fits(tab, [".site-header nav", ".bytes-totals", ".bytes-layer", ".bytes-bar", ".hiding",
                          ".rewrite-diff pre", ".rewrite-result", ".waste-files table",
                          ".bytes-one-layer table", ".bytes-tree .tree", ".tree-row", ".tree summary"],
                    [".images-total", ".hiding-what", ".tree-size", ".bytes-layer-facts"])
    screenshot(tab, f"image-bytes-{size_name}.png", full_page=True)
    screenshot(tab, f"image-bytes-{size_name}-top.png")
    if size_name == "projector":  # the README's picture: the totals, the layers and the waste by line
        tab.evaluate("window.scrollTo(0, 0)")
        bottom = tab.locator(".hiding").nth(1).bounding_box()
        screenshot(tab, "image-bytes.png", full_page=True,
                   clip={"x": 0, "y": 0, "width": 1280, "height": bottom["y"] + bottom["height"] + 16})
    assert problems == [] and errors == [], (problems, errors)

    # Two hidings, biggest first: the emptied cache (with its rewrite, measured), then the tool
    # written again (no rewrite: overwritten).
    hidings = tab.locator(".hiding")
    assert hidings.count() == 2
    first, second = (hidings.nth(n).inner_text().replace("\xa0", " ") for n in (0, 1))
    assert "390.6 KB in 1 file (deleted)" in first and "line 2" in first and "line 8" in first
    assert "Saves 390.6 KB" in first and "measured" in first.lower()
    assert "117.2 KB in 1 file (overwritten)" in second and "line 7" in second
    assert "No rewrite: line 7 writes these paths again" in second
    # The hostile name is text: its markup no element, its newline written out.
    assert tab.locator(".bytes-page img").count() == 0
    names = tab.locator(".tree-name").all_inner_texts()
    assert HOSTILE in names, names
    tab.context.close()


def test_the_studio_links_a_built_stack_to_its_bytes(
    studio_server: StudioServer, chromium: Any, scene: Any
) -> None:
    studio = f"/studio/{scene.project}/?build={scene.build}"
    tab = open_tab(chromium, studio_server, scene, studio, SIZES["laptop"])
    errors = watch_errors(tab)
    link = tab.locator("#bytes-link a")
    link.wait_for(state="visible")
    link.click()
    tab.wait_for_selector("#bytes[data-ready=true]")
    assert tab.url.endswith(f"/builds/{scene.build}/bytes/")
    assert errors == [], errors
    tab.context.close()
