"""The compare page in a real browser against the real studio: a person builds a project, edits
app.py (and adds a step), builds again, opens the two builds side by side, and reads where and why
the second one parted from the first, down to the file."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import Browser, StudioServer
from tests.pages import ARTIFACTS, page_marks

pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.usefixtures("base_image", "celery_worker"), *page_marks("compare.js")]

DOCKERFILE = """\
FROM studio/busybox:1.35
WORKDIR /app
COPY requirements.txt ./
RUN cat requirements.txt > installed.txt
COPY app.py ./
RUN wc -c app.py > size.txt
CMD ["cat", "app.py"]
"""
WITH_TESTS = DOCKERFILE.replace("CMD [", "RUN grep -q print app.py && echo ok > tested.txt\nCMD [")


def put(browser: Browser, project_id: int, path: str, content: str) -> None:
    reply = browser.api("PUT", f"/api/projects/{project_id}/files/{path}", {"content": content})
    assert reply.status == 200, reply.text


def build_and_wait(browser: Browser, project_id: int) -> int:
    started = browser.api("POST", f"/api/projects/{project_id}/builds/", {})
    assert started.status == 202, started.text
    build_id: int = started.json()["id"]
    deadline = time.monotonic() + 60
    while True:
        build = browser.get(f"/api/builds/{build_id}/").json()
        if build["status"] not in ("queued", "running"):
            assert build["status"] == "succeeded", build
            return build_id
        assert time.monotonic() < deadline, f"build {build_id} did not finish"
        time.sleep(0.2)


def signed_in_page(chromium: Any, server: StudioServer, browser: Browser) -> Any:
    context = chromium.new_context(viewport={"width": 1440, "height": 1000})
    context.add_cookies([{"name": c.name, "value": c.value, "url": server.url} for c in browser.cookies])
    return context.new_page()


def test_the_page_marks_the_copy_of_the_edited_file_as_the_first_divergence_and_names_the_file(
    studio_server: StudioServer, browser: Browser, chromium: Any
) -> None:
    browser.sign_up("carol-compare")
    made = browser.api("POST", "/api/projects/", {"name": "greeter", "dockerfile": DOCKERFILE})
    assert made.status == 201, made.text
    project_id = made.json()["id"]
    put(browser, project_id, "requirements.txt", "flask==3.0\n")
    put(browser, project_id, "app.py", "print('hello')\n")
    first = build_and_wait(browser, project_id)
    put(browser, project_id, "app.py", "print('hello, class')\n")
    put(browser, project_id, "Dockerfile", WITH_TESTS)
    second = build_and_wait(browser, project_id)

    page = signed_in_page(chromium, studio_server, browser)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    # From the picker, as a person would get there.
    page.goto(f"{studio_server.url}/compare/")
    page.get_by_label("First build").select_option(str(first))
    page.get_by_label("Second build").select_option(str(second))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compare-picker.png"), full_page=True)
    page.get_by_role("button", name="Compare").click()
    page.wait_for_selector("#compare[data-ready=true]", timeout=15_000)
    assert page.url == f"{studio_server.url}/compare/{first}/{second}/"

    parted = page.locator(".cmp-row.first-divergence")
    assert parted.count() == 1
    assert "COPY app.py ./" in parted.locator(".side-b .cmp-instruction").inner_text()
    assert "first divergence" in parted.locator(".cmp-mid").inner_text()
    reason = parted.locator(".side-b .cmp-reason").inner_text()
    assert "app.py was changed" in reason, reason
    callout = page.locator(".cmp-divergence").inner_text()
    assert "COPY app.py ./" in callout and "The files it copies differ: app.py changed" in callout
    # Above it both builds shared the cache, and the page says so.
    above = page.locator(".cmp-row[data-row='2']")
    assert above.locator(".cmp-key").inner_text() == "="
    assert above.locator(".side-b .cmp-status").inner_text().lower() == "cached"
    added = page.locator(".cmp-row.kind-added")
    assert added.count() == 1 and "not in build A" in added.locator(".side-a").inner_text()
    assert "3 of 6 steps" in page.locator(".cmp-card", has_text="Cache hits").inner_text()

    parted.click()
    detail = page.locator(".cmp-detail")
    detail.locator("table").first.wait_for(timeout=10_000)
    context_files = detail.locator(".cmp-detail-part", has_text="Context files").inner_text()
    assert "app.py" in context_files and "changed" in context_files
    assert "print('hello, class')" in context_files
    assert "app/app.py" in detail.locator(".cmp-detail-part", has_text="Layer files").inner_text()
    linked = page.locator(".cmp-line.linked")
    assert linked.count() == 1 and "COPY app.py ./" in linked.inner_text()

    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)

    # And the other way: a Dockerfile line selects its row.
    page.locator(".cmp-line", has_text="RUN grep -q print app.py").click()
    selected = page.locator(".cmp-row.selected")
    assert "RUN grep -q print app.py" in selected.inner_text()
    assert "only in B" in selected.locator(".cmp-mid").inner_text()
    assert errors == []
    page.context.close()

    # Someone else may not see carol's private builds: the page does not exist for them.
    stranger = Browser(studio_server.url)
    stranger.sign_up("dave-compare")
    assert stranger.get(f"/compare/{first}/{second}/").status == 404
    assert stranger.get(f"/api/compare/{first}/{second}/").status == 404
