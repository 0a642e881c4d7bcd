"""The layer-stack page in a real browser against the real server: a person replays the recorded
demo builds and reads, band by band, what the cache kept and why the rest was rebuilt."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
ARTIFACTS = PROJECT_DIR / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(
        not (PROJECT_DIR / "frontend" / "dist" / "studio.js").exists(), reason="the frontend is not built"
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def test_a_replayed_rebuild_shows_cached_bands_and_why_copy_was_rebuilt(studio_server, browser) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{studio_server.url}/studio/?demo=1")
    page.get_by_role("button", name="Replay demo").click()
    page.wait_for_selector("#studio[data-replay=done]", timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "studio-replay.png"), full_page=True)

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
    assert "1 cached, 2 rebuilt" in page.locator(".build-summary").inner_text()

    page.get_by_role("button", name="Large text").click()
    page.screenshot(path=str(ARTIFACTS / "studio-replay-large.png"), full_page=True)
    assert errors == []
    page.close()
