"""The studio page, in Debian's chromium, building a Dockerfile whose FROM the worker pulls from
a registry: the pull's events arrive with the build's, and the page takes them in its stride."""
# ruff: noqa: F811 (the registry fixture is imported, then named as an argument)

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.builds.test_pull_live import pushed_image
from tests.engine.registry_server import RegistryServer, registry  # noqa: F401
from tests.pages import page_marks, screenshot, sign_up, watch_errors

pytest.importorskip("playwright.sync_api")
pytestmark = page_marks("studio.js")

CREATE = """async ([name, dockerfile]) => {
  const token = document.cookie.split('; ').find((c) => c.startsWith('csrftoken=')).split('=')[1];
  const made = await fetch('/api/projects/', {method: 'POST', body: JSON.stringify({name, dockerfile}),
    headers: {'Content-Type': 'application/json', 'X-CSRFToken': token}});
  return (await made.json()).id;
}"""


def test_a_build_that_pulls_its_base_shows_on_the_page_like_any_other(
    studio_server, celery_worker, base_image, chromium, registry: RegistryServer, tmp_path: Path
) -> None:
    word = f"w{uuid.uuid4().hex[:8]}"
    ref = pushed_image(registry, tmp_path, word)
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    errors = watch_errors(page)
    sign_up(page, studio_server.url, f"alice-{word}")
    page.goto(f"{studio_server.url}/studio/")
    project_id = page.evaluate(CREATE, [f"pull-{word}", f"FROM {ref}\nRUN cat /word\n"])
    page.goto(f"{studio_server.url}/studio/{project_id}/")
    page.wait_for_selector("#project-studio[data-ready=true]")

    page.locator("#build-button").click()
    page.wait_for_function(
        "() => document.querySelector('#project-studio').dataset.buildStatus === 'succeeded'",
                           timeout=60_000)
    band = page.locator('#layer-stack .band[data-step="2"]')
    assert word in band.locator(".band-log pre").text_content()
    base = page.locator('#layer-stack .band[data-step="1"]')
    assert ref in base.inner_text()
    # The base came from the registry, not from the cache, and the band says so.
    assert base.locator(".band-status").inner_text().lower() == "pulled"
    assert base.locator(".band-reason").inner_text().startswith("Pulled from its registry: 1 layer, ")
    screenshot(page, "studio-pulled-base.png", full_page=True)
    assert errors == []
