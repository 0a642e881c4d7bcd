"""Predict before you build, through the served studio: the page asks the planner as its person types,
and what it is told must be what the build then does."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builds.test_builds_live import CLASSROOM, build_of, project, start, wait_for_status
from tests.conftest import Browser

pytestmark = pytest.mark.usefixtures("base_image", "celery_worker")


def plan(browser: Browser, project_id: int, **body: Any) -> dict[str, Any]:
    answer = browser.api("POST", f"/api/projects/{project_id}/plan/", body)
    assert answer.status == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def build_now(browser: Browser, project_id: int, **options: Any) -> dict[str, Any]:
    build = start(browser, project_id, **options)
    done = wait_for_status(browser, build["id"], {"succeeded", "failed"}, timeout=60)
    assert done["status"] == "succeeded", done
    return build_of(browser, build["id"])


def assert_foretold(predicted: dict[str, Any], built: dict[str, Any]) -> None:
    assert predicted["error"] is None
    steps = {s["step"]: s for s in built["steps"]}
    assert [p["step"] for p in predicted["steps"]] == sorted(steps)
    for row in predicted["steps"]:
        real = steps[row["step"]]
        assert (row["instruction"], row["prediction"]) == (real["instruction"], real["status"])
        assert row["reason"] == real["reason"]


def codes(predicted: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [
        (r["instruction"], r["prediction"], (r["reason"] or {}).get("code"))
        for r in predicted["steps"]
        if r["keyword"] != "CMD"
    ]


def test_alice_is_told_what_her_next_build_does_before_she_builds(browser: Browser) -> None:
    browser.sign_up("alice-plan-1")
    # Her own WORKDIR, so that no other test's build of the classroom is in the cache for her.
    dockerfile = CLASSROOM.replace("WORKDIR /app", "WORKDIR /alice-plan-1")
    project_id = project(browser, dockerfile, {"greeting.txt": "hello, class\n"})

    first = plan(browser, project_id)
    assert [(r["line"], r["prediction"]) for r in first["steps"]][:3] == [
        (1, "cached"),
        (2, "built"),
        (3, "built"),
    ]
    assert first["steps"][2]["reason"]["code"] == "parent_rebuilt"
    assert_foretold(first, build_now(browser, project_id))
    # Every step from the cache; the CMD changes only the configuration, nothing to cache.
    again = plan(browser, project_id)["steps"]
    assert {r["prediction"] for r in again if r["keyword"] != "CMD"} == {"cached"}

    put = browser.api("PUT", f"/api/projects/{project_id}/files/greeting.txt", {"content": "hi, class\n"})
    assert put.status == 200
    edited = plan(browser, project_id)
    assert codes(edited) == [
        ("FROM studio/busybox:1.35", "cached", None),
        ("WORKDIR /alice-plan-1", "cached", None),
        ("COPY greeting.txt .", "built", "files_changed"),
        ("RUN cat greeting.txt && echo built > built.txt", "built", "parent_rebuilt"),
        ('RUN for i in 1 2 3; do echo "line $i"; done', "built", "parent_rebuilt"),
    ]
    assert edited["steps"][2]["reason"]["modified"] == ["greeting.txt"]
    assert_foretold(edited, build_now(browser, project_id))


def test_the_text_being_typed_is_planned_before_it_is_saved(browser: Browser) -> None:
    browser.sign_up("alice-plan-2")
    project_id = project(browser, CLASSROOM, {"greeting.txt": "hello\n"})
    build_now(browser, project_id)
    typed = CLASSROOM.replace('CMD ["cat"', 'RUN echo more > /more\nCMD ["cat"')
    predicted = plan(browser, project_id, dockerfile=typed)
    assert codes(predicted)[-1] == ("RUN echo more > /more", "built", "new_step")
    assert [p for _, p, _ in codes(predicted)[:-1]] == ["cached"] * 5
    # The saved Dockerfile is what a prediction without text sees, unchanged by what was typed.
    assert codes(plan(browser, project_id))[-1][1] == "cached"

    broken = plan(browser, project_id, dockerfile=CLASSROOM + "FROBNICATE now\n")
    assert broken["steps"] == [] and broken["error"]["line"] == 7
    unknown = plan(browser, project_id, dockerfile="FROM nosuch/image:1\nRUN true\n")
    assert unknown["error"]["line"] == 1 and "nosuch/image:1" in unknown["error"]["message"]
    no_cache = plan(browser, project_id, no_cache=True)
    assert {c for _, p, c in codes(no_cache) if p == "built"} == {"no_cache"}


def test_a_planned_copy_of_the_dockerfile_sees_the_text_being_typed(browser: Browser) -> None:
    browser.sign_up("alice-plan-3")
    dockerfile = "FROM studio/busybox:1.35\nCOPY . /src\n"
    project_id = project(browser, dockerfile, {"app/main.py": "print(1)\n"})
    build_now(browser, project_id)
    predicted = plan(browser, project_id, dockerfile=dockerfile + "# a comment\n")
    copy = predicted["steps"][1]
    assert (copy["prediction"], copy["reason"]["code"]) == ("built", "files_changed")
    assert copy["reason"]["modified"] == ["Dockerfile"]
    assert browser.api("DELETE", f"/api/projects/{project_id}/files/app/main.py").status == 200
    gone = plan(browser, project_id)
    # The folder went with its last file, as it does from the context the build is given.
    assert gone["steps"][1]["reason"]["removed"] == ["app", "app/main.py"]
    assert_foretold(gone, build_now(browser, project_id))


def test_only_the_owner_may_ask_and_bad_options_are_named(browser: Browser, studio_server: Any) -> None:
    browser.sign_up("alice-plan-4")
    project_id = project(browser, CLASSROOM, {"greeting.txt": "hello\n"})
    bad = browser.api("POST", f"/api/projects/{project_id}/plan/", {"build_args": ["x"]})
    assert bad.status == 400 and bad.json()["field"] == "build_args"
    assert browser.api("PATCH", f"/api/projects/{project_id}/", {"visibility": "public"}).status == 200

    bob = Browser(studio_server.url)
    bob.get("/accounts/login/")  # for the CSRF cookie, as a page would have it
    assert bob.api("POST", f"/api/projects/{project_id}/plan/", {}).status == 401
    bob.sign_up("bob-plan-4")
    refused = bob.api("POST", f"/api/projects/{project_id}/plan/", {})
    assert refused.status == 403  # he may look at a public project, not plan its builds
    assert browser.api("PATCH", f"/api/projects/{project_id}/", {"visibility": "private"}).status == 200
    assert bob.api("POST", f"/api/projects/{project_id}/plan/", {}).status == 404


def test_asking_too_fast_is_refused_with_when_to_ask_again(browser: Browser) -> None:
    browser.sign_up("alice-plan-5")
    project_id = project(browser, "FROM studio/busybox:1.35\nRUN true\n")
    for _ in range(60):
        answer = browser.api("POST", f"/api/projects/{project_id}/plan/", {})
        if answer.status != 200:
            break
    assert answer.status == 429, "sixty predictions in a row were all answered"
    assert answer.json()["limit"] == "predictions_per_minute" and answer.json()["retry_after"] >= 1
