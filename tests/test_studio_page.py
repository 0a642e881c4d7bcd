"""The studio in a real browser against the real server, worker and sandbox: a person makes the
starter project, edits it, builds, watches the layer stack form, edits app.py, builds again and
reads, band by band, what the cache kept and why the rest was rebuilt. And the recorded demo."""

from __future__ import annotations

import io
import tarfile
import uuid

import pytest

from studio.projects import starter
from tests.conftest import UPLOAD_MAX_BYTES

from .pages import page_marks, screenshot, sign_up, watch_errors

pytest.importorskip("playwright.sync_api")
pytestmark = page_marks("studio.js")


def test_a_replayed_rebuild_shows_cached_bands_and_why_copy_was_rebuilt(studio_server, chromium) -> None:
    page = chromium.new_page(viewport={"width": 1100, "height": 900})
    errors = watch_errors(page)

    page.goto(f"{studio_server.url}/studio/demo/")
    page.get_by_role("button", name="Replay demo").click()
    page.wait_for_selector("#studio[data-replay=done]", timeout=30_000)
    screenshot(page, "studio-replay.png", full_page=True)

    bands = page.locator(".band[data-step]")
    assert bands.count() == 4, "a band for every planned step"
    assert page.locator('.band[data-step="1"]').get_attribute("class").count("status-cached") == 1
    assert "status-cached" in page.locator('.band[data-step="2"]').get_attribute("class")
    assert "cached" in page.locator('.band[data-step="2"] .band-status').inner_text().lower()

    copy = page.locator('.band[data-step="3"]')
    assert "status-built" in copy.get_attribute("class")
    assert "app.py" in copy.locator(".band-reason").inner_text()
    assert "first change" in copy.locator(".band-status").inner_text().lower()

    run = page.locator('.band[data-step="4"]')
    assert "caused by step 3" in run.locator(".band-status").inner_text().lower()
    assert page.locator('.band[data-step="1"] .band-status').inner_text().lower() == "base"
    assert "2 built, 1 cached" in page.locator(".build-summary").inner_text()
    assert_summary_agrees_with_bands(page)

    page.get_by_role("button", name="Large text").click()
    screenshot(page, "studio-replay-large.png", full_page=True)
    assert errors == []
    page.close()


# The editor's note once the last build is the Dockerfile as it stands (the CMD has no layer).
ALL_FROM_CACHE = ("() => document.querySelector('#prediction').textContent"
                  ".includes('all 4 steps from the cache; 1 metadata only')")

VERDICT_WORDS = {"built": "built", "cached": "cached", "metadata": "metadata only", "skipped": "skipped",
                 "cancelled": "cancelled", "failed": "failed"}


def assert_summary_agrees_with_bands(page) -> None:
    """Every number in the build's summary is the number of bands reading that verdict (a FROM
    band is the base, in no count), and no band reads a verdict the summary leaves out."""
    summary = page.locator(".build-summary").inner_text()
    said = dict.fromkeys(VERDICT_WORDS, 0)
    for part in summary.split(" · ")[1].split(", "):
        number, _, words = part.partition(" ")
        verdict = next(v for v, w in VERDICT_WORDS.items() if w == words)
        said[verdict] = int(number)
    bands = page.locator("#layer-stack .band[data-step], .stacks .band[data-step]")
    shown = dict.fromkeys(VERDICT_WORDS, 0)
    for i in range(bands.count()):
        band = bands.nth(i)
        status = band.locator(".band-status").inner_text().lower()
        if status == "base" or "band-base" in (band.get_attribute("class") or ""):
            continue
        shown[next(v for v in VERDICT_WORDS if f"status-{v}" in band.get_attribute("class"))] += 1
        assert status.split(" · ")[0] in VERDICT_WORDS.values(), status
    assert shown == said, f"{summary!r} beside bands {shown}"


def _type_at_end(page, text: str) -> None:
    """Puts the cursor at the end of the open file and types, as a person would."""
    page.locator(".cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)


def _wait_saved(page) -> None:
    page.wait_for_selector("#save-state[data-state=saved]", timeout=10_000)


def _band(page, step: int):
    return page.locator(f'#layer-stack .band[data-step="{step}"]')


def _wait_build(page, number: int) -> None:
    page.wait_for_function(
        "n => document.querySelector('#project-studio').dataset.buildStatus"
        " && document.querySelectorAll('.history-table tr[data-build]').length >= n",
        arg=number,
        timeout=60_000,
    )


def test_a_person_builds_the_starter_edits_app_py_and_sees_only_the_copy_rebuilt(
    studio_server, celery_worker, base_image, chromium, tmp_path
) -> None:
    page = chromium.new_page(viewport={"width": 1440, "height": 1000})
    errors = watch_errors(page)
    page.on("dialog", lambda dialog: dialog.accept())

    sign_up(page, studio_server.url, f"alice-{uuid.uuid4().hex[:6]}")  # the live database is shared
    page.goto(f"{studio_server.url}/studio/")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_selector("#project-studio[data-ready=true]")
    assert page.locator(".tab-name[aria-selected=true]").inner_text() == "Dockerfile"
    assert "COPY requirements.txt ." in page.locator(".cm-content").inner_text()
    tree = page.locator("#files .file-tree").inner_text()
    assert "app.py" in tree and "requirements.txt" in tree
    screenshot(page, "studio-1-starter.png", full_page=True)

    # Files: make one, move it into a folder, add more from an archive, delete the folder.
    files = page.locator("#files")
    files.get_by_role("button", name="New file").click()
    page.get_by_label("New file's path").fill("notes/todo.txt")
    page.keyboard.press("Enter")
    page.wait_for_selector("#project-studio[data-open-file='notes/todo.txt']")
    files.get_by_role("button", name="Rename notes/todo.txt").click()
    page.get_by_label("New path for notes/todo.txt").fill("docs/todo.txt")
    page.keyboard.press("Enter")
    files.locator('li[data-path="docs/todo.txt"]').wait_for()
    assert page.locator(".tab-name[aria-selected=true]").get_attribute("data-path") == "docs/todo.txt"
    archive = tmp_path / "more.tar"
    with tarfile.open(archive, "w") as tar:
        data = b"# how to run\n"
        info = tarfile.TarInfo("docs/README.md")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    files.locator("input[type=file][accept*='.zip']").set_input_files(str(archive))
    files.locator('li[data-path="docs/README.md"]').wait_for()
    assert "Added 1 file from more.tar" in page.locator("#studio-message").inner_text()
    folder = tmp_path / "picked-folder"  # the folder chosen is the context: its name is not kept
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "guide.md").write_text("# guide\n")
    files.locator("input[type=file][webkitdirectory]").set_input_files(str(folder))
    files.locator('li[data-path="docs/guide.md"]').wait_for()
    assert "Uploaded 1 file." in page.locator("#studio-message").inner_text()
    files.get_by_role("button", name="Delete docs", exact=True).click()
    files.locator('li[data-path="docs"]').wait_for(state="detached")
    assert page.locator(".tab-name", has_text="todo.txt").count() == 0, "a deleted file's tab closes"
    assert sorted(files.locator("li.file").evaluate_all("els => els.map(e => e.dataset.path)")) == [
        "Dockerfile",
        "app.py",
        "requirements.txt",
    ]

    # A save the studio refuses says why, and the text stays to be saved once it can be.
    files.get_by_role("button", name="New file").click()
    page.get_by_label("New file's path").fill("big.txt")
    page.keyboard.press("Enter")
    page.wait_for_selector("#project-studio[data-open-file='big.txt']")
    page.locator(".cm-content").click()
    page.keyboard.insert_text("x" * (UPLOAD_MAX_BYTES + 1000))  # a paste over the request limit
    page.wait_for_selector("#save-state[data-state=error]", timeout=15_000)
    assert page.locator("#save-state").inner_text().startswith("Not saved: big.txt: ")
    screenshot(page, "studio-1b-not-saved.png", full_page=True)
    page.keyboard.press("Control+a")
    page.keyboard.insert_text("small now\n")
    _wait_saved(page)
    files.get_by_role("button", name="Delete big.txt").click()
    files.locator('li[data-path="big.txt"]').wait_for(state="detached")

    # Edit: one more dependency, saved on its own.
    page.locator("#files").get_by_role("button", name="requirements.txt", exact=True).click()
    page.wait_for_selector("#project-studio[data-open-file='requirements.txt']")
    _type_at_end(page, "gunicorn\n")
    page.wait_for_selector("#save-state[data-state=pending], #save-state[data-state=saving]", timeout=5_000)
    _wait_saved(page)

    # Build: every planned band is there from the start, and keeps its place as the build runs.
    page.locator("#build-button").click()
    page.wait_for_selector('#layer-stack .band[data-step="6"]', timeout=30_000)
    boxes_at_start = [_band(page, n).bounding_box() for n in range(1, 7)]
    page.wait_for_selector("#layer-stack .band.status-running", timeout=30_000)
    screenshot(page, "studio-2-building.png", full_page=True)
    _wait_build(page, 1)
    assert page.locator("#project-studio").get_attribute("data-build-status") == "succeeded"
    boxes_at_end = [_band(page, n).bounding_box() for n in range(1, 7)]
    assert boxes_at_end == boxes_at_start, f"the bands moved: {boxes_at_start} -> {boxes_at_end}"
    assert "metadata only" in _band(page, 6).inner_text()
    assert "installing gunicorn" in _band(page, 4).locator(".band-log pre").text_content()
    screenshot(page, "studio-3-first-build.png", full_page=True)

    # Just built, so the gutter foretells every step from the cache.
    page.wait_for_function(ALL_FROM_CACHE)

    # Edit app.py: once saved, the gutter says COPY . . will be rebuilt, and why.
    page.locator("#files").get_by_role("button", name="app.py", exact=True).click()
    page.wait_for_selector("#project-studio[data-open-file='app.py']")
    _type_at_end(page, "# a change of one line\n")
    page.wait_for_selector("#prediction[data-rebuild='5']", timeout=15_000)
    page.locator(".tab-name", has_text="Dockerfile").click()
    mark = page.locator('.predict-built.predict-first[data-step="5"]')
    assert "app.py" in mark.get_attribute("title")
    assert page.locator(".predict-cached.predict-first").count() == 4
    assert page.locator(".predict-metadata.predict-first").count() == 1  # the CMD: nothing to cache
    screenshot(page, "studio-4a-prediction.png", full_page=True)
    page.locator(".tab-name", has_text="app.py").click()
    page.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "() => document.querySelector('#project-studio').dataset.buildStatus === undefined")
    _wait_build(page, 2)
    screenshot(page, "studio-4b-rebuild.png", full_page=True)

    for step in (1, 2, 3, 4):
        assert "status-cached" in _band(page, step).get_attribute("class"), f"step {step} is reused"
    copy = _band(page, 5)
    assert "status-built" in copy.get_attribute("class")
    assert "app.py" in copy.locator(".band-reason").inner_text()
    assert "first change" in copy.locator(".band-status").inner_text().lower()
    assert "1 built, 3 cached, 1 metadata only" in page.locator(".build-summary").inner_text()
    assert_summary_agrees_with_bands(page)
    assert page.locator("#build-caption").inner_text() == "Build #2 · succeeded"

    # The inspector: click the rebuilt band; its lines light up in the Dockerfile.
    copy.click()
    inspector = page.locator("#inspector")
    inspector.wait_for(state="visible")
    assert "COPY . ." in inspector.locator(".inspector-instruction").inner_text()
    inspector.locator(".layer-files").wait_for()
    assert "app.py" in inspector.locator(".layer-files").inner_text()
    assert page.locator(".tab-name[aria-selected=true]").inner_text() == "Dockerfile"
    assert page.locator(".cm-step-lines").inner_text() == "COPY . ."
    page.wait_for_function(ALL_FROM_CACHE)
    screenshot(page, "studio-5-inspector.png", full_page=True)
    screenshot(page, "studio-readme.png")

    # The cursor in the editor picks the band of its step.
    page.locator(".cm-line", has_text="WORKDIR /app").click()
    page.wait_for_selector('#layer-stack .band.selected[data-step="2"]')

    # History: both builds; tick them to compare; open the first and see it as it was.
    rows = page.locator(".history-table tr[data-build]")
    assert rows.count() == 2
    assert "75%" in rows.nth(0).inner_text()
    page.get_by_label("Compare build #1").check()
    page.get_by_label("Compare build #2").check()
    first_id = rows.nth(1).get_attribute("data-build")
    second_id = rows.nth(0).get_attribute("data-build")
    compare = page.get_by_role("link", name="Compare #1 with #2")
    assert compare.get_attribute("href") == f"/compare/{first_id}/{second_id}/"
    page.get_by_role("button", name="Open build #1").click()
    page.wait_for_function(f"() => document.querySelector('#project-studio').dataset.build === '{first_id}'")
    page.wait_for_selector("#project-studio[data-build-status=succeeded]")
    assert "status-built" in _band(page, 5).get_attribute("class")
    assert "status-built" in _band(page, 4).get_attribute("class")
    # From the keyboard: Enter on a band opens it; that build's RUN printed what it installed.
    _band(page, 4).focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('#inspector-title').textContent.startsWith('Step 4')")
    assert "installing gunicorn" in inspector.locator(".inspector-log").inner_text()

    # Chromium logs the refused paste's 413 itself; nothing else may have gone wrong.
    assert [e for e in errors if "status of 413" not in e] == []
    errors.clear()
    # The gutter follows the typing: a new RUN at the end is foretold as built.
    page.locator(".tab-name", has_text="Dockerfile").click()
    page.wait_for_function(ALL_FROM_CACHE)
    _type_at_end(page, "RUN echo one more\n")
    # COPY . . copies the Dockerfile too, so it is foretold rebuilt as well, naming it.
    page.wait_for_selector("#prediction[data-rebuild='5,7']", timeout=15_000)
    assert page.locator('.predict-built.predict-first[data-step="7"]').count() == 1
    copy_mark = page.locator('.predict-built.predict-first[data-step="5"]')
    assert "Dockerfile" in copy_mark.get_attribute("title")

    # A Dockerfile that does not parse: the build is refused, naming the line, marked in the editor.
    # (Chromium logs the refusal's 400 itself; that line is the only one allowed from here on.)
    page.keyboard.type("FROBNICATE now\n")
    page.locator("#build-button").click()
    message = page.locator("#build-message")
    message.wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('#build-message').textContent.length > 0")
    bad_line = starter.DOCKERFILE.count("\n") + 2
    assert "FROBNICATE" in message.inner_text() and f"line {bad_line}" in message.inner_text()
    page.wait_for_selector(".cm-error-line")
    page.wait_for_selector(".cm-lint-marker-error")  # the linter says so in the gutter too
    assert "FROBNICATE" in page.locator(".cm-error-line").inner_text()
    screenshot(page, "studio-6-parse-error.png", full_page=True)

    # A step that fails as it runs (a COPY source that is not there) names its line and marks it
    # in the editor as the parse error was.
    page.locator(".cm-content").click()
    page.keyboard.press("Control+End")
    for _ in "FROBNICATE now\n":
        page.keyboard.press("Backspace")
    page.keyboard.type("COPY nope.txt /nope\n")
    _wait_saved(page)
    page.locator("#build-button").click()
    page.wait_for_function("() => document.querySelector('#project-studio').dataset.buildStatus === 'failed'",
                           timeout=60_000)
    page.wait_for_function("() => document.querySelector('#build-message').textContent.includes('failed at')")
    assert f"line {bad_line}" in message.inner_text() and "nope.txt" in message.inner_text()
    page.wait_for_selector(".cm-error-line")
    assert "COPY nope.txt" in page.locator(".cm-error-line").inner_text()
    screenshot(page, "studio-6b-runtime-error.png", full_page=True)

    page.get_by_role("button", name="Large text").click()
    screenshot(page, "studio-7-large.png", full_page=True)
    assert [e for e in errors if "status of 400" not in e] == []
    page.close()


def _api(page, path: str, body: dict) -> dict:
    """A POST to the API from inside the page, with its session and CSRF token."""
    return page.evaluate(
        """async ([path, body]) => {
            const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken=")).slice(10);
            const headers = {"Content-Type": "application/json", "X-CSRFToken": csrf};
            const reply = await fetch(path, {method: "POST", body: JSON.stringify(body), headers});
            return await reply.json();
        }""",
        [path, body],
    )


MULTI_STAGE = """\
FROM busybox:latest AS builder
WORKDIR /src
RUN echo compiled > app.bin

FROM busybox:latest
COPY --from=builder /src/app.bin /app.bin
CMD ["cat", "/app.bin"]
"""


def test_a_multi_stage_build_shows_a_stack_per_stage_with_an_arrow_for_copy_from(
    studio_server, celery_worker, base_image, chromium
) -> None:
    page = chromium.new_page(viewport={"width": 1440, "height": 900})
    errors = watch_errors(page)
    sign_up(page, studio_server.url, f"carol-{uuid.uuid4().hex[:6]}")
    # Made through the API, as a script of hers would, with the page's own session.
    project_id = _api(page, "/api/projects/", {"name": "two", "dockerfile": MULTI_STAGE})["id"]
    page.goto(f"{studio_server.url}/studio/{project_id}/?large=1")
    page.wait_for_selector("#project-studio[data-ready=true]")
    page.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#project-studio[data-build-status=succeeded]", timeout=60_000)

    stacks = page.locator("#layer-stack .stack")
    assert stacks.count() == 2
    assert [stacks.nth(i).get_attribute("data-stage") for i in range(2)] == ["builder", "1"]
    builder_box, final_box = stacks.nth(0).bounding_box(), stacks.nth(1).bounding_box()
    screenshot(page, "studio-multi-stage.png", full_page=True)
    assert builder_box["x"] + builder_box["width"] <= final_box["x"], "the stages stand side by side"
    arrow = page.locator('.stage-arrows path.stage-arrow[data-to="5"]')
    assert arrow.count() == 1, "COPY --from=builder gets its arrow"
    assert page.evaluate("document.documentElement.classList.contains('large-text')")
    # hadolint's word on the unpinned base image, inline on line 1.
    page.wait_for_selector(".cm-lint-marker-warning")
    page.locator(".cm-lintRange-warning").first.hover()
    page.wait_for_selector(".cm-tooltip-lint", timeout=5_000)
    assert "DL3007" in page.locator(".cm-tooltip-lint").inner_text()
    screenshot(page, "studio-multi-stage.png", full_page=True)
    build_id = page.locator("#project-studio").get_attribute("data-build")

    # Shared by link: dave may look, stack and all, but not change or build.
    token = _api(page, f"/api/projects/{project_id}/share/", {})["share_token"]
    dave = chromium.new_context(viewport={"width": 1440, "height": 900})
    viewer = dave.new_page()
    sign_up(viewer, studio_server.url, f"dave-{uuid.uuid4().hex[:6]}")
    refused_url = f"{studio_server.url}/studio/{project_id}/"
    # Chromium logs the refusal below (and its plain 404 page's favicon) as console errors.
    viewer.on(
        "console",
        lambda message: errors.append(message.text)
        if message.type == "error"
        and message.location.get("url") not in (refused_url, f"{studio_server.url}/favicon.ico")
        else None,
    )
    assert viewer.goto(refused_url).status == 404
    viewer.goto(f"{studio_server.url}/studio/{project_id}/?token={token}&build={build_id}")
    viewer.wait_for_selector("#project-studio[data-build-status=succeeded]", timeout=30_000)
    assert viewer.locator("#layer-stack .stack").count() == 2
    assert viewer.locator("#build-button").is_disabled()
    assert viewer.locator("#files").get_by_role("button", name="New file").count() == 0

    # A long step can be stopped: Cancel ends the build, and the stack says so.
    page.locator(".cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("RUN sleep 30\n")
    page.locator("#build-button").click()
    page.wait_for_selector('#layer-stack .band.status-running[data-step="7"]', timeout=30_000)
    page.get_by_role("button", name="Cancel build").click()
    page.wait_for_selector("#project-studio[data-build-status=cancelled]", timeout=20_000)
    assert page.get_by_role("button", name="Cancel build").is_hidden()
    assert "cancelled" in page.locator(".build-summary").inner_text()
    # Dave's page heard of carol's second build over the project's socket, without a reload.
    viewer.wait_for_selector(".history-table tr[data-build] .badge-cancelled", timeout=15_000)
    assert viewer.locator(".history-table tr[data-build]").count() == 2
    dave.close()
    assert errors == []
    page.close()
