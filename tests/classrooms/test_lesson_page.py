"""A lesson of the pack in real browsers: the teacher hands it out in two clicks (pick, hand
out), a student reads its text beside the studio, reads "not yet" before building, fails the
checks with the starter and passes them once fixed; the teacher's grid follows without a reload.
Screenshots of the class pages at three sizes go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from studio.classrooms import pack
from tests.classrooms.test_classroom_page import Person
from tests.pages import ARTIFACTS, page_marks

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [*page_marks("classroom.js"), pytest.mark.usefixtures("base_image", "celery_worker")]

ORDERING = pack.lesson("ordering")
assert ORDERING is not None
SIZES = {"desktop": (1440, 900), "laptop": (1280, 720), "phone": (390, 844)}


def shots(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for label, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def test_a_teacher_hands_out_a_lesson_and_a_student_fails_then_passes(
    studio_server: Any, chromium: Any
) -> None:
    base = studio_server.url
    expect = sync_api.expect
    tan = Person(chromium, base, "tan")
    classroom = tan.ok("POST", "/api/classrooms/", {"name": "Ordering lesson"})
    ana = Person(chromium, base, "ana")
    ana.ok("POST", "/api/classrooms/join/", {"code": classroom["join_code"], "display_name": "Ana"})

    # Two clicks: pick the lesson, hand it out.
    page = tan.page
    page.goto(f"{base}/classrooms/{classroom['id']}/")
    page.select_option("#lesson-choice", "ordering")
    page.get_by_role("button", name="Hand out this lesson").click()
    expect(page.locator(".exercise-summary h2")).to_have_text(ORDERING.title)
    expect(page.locator(".check-list li").first).to_have_text(
        "When the check changes app.py, at most 1 step rebuild"
    )
    page.locator("#lesson-text summary").click()
    expect(page.locator("#lesson-text .lesson-steps > li")).to_have_count(3)
    expect(page.locator("#live-state")).to_have_text("live")
    row = page.locator("#grid tbody tr", has=page.get_by_role("link", name="Ana", exact=True))
    expect(row.locator("td.checks-passed")).to_have_text("not yet")
    page.evaluate("window.neverReloaded = true")

    # The student's class page and her copy in the studio, with the lesson's text beside it.
    ana.page.goto(f"{base}/classrooms/{classroom['id']}/")
    expect(ana.page.locator(".exercise .state-word")).to_have_text("not yet checked")
    copy = int(ana.page.locator("article.exercise").get_attribute("data-project"))
    ana.page.goto(f"{base}/studio/{copy}/")
    panel = ana.page.locator("#lesson-panel")
    expect(panel.locator(".lesson-state")).to_have_text("not yet checked")
    expect(panel.locator(".lesson-steps > li").first).to_contain_text("What the starter does")
    expect(panel.locator(".check-not_yet")).to_have_count(3)

    # The starter as it is: the check's own edit of app.py rebuilds the install too.
    ana.build(copy)
    expect(row).to_have_attribute("data-status", "succeeded")
    expect(row.locator("td.checks-passed")).to_have_text("2/3")
    ana.page.reload()
    expect(panel.locator(".lesson-state")).to_have_text("a check fails")
    expect(panel.locator(".check-fail")).to_contain_text("2 steps rebuilt (at most 1 allowed)")

    # Predict, then build: she expects an edit of app.py to rebuild only the copy (step 3).
    panel.locator("#predict-form input[value='3']").check()
    ana.page.get_by_role("button", name="Save my prediction").click()
    expect(panel.locator("#predict-form legend")).to_contain_text("your next build grades it")
    ana.ok("PUT", f"/api/projects/{copy}/files/app.py", {"content": "print('edited')\n"})
    ana.build(copy)
    # The panel is rendered with the page: reloaded until the build has graded the prediction.
    for _ in range(60):
        ana.page.reload()
        if panel.locator("#prediction-grades").count():
            break
        ana.page.wait_for_timeout(500)
    expect(panel.locator("#prediction-grades caption")).to_contain_text("steps right")
    expect(panel.locator("#prediction-grades tr.grade-wrong")).to_have_count(1)
    expect(panel.locator("#prediction-grades tr.grade-wrong")).to_contain_text("the layer below it")

    # Fixed as the lesson says: the list first, the install, then the code.
    ana.ok(
        "PUT",
        f"/api/projects/{copy}/files/Dockerfile",
        {"content": (ORDERING.solution / "Dockerfile").read_text()},
    )
    ana.build(copy)
    expect(row.locator("td.checks-passed")).to_have_text("3/3")
    ana.page.reload()
    expect(panel.locator(".lesson-state")).to_have_text("every check passes")
    expect(panel.locator(".check-pass")).to_have_count(3)
    assert page.evaluate("window.neverReloaded") is True, "the grid updated without a reload"

    # The teacher's tools: the results as a file, Ana's builds in order, her copy reset.
    page.reload()
    with page.expect_download() as download:
        page.get_by_role("link", name="Export results (CSV)").click()
    exported = Path(download.value.path()).read_text()
    assert exported.splitlines()[1].startswith("Ana,") and ",passed,3,3," in exported
    page.locator(".panel", has_text="Students and class settings").locator("summary").click()
    page.get_by_role("link", name="builds in order").click()
    expect(page.locator(".build-replay li")).to_have_count(3)
    expect(page.locator(".build-replay li").first).to_contain_text("Build #1")
    shots(page, "lesson-student-builds")
    page.go_back()
    page.locator(".panel", has_text="Students and class settings").locator("summary").click()
    page.get_by_role("button", name="Reset Ana's copy to the starter").click()
    expect(page.locator("p.notice")).to_have_text("Ana's copy is the starter again.")
    expect(row.locator("td.checks-passed")).to_have_text("not yet")

    shots(page, "lesson-dashboard")
    shots(ana.page, "lesson-studio-panel")
    ana.page.goto(f"{base}/classrooms/{classroom['id']}/")
    shots(ana.page, "lesson-student")
    for who in (tan, ana):
        assert who.errors == []
        who.context.close()
