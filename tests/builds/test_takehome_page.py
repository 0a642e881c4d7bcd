"""The studio page, in Debian's chromium, taking a built image home: the download under the
stack, a push to the operator's registry whose every layer is reported (pushed the first time,
already there the second), the `docker pull` line to copy; and, where the studio has no
registry, a sentence instead of the Push form. The section fits a laptop, a projector and a
phone."""
# ruff: noqa: F811 (fixtures are imported, then named as arguments)

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.builds.takehome import DOCKERFILE, PREFIX, PushStudio, push_studio  # noqa: F401
from tests.conftest import StudioServer
from tests.pages import page_marks, screenshot, sign_up, watch_errors

pytest.importorskip("playwright.sync_api")
pytestmark = [*page_marks("studio.js"), pytest.mark.usefixtures("celery_worker", "base_image")]

SIZES = {"laptop": (1440, 900), "projector": (1280, 720), "phone": (390, 844)}
CREATE = """async ([name, dockerfile]) => {
  const token = document.cookie.split('; ').find((c) => c.startsWith('csrftoken=')).split('=')[1];
  const made = await fetch('/api/projects/', {method: 'POST', body: JSON.stringify({name, dockerfile}),
    headers: {'Content-Type': 'application/json', 'X-CSRFToken': token}});
  return (await made.json()).id;
}"""
# Where the section is, whether the page scrolls sideways, and which of its parts cut their text.
FIT = """() => {
  const box = document.querySelector('#take-home').getBoundingClientRect();
  const cut = [...document.querySelectorAll('#take-home *')].filter((el) =>
    el.getClientRects().length && getComputedStyle(el).overflowX === 'visible'
    && el.scrollWidth > el.clientWidth + 1 && el.tagName !== 'INPUT').map((el) => el.className);
  const outside = [...document.querySelectorAll('#take-home *')].filter((el) => {
    const r = el.getBoundingClientRect();
    return el.getClientRects().length && (r.left < box.left - 0.5 || r.right > box.right + 0.5);
  }).map((el) => el.className);
  return {left: box.left, right: box.right, width: innerWidth, scroll: document.documentElement.scrollWidth,
          cut, outside};
}"""


def built_page(chromium: Any, base: str, who: str, name: str) -> Any:
    context = chromium.new_context(viewport={"width": 1440, "height": 900},
                                   permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    sign_up(page, base, who)
    page.goto(f"{base}/studio/")
    project_id = page.evaluate(CREATE, [name, DOCKERFILE])
    page.goto(f"{base}/studio/{project_id}/")
    page.wait_for_selector("#project-studio[data-ready=true]")
    page.locator("#build-button").click()
    page.wait_for_function(
        "() => document.querySelector('#project-studio').dataset.buildStatus === 'succeeded'", timeout=90_000)
    page.wait_for_selector("#take-home:not([hidden])")
    return page


def push(page: Any, repository: str, tag: str) -> list[str]:
    """Push from the page and wait for its end: each layer's row as the page says it."""
    before = page.locator("#take-home").get_attribute("data-push-id")
    page.fill("#push-repository", repository)
    page.fill("#push-tag", tag)
    page.locator("#push-button").click()
    page.wait_for_function(
        """(before) => { const s = document.querySelector('#take-home').dataset;
                         return s.pushId !== before && s.push === 'succeeded'; }""",
        arg=before, timeout=90_000)
    return [row.inner_text() for row in page.locator("#push-layers .push-layer-status").all()]


def test_a_push_from_the_page_reports_every_layer_and_the_second_finds_them_all_there(
    push_studio: PushStudio, chromium: Any
) -> None:
    word = uuid.uuid4().hex[:8]
    page = built_page(chromium, push_studio.server.url, f"alice-{word}", f"home {word}")
    errors = watch_errors(page)
    registry = push_studio.registry
    download = page.locator("#download-image")
    assert download.inner_text().startswith("Download for docker load (")
    assert download.get_attribute("download") == f"home-{word}-build-1.tar"
    assert page.locator(".push-prefix").inner_text() == f"{registry.host}/{PREFIX}/"
    assert page.locator("#push-off").is_hidden()

    uploads = registry.blob_uploads()
    first = push(page, f"app-{word}", "v1")
    assert len(first) == 2 and first == ["pushed", "pushed"]  # the base's layer and the RUN's
    assert registry.blob_uploads() > uploads
    status = page.locator("#push-status").inner_text()
    assert status.startswith(f"Pushed to {registry.host}/{PREFIX}/app-{word}:v1. 2 layers: 2 pushed (")
    pull = f"docker pull {registry.host}/{PREFIX}/app-{word}:v1"
    assert page.locator("#pull-command").inner_text() == pull
    page.locator(".push-copy").click()
    page.wait_for_function("() => document.querySelector('.push-copied').textContent === 'Copied'")
    assert page.evaluate("() => navigator.clipboard.readText()") == pull

    uploads = registry.blob_uploads()
    second = push(page, f"app-{word}", "v1")
    assert second == ["already there", "already there"]
    assert registry.blob_uploads() == uploads  # nothing sent again
    assert "2 layers: 2 already there, not sent" in page.locator("#push-status").inner_text()

    # Under another name on the same registry, the layers are mounted from the first repository.
    third = push(page, f"other-{word}", "v1")
    assert third == [f"mounted from {PREFIX}/app-{word}"] * 2
    assert registry.blob_uploads() == uploads + 1  # only the image's config, new to that repository

    for size_name, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.locator("#take-home").scroll_into_view_if_needed()
        fit = page.evaluate(FIT)
        assert fit["scroll"] <= fit["width"], f"{size_name}: the page scrolls sideways ({fit})"
        assert fit["left"] >= 0 and fit["right"] <= fit["width"], f"{size_name}: {fit}"
        assert fit["cut"] == [] and fit["outside"] == [], f"{size_name}: {fit}"
        screenshot(page.locator("#take-home"), f"take-home-{size_name}.png")
    assert errors == []


def test_without_a_registry_the_page_says_why_there_is_no_push(
    studio_server: StudioServer, chromium: Any
) -> None:
    word = uuid.uuid4().hex[:8]
    page = built_page(chromium, studio_server.url, f"alice-{word}", f"nowhere {word}")
    assert page.locator("#download-image").is_visible()
    assert page.locator("#push-form").is_hidden()
    off = page.locator("#push-off")
    assert off.is_visible()
    assert off.inner_text().startswith("Push is off: this studio has no registry to push to.")
