"""The Content-Security-Policy holds on the real pages: in Chromium, every page of the studio
loads, runs its scripts and opens its sockets without the browser refusing anything."""

from __future__ import annotations

from typing import Any

import pytest

from .pages import page_marks, sign_up, watch_errors
from .test_studio_page import _api

pytestmark = page_marks("studio.js")


RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def _visit(page: Any, url: str) -> list[str]:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    found: list[str] = page.evaluate("window.__violations")
    return found


@pytest.mark.usefixtures("base_image")
def test_no_page_breaks_the_content_security_policy(studio_server: Any, chromium: Any) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 720})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    errors = watch_errors(page)
    base = studio_server.url
    refused: dict[str, list[str]] = {}
    for path in ("/", "/accounts/login/", "/accounts/signup/", "/studio/demo/"):
        refused[path] = _visit(page, base + path)

    sign_up(page, base, "carol-csp")
    project_id = _api(page, "/api/projects/", {"name": "csp", "dockerfile": "FROM busybox:latest\n"})["id"]
    for path in ("/studio/", f"/studio/{project_id}/", "/classrooms/", "/compare/"):
        refused[path] = _visit(page, base + path)
    # The editor at work: CodeMirror's own styles, the plan fetched as one types.
    page.goto(f"{base}/studio/{project_id}/")
    page.locator(".cm-content").first.click()
    page.keyboard.type("RUN echo csp\n")
    page.wait_for_timeout(1500)
    refused["typing"] = page.evaluate("window.__violations")

    assert {path: found for path, found in refused.items() if found} == {}
    assert [e for e in errors if "Content Security Policy" in e] == []
    context.close()
