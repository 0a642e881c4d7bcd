"""What the tests of the real page share: Debian's Chromium, where screenshots go, and the
steps a person takes in every story (signing up, watching for errors on the page)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import PASSWORD

PROJECT_DIR = Path(__file__).resolve().parent.parent
ARTIFACTS = PROJECT_DIR / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Headless, and quiet: this machine's network is closed, and Chromium's own background traffic
# would only fail, many requests at a time.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def page_marks(script: str) -> list[pytest.MarkDecorator]:
    """Skip a module of page tests, saying why, where Chromium or the page's built script is missing."""
    return [
        pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
        pytest.mark.skipif(
            not (PROJECT_DIR / "frontend" / "dist" / script).exists(), reason="the frontend is not built"
        ),
    ]


def watch_errors(page: Any) -> list[str]:
    """The page's console errors and uncaught exceptions, as they happen."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def sign_up(page: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", password)
    page.fill("#id_password2", password)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_load_state()


def screenshot(page: Any, name: str, **options: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), **options)
