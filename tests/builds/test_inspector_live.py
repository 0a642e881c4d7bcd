"""The layer inspector, through the served studio with a real build: click a band, see the files its
layer changed, what it printed, and what its cache key was made from."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builds.test_builds_live import project
from tests.builds.test_plan_live import build_now
from tests.conftest import Browser, StudioServer

pytestmark = pytest.mark.usefixtures("base_image", "celery_worker")

# WORKDIR names the person, so that no other test's build is in the cache for them.
DOCKERFILE = """\
FROM studio/busybox:1.35
WORKDIR /{who}
COPY notes.txt .
RUN echo to-out && echo to-err >&2 && mkdir /data && echo x > /data/new && rm /etc/group && rm -r /root
ENV MODE=test
"""


def inspect(browser: Browser, build_id: int, number: int, token: str = "") -> dict[str, Any]:
    answer = browser.get(f"/api/builds/{build_id}/steps/{number}/" + (f"?token={token}" if token else ""))
    assert answer.status == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_alice_opens_a_layer_and_sees_its_files_its_log_and_its_key(browser: Browser) -> None:
    browser.sign_up("alice-inspect-1")
    project_id = project(browser, DOCKERFILE.format(who="alice-inspect-1"), {"notes.txt": "twelve bytes"})
    build = build_now(browser, project_id)
    run = inspect(browser, build["id"], 4)
    listed = next(s for s in build["steps"] if s["step"] == 4)
    assert {k: run[k] for k in listed} == listed  # the same step as the build shows it
    changes = {f["path"]: (f["change"], f["kind"]) for f in run["files"]}
    assert changes["data"] == ("added", "dir")
    assert changes["data/new"] == ("added", "file")
    # What a deleted entry was is read from the layers below the one that deleted it.
    assert changes["etc/group"] == ("deleted", "file")
    assert changes["root"] == ("deleted", "dir")
    assert run["files_truncated"] is False
    assert {"stream": "stdout", "text": "to-out\n"} in run["log"]
    assert {"stream": "stderr", "text": "to-err\n"} in run["log"]
    assert run["cache_inputs"]["op"] == "run"
    assert run["cache_inputs"]["args"][-1].startswith("echo to-out")
    assert run["cache_inputs"]["cwd"] == "/alice-inspect-1"
    assert run["cache_inputs"]["parent"] == next(s for s in build["steps"] if s["step"] == 3)["cache_key"]

    copy = inspect(browser, build["id"], 3)
    assert copy["files"] == [
        {"path": "alice-inspect-1/notes.txt", "change": "added", "kind": "file", "size": 12}
    ]
    assert copy["log"] == [] and copy["cache_inputs"]["dest"] == "/alice-inspect-1/"

    env = inspect(browser, build["id"], 5)
    assert env["files"] == [] and env["cache_inputs"] is None and env["layer"] is None


def test_a_cached_step_shows_the_layer_it_reused(browser: Browser) -> None:
    browser.sign_up("alice-inspect-2")
    project_id = project(browser, DOCKERFILE.format(who="alice-inspect-2"), {"notes.txt": "twelve bytes"})
    first = build_now(browser, project_id)
    again = build_now(browser, project_id)
    reused = inspect(browser, again["id"], 4)
    assert reused["status"] == "cached" and reused["log"] == []
    assert reused["files"] == inspect(browser, first["id"], 4)["files"]
    assert reused["cache_inputs"] == inspect(browser, first["id"], 4)["cache_inputs"]


def test_only_those_who_may_see_the_build_may_inspect_it(
    browser: Browser, studio_server: StudioServer
) -> None:
    browser.sign_up("alice-inspect-3")
    project_id = project(browser, DOCKERFILE.format(who="alice-inspect-3"), {"notes.txt": "twelve bytes"})
    build = build_now(browser, project_id)
    assert browser.get(f"/api/builds/{build['id']}/steps/99/").status == 404
    token = browser.api("POST", f"/api/projects/{project_id}/share/").json()["share_token"]

    bob = Browser(studio_server.url)
    assert bob.get(f"/api/builds/{build['id']}/steps/4/").status == 401
    bob.sign_up("bob-inspect-3")
    assert bob.get(f"/api/builds/{build['id']}/steps/4/").status == 404
    assert inspect(bob, build["id"], 4, token)["files"]


def test_what_a_step_deleted_is_named_across_stages(browser: Browser) -> None:
    browser.sign_up("alice-inspect-4")
    dockerfile = (
        "FROM studio/busybox:1.35 AS base\nRUN mkdir /alice-inspect-4 && echo b > /alice-inspect-4/b\n"
        "FROM base\nRUN rm -r /alice-inspect-4 /etc/passwd\n"
    )
    build = build_now(browser, project(browser, dockerfile))
    removed = {f["path"]: (f["change"], f["kind"]) for f in inspect(browser, build["id"], 4)["files"]}
    assert removed == {"alice-inspect-4": ("deleted", "dir"), "etc/passwd": ("deleted", "file")}
