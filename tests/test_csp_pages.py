"""Every page of the studio under its Content-Security-Policy, in Chromium: the policy allows no
inline script, and no page needs one (nothing is blocked, nothing breaks)."""

from __future__ import annotations

import json
from typing import Any

from .conftest import StudioServer
from .pages import page_marks, sign_up, watch_errors

pytestmark = page_marks("studio.js")

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${where})`);
});
"""


def _api(page: Any, method: str, path: str, body: Any = None) -> Any:
    """A call to the JSON API from inside the page, as its own script makes it."""
    return page.evaluate(
        """async ([method, path, body]) => {
            const token = document.cookie.match(/csrftoken=([^;]+)/)?.[1] ?? "";
            const reply = await fetch(path, {method, headers: {"Content-Type": "application/json",
              "X-CSRFToken": token}, body: body === null ? undefined : JSON.stringify(body)});
            return await reply.json();
        }""",
        [method, path, body],
    )


def _wait_build(page: Any, build_id: int) -> None:
    page.wait_for_function(
        """async (id) => { const r = await fetch(`/api/builds/${id}/`); const b = await r.json();
           return ["succeeded", "failed"].includes(b.status); }""",
        arg=build_id,
        polling=300,
        timeout=60_000,
    )


def test_no_page_of_the_studio_breaks_its_content_security_policy(
    studio_server: StudioServer, celery_worker: Any, base_image: str, chromium: Any
) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 720})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    errors = watch_errors(page)
    base = studio_server.url
    visited: dict[str, list[str]] = {}

    def visit(path: str, ready: str) -> None:
        reply = page.goto(base + path)
        assert reply is not None and reply.status == 200, path
        policy = reply.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        page.wait_for_selector(ready, timeout=20_000)
        page.wait_for_timeout(500)  # what the page's script does once it is up
        visited[path] = page.evaluate("window.__violations")

    visit("/", "text=Sign up")
    visit("/accounts/login/", "#id_username")
    visit("/studio/demo/", ".layer-stack, #layer-stack")
    sign_up(page, base, "csp-checker")
    dockerfile = "FROM studio/busybox:1.35\nRUN echo hi\n"
    project = _api(page, "POST", "/api/projects/", {"name": "csp", "dockerfile": dockerfile})
    builds = []
    for _ in range(2):
        build = _api(page, "POST", f"/api/projects/{project['id']}/builds/", {"no_cache": True})
        _wait_build(page, build["id"])
        builds.append(build["id"])
    visit(f"/studio/{project['id']}/", "#layer-stack .layer, #layer-stack [data-step], .cm-editor")
    visit(f"/compare/{builds[0]}/{builds[1]}/", "main")
    visit(f"/images/?build={builds[0]}", ".image-bar")
    visit(f"/builds/{builds[0]}/bytes/", "#bytes[data-ready=true]")
    classroom = _api(page, "POST", "/api/classrooms/", {"name": "CSP class"})
    visit(f"/classrooms/{classroom['id']}/", "main")
    visit("/classrooms/", "main")

    assert visited == {path: [] for path in visited}, json.dumps(visited, indent=1)
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()
