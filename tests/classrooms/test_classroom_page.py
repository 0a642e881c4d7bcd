"""A lesson in real browsers: Mrs Tan and three students, each in their own Chromium context,
against the real studio (worker, Redis, websockets). The students join with the code, get the
exercise, build; the teacher's grid follows every build without a reload, the checks pass and
fail as each student's Dockerfile deserves, and no student gets into another's build."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from tests.classrooms.test_classrooms import FIXED, STARTER
from tests.pages import ARTIFACTS, page_marks, sign_up

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [*page_marks("classroom.js"), pytest.mark.usefixtures("base_image", "celery_worker")]

BROKEN = STARTER.replace("RUN cat app.py > out.txt", "RUN cat missing.py > out.txt")


class Person:
    """One person's browser context and page."""

    def __init__(self, browser: Any, base: str, name: str) -> None:
        self.base = base
        self.username = f"{name}-{uuid.uuid4().hex[:6]}"
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        sign_up(self.page, base, self.username)
        self.page.wait_for_selector(f"text=Signed in as {self.username}")

    def api(self, method: str, path: str, payload: Any = None) -> Any:
        token = next(c["value"] for c in self.context.cookies() if c["name"] == "csrftoken")
        reply = self.context.request.fetch(
            self.base + path,
            method=method,
            data=json.dumps(payload) if payload is not None else None,
            headers={"X-CSRFToken": token, "Content-Type": "application/json", "Origin": self.base},
        )
        return reply.status, (reply.json() if reply.body() else None)

    def ok(self, method: str, path: str, payload: Any = None) -> Any:
        status, body = self.api(method, path, payload)
        assert status < 300, (status, body)
        return body

    def build(self, project: int) -> int:
        return int(self.ok("POST", f"/api/projects/{project}/builds/", {})["id"])


def test_a_lesson_with_a_teacher_and_three_students(studio_server: Any, chromium: Any) -> None:
    base = studio_server.url
    expect = sync_api.expect
    tan = Person(chromium, base, "tan")
    lesson = uuid.uuid4().hex[:8]  # this run's own files: the store's cache is shared
    starter = tan.ok("POST", "/api/projects/", {"name": "cache lesson", "dockerfile": STARTER})["id"]
    for path, content in {
        "app.py": f"print('{lesson}')\n",
        "requirements.txt": f"flask # {lesson}\n",
    }.items():
        tan.ok("PUT", f"/api/projects/{starter}/files/{path}", {"content": content})

    # The teacher creates the class and hands out the exercise from her pages.
    page = tan.page
    page.goto(f"{base}/classrooms/")
    page.fill("#class-name", "Caching 101")
    page.get_by_role("button", name="Create class").click()
    code = page.locator("#join-code").inner_text()
    join_link = page.locator(".join-link").get_attribute("href")
    assert join_link and join_link.endswith(f"/classrooms/join/{code}/")
    page.fill("input[name=title]", "Keep the cache warm")
    page.select_option("select[name=project]", label="cache lesson")
    page.fill("input[name=change_file]", "app.py")
    page.fill("input[name=change_max]", "2")
    page.fill("input[name=max_layers]", "6")
    page.fill("input[name=absent_path]", "/opt/compiler")
    page.get_by_role("button", name="Hand it out").click()
    expect(page.locator(".exercise-summary h2")).to_have_text("Keep the cache warm")
    expect(page.locator("#live-state")).to_have_text("live")
    page.evaluate("window.neverReloaded = true")

    # Three students join from the link, each in their own browser.
    students = {}
    for name in ("Ana", "Ben", "Cat"):
        who = Person(chromium, base, name.lower())
        who.page.goto(join_link)
        expect(who.page.locator("#join-code")).to_have_value(code)
        who.page.fill("#display-name", name)
        who.page.get_by_role("button", name="Join").click()
        expect(who.page.locator(".exercise h2")).to_have_text("Keep the cache warm")
        expect(who.page.locator(".check-not_yet")).to_have_count(3)
        copy = int(who.page.locator("article.exercise").get_attribute("data-project"))
        assert who.page.locator("a.open-copy").get_attribute("href") == f"/studio/{copy}/"
        students[name] = (who, copy)

    rows = page.locator("#grid tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#grid tbody tr td.build-status")).to_have_text(["not built"] * 3)

    ana, ana_copy = students["Ana"]
    ben, ben_copy = students["Ben"]
    cat, cat_copy = students["Cat"]

    def row(name: str) -> Any:
        return page.locator("#grid tbody tr", has=page.get_by_role("link", name=name, exact=True))

    # Ana builds the starter as it is, then changes app.py: everything after COPY . . rebuilds.
    ana.build(ana_copy)
    expect(row("Ana")).to_have_attribute("data-status", "succeeded")
    ana.ok("PUT", f"/api/projects/{ana_copy}/files/app.py", {"content": f"print('ana {lesson}')\n"})
    ana_build = ana.build(ana_copy)
    expect(row("Ana")).to_have_attribute("data-build", str(ana_build))
    expect(row("Ana")).to_have_attribute("data-status", "succeeded")
    expect(row("Ana").locator("td.cell")).to_have_count(6)
    expect(row("Ana").locator("td.cell.status-built")).to_have_count(3)

    # Ben moves COPY of app.py late and deletes the compiler: two steps rebuild after his edit.
    ben.ok("PUT", f"/api/projects/{ben_copy}/files/Dockerfile", {"content": FIXED})
    ben.build(ben_copy)
    expect(row("Ben")).to_have_attribute("data-status", "succeeded")
    ben.ok("PUT", f"/api/projects/{ben_copy}/files/app.py", {"content": f"print('ben {lesson}')\n"})
    ben_build = ben.build(ben_copy)
    expect(row("Ben")).to_have_attribute("data-build", str(ben_build))
    expect(row("Ben")).to_have_attribute("data-status", "succeeded")
    expect(row("Ben").locator("td.cell.status-built")).to_have_count(2)

    # Cat's RUN fails: her row says so, cell by cell.
    cat.ok("PUT", f"/api/projects/{cat_copy}/files/Dockerfile", {"content": BROKEN})
    cat.build(cat_copy)
    expect(row("Cat")).to_have_attribute("data-status", "failed")
    expect(row("Cat").locator("td.cell.status-failed")).to_have_count(1)

    assert page.evaluate("window.neverReloaded") is True, "the grid updated without a reload"
    expect(row("Ben").locator("td.checks-passed")).to_have_text("3/3")
    expect(row("Ana").locator("td.checks-passed")).to_have_text("1/3")
    # The share of the steps the cache could serve, from the same counts as the build's own page.
    assert re.fullmatch(r"\d+%", row("Ana").locator("td.hit-ratio").inner_text())

    # Each student sees their own checks and why, updated as their builds end.
    expect(ben.page.locator(".check-pass")).to_have_count(3)
    expect(ben.page.locator(".check-pass").first).to_contain_text("2 steps rebuilt (at most 2 allowed)")
    ana_checks = ana.page.locator(".check")
    expect(ana_checks.nth(0)).to_have_class("check check-fail")
    expect(ana_checks.nth(0)).to_contain_text("but 3 steps rebuilt (at most 2 allowed): COPY . . (line 3)")
    expect(ana_checks.nth(2)).to_contain_text("still holds /opt/compiler")
    expect(cat.page.locator(".check-not_yet")).to_have_count(3)

    # The teacher picks two students to compare, and opens a student's build.
    assert page.locator("#compare-link").get_attribute("aria-disabled") == "true"
    row("Ana").locator("input[type=checkbox]").check()
    row("Ben").locator("input[type=checkbox]").check()
    expect(page.locator("#compare-link")).to_have_attribute("href", f"/compare/{ana_build}/{ben_build}/")
    assert (
        row("Ben").get_by_role("link", name="Ben").get_attribute("href")
        == f"/studio/{ben_copy}/?build={ben_build}"
    )
    status, body = tan.api("GET", f"/api/builds/{ben_build}/")
    assert status == 200 and body["status"] == "succeeded"
    compared = tan.context.new_page()
    assert compared.goto(f"{base}/compare/{ana_build}/{ben_build}/").status == 200
    compared.close()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "classroom-dashboard.png"), full_page=True)
    ben.page.screenshot(path=str(ARTIFACTS / "classroom-student.png"), full_page=True)

    # Ana cannot get into Ben's build: not by the API, not by its socket, not by the page.
    classroom_id = page.locator("#classroom-dashboard").get_attribute("data-classroom")
    assert ana.api("GET", f"/api/builds/{ben_build}/")[0] == 404
    assert ana.api("GET", f"/api/projects/{ben_copy}/files/Dockerfile")[0] == 404
    opened = ana.page.evaluate(
        """(url) => new Promise((resolve) => {
            const ws = new WebSocket(url);
            ws.onmessage = () => resolve("got an event");
            ws.onclose = () => resolve("closed");
        })""",
        f"{base.replace('http', 'ws')}/ws/builds/{ben_build}/",
    )
    assert opened == "closed"
    assert ana.page.goto(f"{base}/studio/{ben_copy}/?build={ben_build}").status == 404
    assert ana.page.goto(f"{base}/classrooms/{classroom_id}/").status == 200
    assert "Ben" not in ana.page.locator("main").inner_text()
    assert ana.api("GET", f"/api/classrooms/{classroom_id}/dashboard/")[0] == 404

    # The teacher opens Ben's build from the grid (to read, not to change), then presents her
    # own project in large text for the projector.
    row("Ben").get_by_role("link", name="Ben").click()
    expect(page).to_have_url(f"{base}/studio/{ben_copy}/?build={ben_build}")
    expect(page.locator("#project-studio")).to_have_attribute("data-can-edit", "false")
    page.go_back()
    page.get_by_role("link", name="Present the starter (large text)").click()
    expect(page).to_have_url(f"{base}/studio/{starter}/?large=1")
    expect(page.locator("html")).to_have_class(re.compile("large-text"))
    expect(page.locator("#project-studio")).to_have_attribute("data-can-edit", "true")
    page.screenshot(path=str(ARTIFACTS / "classroom-present.png"))

    for who in (tan, ana, ben, cat):
        assert who.errors == []
        who.context.close()
