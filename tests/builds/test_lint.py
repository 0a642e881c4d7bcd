"""Lint as the editor shows it: hadolint's rules and the studio's hints in one list, in line order;
through the served studio, for whoever may see the project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builds import lint
from tests.builds.test_builds_live import project
from tests.conftest import Browser, StudioServer

TEXT = """\
FROM python
WORKDIR /app
COPY . .
RUN pip install -r requirements.txt \\
    --no-cache-dir
CMD ["python", "app.py"]
"""


def by_code(diagnostics: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["code"]: d for d in diagnostics}


class TestDockerfileLint:
    def test_hadolint_and_the_studio_speak_in_one_list_in_line_order(self) -> None:
        found = lint.dockerfile_lint(text=TEXT)
        codes = by_code(found)
        untagged = codes["DL3006"]
        assert (untagged["line"], untagged["severity"], untagged["source"]) == (1, "warning", "hadolint")
        assert untagged["url"] == "https://github.com/hadolint/hadolint/wiki/DL3006"
        order = codes["studio/copy-all-before-install"]
        assert (order["line"], order["source"], order["url"]) == (3, "studio", None)
        assert "line 4" in order["message"]
        assert [d["line"] for d in found] == sorted(d["line"] for d in found)

    def test_a_continued_instruction_is_marked_over_all_its_lines(self) -> None:
        found = lint.dockerfile_lint(text="FROM python:3.12\nRUN pip install \\\n    flask\n")
        assert by_code(found)["DL3013"]["end_line"] == 3  # pin versions in pip install

    def test_a_clean_dockerfile_has_nothing_to_say(self) -> None:
        assert lint.dockerfile_lint(text='FROM busybox:1.36\nCMD ["true"]\n') == []

    def test_an_unparseable_dockerfile_is_named_at_its_line_once(self) -> None:
        found = lint.dockerfile_lint(text="FROM busybox:1.36\nFROBNICATE now\n")
        errors = [d for d in found if d["severity"] == "error"]
        assert len(errors) == 1 and errors[0]["line"] == 2

    def test_without_the_binary_one_diagnostic_says_so_and_the_hints_remain(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(lint, "hadolint_path", lambda: None)
        found = lint.dockerfile_lint(text=TEXT)
        assert [d["source"] for d in found] == ["studio", "studio"]
        assert "hadolint is not installed" in by_code(found)["studio/hadolint-unavailable"]["message"]
        assert "studio/copy-all-before-install" in by_code(found)

    def test_a_binary_that_fails_is_reported_not_raised(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        broken = tmp_path / "hadolint"
        broken.write_text("#!/bin/sh\necho 'no such option' >&2\nexit 3\n")
        broken.chmod(0o755)
        monkeypatch.setattr(lint, "hadolint_path", lambda: str(broken))
        (only,) = lint.hadolint("FROM busybox:1.36\n")
        assert only["code"] == "studio/hadolint-unavailable" and "no such option" in only["message"]


@pytest.mark.usefixtures("base_image")
def test_alice_lints_what_she_types_and_bob_may_not_look(
    browser: Browser, studio_server: StudioServer
) -> None:
    browser.sign_up("alice-lint-1")
    project_id = project(browser, "FROM busybox:1.36\nRUN apt-get update\n")
    typed = browser.api("POST", f"/api/projects/{project_id}/lint/", {"dockerfile": TEXT})
    assert typed.status == 200, typed.text
    assert {"DL3006", "studio/copy-all-before-install"} <= set(by_code(typed.json()["diagnostics"]))
    saved = browser.api("POST", f"/api/projects/{project_id}/lint/", {})
    assert by_code(saved.json()["diagnostics"])["studio/apt-update-alone"]["line"] == 2
    bad = browser.api("POST", f"/api/projects/{project_id}/lint/", {"dockerfile": 7})
    assert bad.status == 400 and bad.json()["field"] == "dockerfile"

    bob = Browser(studio_server.url)
    bob.sign_up("bob-lint-1")
    assert bob.api("POST", f"/api/projects/{project_id}/lint/", {"dockerfile": TEXT}).status == 404
