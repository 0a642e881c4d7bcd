"""A class of three in real browsers: Mrs Tan hands out two lessons of the pack in two clicks
each; Ana, Ben and Cy, each in their own Chromium context, fail the checks with the starters and
pass them once fixed. Ana predicts before her first build (the form offers the steps of her
Dockerfile as it is, no build needed) and the build grades it; the teacher's accuracy per step
and "what the class got wrong" follow without a reload, grouping Ana and Ben, who keep the same
mistake; copies read "checking…" while the checks build; the CSV holds what the grid shows; the
anonymised example fits a projector. Screenshots go to test-artifacts/."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from studio.classrooms import pack
from tests.classrooms.test_classroom_page import Person
from tests.pages import ARTIFACTS, page_marks

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [*page_marks("classroom.js"), pytest.mark.usefixtures("base_image", "celery_worker")]

LAYERS, ORDERING = pack.lesson("layers"), pack.lesson("ordering")
assert LAYERS is not None and ORDERING is not None
WAIT = 60_000  # ms: a build and the checks' own builds on a loaded machine
ORDERING_CHECK = "When the check changes app.py, at most 1 step rebuild"

# Every text a selector's elements showed while the page was open, kept by the page itself, so a
# state that lasts a second ("checking…") is seen however the test's polling falls.
RECORD = """(selector) => {
  window.seenTexts = new Set();
  const note = () =>
    document.querySelectorAll(selector).forEach((e) => window.seenTexts.add(e.textContent.trim()));
  new MutationObserver(note).observe(document.body, { subtree: true, childList: true, characterData: true });
  note();
}"""


def solve(person: Person, copy: int, lesson: Any) -> None:
    text = (lesson.solution / "Dockerfile").read_text()
    person.ok("PUT", f"/api/projects/{copy}/files/Dockerfile", {"content": text})


def copies(person: Person, classroom: int) -> dict[str, int]:
    mine = person.ok("GET", f"/api/classrooms/{classroom}/")
    return {e["lesson"]: e["project"] for e in mine["exercises"]}


def hand_out(page: Any, slug: str) -> None:
    page.select_option("#lesson-choice", slug)
    page.get_by_role("button", name="Hand out this lesson").click()


def test_a_teacher_and_three_students_run_two_lessons_of_the_pack(studio_server: Any, chromium: Any) -> None:
    base = studio_server.url
    expect = sync_api.expect
    tan = Person(chromium, base, "tan")
    classroom = tan.ok("POST", "/api/classrooms/", {"name": "Layers and the cache"})
    cid = classroom["id"]
    students = {name: Person(chromium, base, name.lower()) for name in ("Ana", "Ben", "Cy")}
    for name, person in students.items():
        person.ok("POST", "/api/classrooms/join/", {"code": classroom["join_code"], "display_name": name})
    ana, ben, cy = students.values()

    page = tan.page
    page.goto(f"{base}/classrooms/{cid}/")
    hand_out(page, "layers")
    expect(page.locator(".exercise-summary h2")).to_have_text(LAYERS.title)
    hand_out(page, "ordering")
    expect(page.locator(".exercise-summary h2")).to_have_text(ORDERING.title)
    mine = {name: copies(p, cid) for name, p in students.items()}

    # -- lesson 1, layers: everyone fails with the starter; Ana and Ben fix it, Cy does not.
    page.get_by_role("link", name=LAYERS.title).click()
    expect(page.locator("#live-state")).to_have_text("live")
    page.evaluate("window.neverReloaded = true")

    def row(name: str) -> Any:
        return page.locator("#grid tbody tr", has=page.get_by_role("link", name=name, exact=True))

    for name, person in students.items():
        person.build(mine[name]["layers"])
    for name in students:
        expect(row(name).locator("td.checks-passed")).to_have_text("2/3", timeout=WAIT)
    layers_group = page.locator("#mistake-groups li[data-code='check:1']")
    expect(layers_group.locator(".mistake-sentence")).to_contain_text(
        "3 students fail the check “The image has no more than 2 layers”"
    )
    for name, person in (("Ana", ana), ("Ben", ben)):
        solve(person, mine[name]["layers"], LAYERS)
        person.build(mine[name]["layers"])
    for name in ("Ana", "Ben"):
        expect(row(name).locator("td.checks-passed")).to_have_text("3/3", timeout=WAIT)
    expect(layers_group.locator(".mistake-students")).to_have_text("Cy")
    expect(layers_group.locator(".mistake-sentence")).to_contain_text("1 student fails the check")
    assert page.evaluate("window.neverReloaded") is True, "the grid and its groups updated live"

    # -- lesson 2, ordering. Ana predicts before she has built anything: the form offers the
    # steps of her Dockerfile as it is, planned in her own cache.
    page.get_by_role("link", name=ORDERING.title).click()
    expect(page.locator("#live-state")).to_have_text("live")
    page.evaluate("window.neverReloaded = true")
    page.evaluate(RECORD, "#grid td.checks-passed")
    studio = ana.page
    studio.goto(f"{base}/studio/{mine['Ana']['ordering']}/")
    boxes = studio.locator("#predict-form input[name=rebuild]")
    expect(boxes).to_have_count(5)
    expect(studio.locator("#predict-form label").nth(2)).to_contain_text("3. COPY . .")
    # The steps follow the editor as she types: a new line is a new step to predict.
    studio.locator(".cm-content").click()
    studio.keyboard.press("Control+End")
    studio.keyboard.type("\nENV MODE=lesson")
    expect(boxes).to_have_count(6, timeout=15_000)
    expect(studio.locator("#predict-form label").nth(5)).to_contain_text("6. ENV MODE=lesson")
    studio.wait_for_selector("#save-state[data-state=saved]", timeout=10_000)
    # She thinks the first build runs the copy and the install (steps 3 and 4).
    studio.locator("#predict-form input[value='3']").check()
    studio.locator("#predict-form input[value='4']").check()
    studio.get_by_role("button", name="Save my prediction").click()
    expect(studio.locator("#predict-form legend")).to_contain_text("your next build grades it")
    expect(boxes).to_have_count(6)
    studio.evaluate(RECORD, "#lesson-panel .lesson-state")
    # Her class page, open in another tab, shows where her copy stands as it changes.
    own = ana.context.new_page()
    own.goto(f"{base}/classrooms/{cid}/")
    article = own.locator(f"article[data-project='{mine['Ana']['ordering']}']")
    expect(article.locator(".state-word")).to_have_text("not yet checked")
    own.evaluate(RECORD, f"article[data-project='{mine['Ana']['ordering']}'] .state-word")

    for name, person in students.items():
        person.build(mine[name]["ordering"])
    for name in students:
        expect(row(name).locator("td.checks-passed")).to_have_text("2/3", timeout=WAIT)
    expect(article.locator(".state-word")).to_have_text("a check fails", timeout=WAIT)
    # While the check built its copies, the copy read "checking…", not the old "not yet".
    assert "checking…" in page.evaluate("[...window.seenTexts]")
    assert "checking…" in own.evaluate("[...window.seenTexts]")
    # So did the lesson panel above her copy in the studio, which then says how it fared.
    expect(studio.locator("#lesson-panel .lesson-state")).to_have_text("a check fails", timeout=WAIT)
    assert "checking…" in studio.evaluate("[...window.seenTexts]")
    expect(studio.locator("#lesson-panel .check-fail")).to_contain_text("2 steps rebuilt (at most 1 allowed)")

    # The build graded Ana's prediction step by step; the teacher's table followed it live.
    panel = studio.locator("#lesson-panel")
    for _ in range(60):
        studio.reload()
        if panel.locator("#prediction-grades").count():
            break
        studio.wait_for_timeout(500)
    grades = panel.locator("#prediction-grades tbody tr")
    expect(grades).to_have_count(6)
    expect(grades.nth(2)).to_have_class("grade-right")
    expect(grades.nth(3)).to_have_class("grade-right")
    accuracy = page.locator("#prediction-accuracy")
    expect(accuracy).to_be_visible()
    expect(accuracy.locator("tbody tr")).to_have_count(6)
    expect(accuracy.locator("tbody tr").nth(2)).to_contain_text("1 of 1")

    # Cy fixes the order and passes; Ana and Ben keep the same mistake, grouped together.
    solve(cy, mine["Cy"]["ordering"], ORDERING)
    cy.build(mine["Cy"]["ordering"])
    expect(row("Cy").locator("td.checks-passed")).to_have_text("3/3", timeout=WAIT)
    group = page.locator("#mistake-groups li[data-code='check:1']")
    sentence = f"2 students fail the check “{ORDERING_CHECK}”"
    expect(group.locator(".mistake-sentence")).to_contain_text(sentence)
    expect(group.locator(".mistake-students")).to_have_text("Ana, Ben")
    # The studio's own cache hint names the same two: the install reads a list copied with all.
    hint = page.locator("#mistake-groups li[data-code='studio/copy-all-before-install']")
    expect(hint.locator(".mistake-sentence")).to_contain_text(
        "2 students copy the whole context before installing"
    )
    expect(hint.locator(".mistake-students")).to_have_text("Ana, Ben")
    assert page.evaluate("window.neverReloaded") is True, "the grid and its groups updated live"
    group.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#mistakes").screenshot(path=str(ARTIFACTS / "lesson-mistakes.png"))
    page.screenshot(path=str(ARTIFACTS / "lesson-mistakes-dashboard.png"), full_page=True)

    # The CSV holds what the grid shows: each student's checks and mistakes.
    shown = {
        name: row(name).locator("td.checks-passed").inner_text() for name in students
    }
    with page.expect_download() as download:
        page.get_by_role("link", name="Export results (CSV)").click()
    table = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    exported = {r[0]: dict(zip(table[0], r, strict=True)) for r in table[1:]}
    assert set(exported) == set(students)
    for name, words in shown.items():
        assert f"{exported[name]['checks passed']}/{exported[name]['checks total']}" == words
    for name in ("Ana", "Ben"):
        assert f"fail the check “{ORDERING_CHECK}”" in exported[name]["mistakes"]
    assert ORDERING_CHECK not in exported["Cy"]["mistakes"]

    # One of them on the projector: the Dockerfile large, the lines at fault marked, no name.
    with page.expect_navigation():
        hint.get_by_role("link", name="open an anonymised example").click()
    page.set_viewport_size({"width": 1280, "height": 720})
    example = page.locator("#mistake-example")
    expect(example.locator("h1")).to_have_text("2 students copy the whole context before installing")
    expect(example.locator("li.at-fault")).to_have_count(1)
    expect(example.locator("li.at-fault")).to_contain_text("COPY . .")
    text = example.inner_text()
    assert all(name not in text for name in students) and ana.username not in page.content()
    size = page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('.example-dockerfile code')).fontSize)"
    )
    assert size >= 20, f"the example's code is {size}px: too small for a projector"
    fits = page.evaluate(
        "() => document.documentElement.scrollWidth <= innerWidth"
        " && document.querySelector('.example-dockerfile').getBoundingClientRect().bottom <= innerHeight"
    )
    assert fits, "the example's Dockerfile fits a 1280x720 projector without scrolling"
    page.screenshot(path=str(ARTIFACTS / "lesson-mistake-example-projector.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    page.screenshot(path=str(ARTIFACTS / "lesson-mistake-example-phone.png"), full_page=True)

    for who in (tan, *students.values()):
        assert who.errors == []
        who.context.close()
