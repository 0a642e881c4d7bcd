"""The recorded demo teaches on its own: it shows the Dockerfile the two builds ran, the edit made
between them, and as it replays them it says for every layer whether the cache kept it and why,
on a laptop, from a projector and on a phone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from studio import demo
from tests.conftest import StudioServer
from tests.pages import PROJECT_DIR, page_marks, screenshot, watch_errors

PAGE_MARKS = page_marks("studio.js")
RECORDING = PROJECT_DIR / "frontend" / "public" / "demo-events.jsonl"
SIZES = {"laptop": (1440, 900), "projector": (1280, 720), "phone": (390, 844)}


def recorded_builds() -> list[list[dict[str, Any]]]:
    builds: list[list[dict[str, Any]]] = []
    for line in RECORDING.read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "build.started":
            builds.append([])
        builds[-1].append(event)
    return builds


def test_the_dockerfile_and_the_edit_on_the_page_are_the_ones_the_recording_built() -> None:
    lines = dict(demo.dockerfile_lines())
    first, second = recorded_builds()
    for build in (first, second):
        for step in build[0]["steps"]:
            assert lines[step["line"]] == step["instruction"]
    # The last step prints app.py, so the recording itself says what the file held each time.
    logs = [next(e["text"] for e in build if e["type"] == "step.log") for build in (first, second)]
    assert logs == [demo.EDIT.before, demo.EDIT.after]
    copy = next(e for e in second if e["type"] == "step.finished" and e["instruction"] == "COPY . .")
    assert copy["reason"]["modified"] == [demo.EDIT.path]


def test_the_edit_is_shown_line_by_line_kept_removed_and_added() -> None:
    rows = demo.diff_lines("a\nb\nc\n", "a\nB\nc\nd\n")
    assert [(r.mark, r.text, r.old, r.new) for r in rows] == [
        (" ", "a", 1, 1),
        ("\u2212", "b", 2, None),
        ("+", "B", None, 2),
        (" ", "c", 3, 3),
        ("+", "d", None, 4),
    ]


ON_SCREEN = """(selectors) => selectors.map((sel) => {
  const el = document.querySelector(sel);
  if (!el) return `${sel} missing`;
  const r = el.getBoundingClientRect();
  const inside = r.width > 0 && r.left >= -0.5 && r.right <= innerWidth + 0.5;
  return inside ? null : `${sel} at ${Math.round(r.left)}..${Math.round(r.right)} of ${innerWidth}`;
}).filter((x) => x)"""
TOP = "(sel) => document.querySelector(sel).getBoundingClientRect().top"


@pytest.mark.parametrize("size_name", list(SIZES))
@PAGE_MARKS[0]
@PAGE_MARKS[1]
def test_the_demo_shows_the_dockerfile_the_edit_and_says_why_each_layer_was_kept_or_rebuilt(
    studio_server: StudioServer, chromium: Any, size_name: str
) -> None:
    pytest.importorskip("playwright.sync_api")
    width, height = SIZES[size_name]
    page = chromium.new_page(viewport={"width": width, "height": height})
    errors = watch_errors(page)
    page.goto(f"{studio_server.url}/studio/demo/")

    assert page.locator("#demo-dockerfile code").all_inner_texts() == demo.DOCKERFILE.splitlines()
    assert page.locator("#demo-edit .diff-remove code").all_inner_texts() == ["print(1)"]
    assert page.locator("#demo-edit .diff-add code").all_inner_texts() == ["print(2)"]
    # Said by a sign as well as a colour.
    assert page.locator("#demo-edit .diff-mark").all_inner_texts() == ["\u2212", "+"]

    page.get_by_role("button", name="Replay demo").click()
    # Between the builds the edit is what the page points at.
    page.wait_for_selector("#demo-edit.now", timeout=20_000)
    screenshot(page, f"demo-edit-{size_name}.png")
    page.wait_for_selector("#studio[data-replay=done]", timeout=40_000)
    screenshot(page, f"demo-{size_name}.png")
    screenshot(page, f"demo-{size_name}-full.png", full_page=True)

    told = page.locator("#demo-narration li").all_inner_texts()
    edited = told.index(
        "Then app.py was edited (the edit is shown above) and the same Dockerfile was built again."
    )
    second = told[edited:]
    assert (
        next(t for t in second if t.startswith("Line 2: WORKDIR /app"))
        .lower()
        .startswith("line 2: workdir /app cached nothing it depends on changed")
    )
    copy = next(t for t in second if t.startswith("Line 3: COPY . ."))
    assert "built" in copy.lower() and "app.py was changed" in copy
    run = next(t for t in second if t.startswith("Line 4: RUN cat app.py"))
    assert "layer below it (line 3: COPY . .) was rebuilt" in run
    assert told[-1].startswith("Build 2 succeeded") and "1 of 3 steps came from the cache" in told[-1]
    # The Dockerfile says each line's verdict of the second build.
    verdicts = [
        page.locator(f"#demo-dockerfile li[data-line='{n}']").get_attribute("data-verdict") for n in (2, 3, 4)
    ]
    assert verdicts == ["cached", "built", "built"]

    # Nothing wider than the screen; the story and the stack on it.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    keys = [
        "#demo-dockerfile",
        "#demo-edit",
        "#demo-narration",
        "#layer-stack .band[data-step='3']",
        "#replay-demo",
    ]
    assert page.evaluate(ON_SCREEN, keys) == []
    if size_name != "phone":
        # Side by side on a laptop and from a projector: the Dockerfile, the edit and the stack
        # all begin on the first screen.
        for sel in ("#demo-dockerfile", "#demo-edit", "#layer-stack"):
            assert page.evaluate(TOP, sel) < height, sel
    assert errors == []
    page.close()
