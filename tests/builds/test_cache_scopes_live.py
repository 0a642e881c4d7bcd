"""Cache scopes through the real studio (uvicorn, a Celery worker building in its sandbox, Redis,
websockets): alice and bob each build in a cache of their own, as each would with their own
Docker; a class whose teacher chose one shared cache builds in the class's."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.builds.test_builds_live import stored_events, wait_for_status
from tests.classrooms.test_classrooms import ok, person, put
from tests.conftest import Browser, StudioServer

pytestmark = pytest.mark.usefixtures("base_image", "celery_worker")

STARTER = """\
FROM studio/busybox:1.35
WORKDIR /app
COPY requirements.txt .
RUN cp requirements.txt /installed
COPY . .
RUN cat app.py > /built
CMD ["cat", "/built"]
"""
FILES = {"requirements.txt": "flask\n", "app.py": "print('hi')\n"}
FILESYSTEM = ("WORKDIR", "COPY", "RUN")


def own_project(browser: Browser, dockerfile: str, files: dict[str, str]) -> int:
    made = ok(browser.api("POST", "/api/projects/", {"name": f"p-{uuid.uuid4().hex[:6]}",
                                                     "dockerfile": dockerfile}), 201)
    for path, content in files.items():
        put(browser, made["id"], path, content)
    return int(made["id"])


def build(browser: Browser, project_id: int, **options: Any) -> dict[str, Any]:
    started = ok(browser.api("POST", f"/api/projects/{project_id}/builds/", options), 202)
    done = wait_for_status(browser, started["id"], {"succeeded", "failed", "cancelled"}, timeout=90)
    assert done["status"] == "succeeded", done
    return done


def verdicts(done: dict[str, Any]) -> list[str]:
    return [s["status"] for s in done["steps"] if s["keyword"] in FILESYSTEM]


def step(done: dict[str, Any], start: str) -> dict[str, Any]:
    return next(s for s in done["steps"] if s["instruction"].startswith(start))


def test_alice_and_bob_each_build_the_same_starter_cold_and_are_told_what_they_changed(
    studio_server: StudioServer,
) -> None:
    alice, bob = person(studio_server, "alice"), person(studio_server, "bob")
    alices, bobs = own_project(alice, STARTER, FILES), own_project(bob, STARTER, FILES)

    first = build(alice, alices)
    assert verdicts(first) == ["built"] * 5
    # Bob's first build runs every step too, as his own `docker build` would: alice's cache is hers.
    second = build(bob, bobs)
    assert verdicts(second) == ["built"] * 5
    assert second["cache"] == {"hits": 0, "misses": 5}
    assert second["cache_scope"]["kind"] == "user" and "bob" in second["cache_scope"]["label"]
    assert verdicts(build(bob, bobs)) == ["cached"] * 5

    for who, project_id in ((alice, alices), (bob, bobs)):
        put(who, project_id, "app.py", "print('mine')\n")
        edited = build(who, project_id)
        assert verdicts(edited) == ["cached", "cached", "cached", "built", "built"]
        reason = step(edited, "COPY . .")["reason"]
        assert reason["code"] == "files_changed" and "app.py" in reason["message"], reason


def test_a_class_with_one_shared_cache_serves_the_second_students_build_from_the_first(
    studio_server: StudioServer,
) -> None:
    tan = person(studio_server, "tan")
    starter = own_project(tan, STARTER, FILES)
    classroom = ok(tan.api("POST", "/api/classrooms/", {"name": "Shared caches"}), 201)
    ok(tan.api("POST", f"/api/classrooms/{classroom['id']}/exercises/",
               {"title": "CI runners", "project": starter, "checks": []}), 201)
    shared = ok(tan.api("PATCH", f"/api/classrooms/{classroom['id']}/", {"shared_cache": True}))
    assert shared["shared_cache"] is True
    bad = tan.api("PATCH", f"/api/classrooms/{classroom['id']}/", {"shared_cache": "yes"})
    assert bad.status == 400 and "shared_cache" in bad.text

    copies = {}
    for name in ("Ana", "Ben"):
        who = person(studio_server, name.lower())
        joined = ok(who.api("POST", "/api/classrooms/join/",
                            {"code": classroom["join_code"], "display_name": name}), 201)
        copies[name] = (who, joined["exercises"][0]["project"])

    ana, ana_copy = copies["Ana"]
    ben, ben_copy = copies["Ben"]
    assert verdicts(build(ana, ana_copy)) == ["built"] * 5
    bens = build(ben, ben_copy)
    assert verdicts(bens) == ["cached"] * 5
    # Why: the build says whose cache served it, on every page that shows it.
    assert bens["cache_scope"] == {"kind": "class", "name": f"class:{classroom['id']}",
                                   "label": "cache shared by the class Shared caches"}
    grid = ok(tan.get(f"/api/classrooms/{classroom['id']}/dashboard/"))
    briefs = [row["build"] for row in grid["students"] if row.get("build")]
    assert briefs and all(b["cache_scope"]["kind"] == "class" for b in briefs)

    put(ben, ben_copy, "app.py", "print('ben')\n")
    edited = build(ben, ben_copy)
    reason = step(edited, "COPY . .")["reason"]
    assert reason["code"] == "files_changed" and "app.py" in reason["message"], reason


MOUNTED = """\
FROM studio/busybox:1.35
RUN --mount=type=cache,target=/pip sh -c 'echo "in the cache: $(ls /pip)"; echo planted > /pip/wheel'
"""


def logs(browser: Browser, done: dict[str, Any]) -> str:
    return "".join(e["text"] for e in stored_events(browser, done["id"]) if e["type"] == "step.log")


def test_a_cache_mount_alice_wrote_is_empty_for_bob(studio_server: StudioServer) -> None:
    alice, bob = person(studio_server, "alice"), person(studio_server, "bob")
    alices, bobs = own_project(alice, MOUNTED, {}), own_project(bob, MOUNTED, {})
    build(alice, alices)
    again = build(alice, alices, no_cache=True)
    assert "in the cache: wheel" in logs(alice, again)

    bobs_build = build(bob, bobs)
    # Neither alice's layer served to him as a hit, nor her wheel in his mount.
    assert step(bobs_build, "RUN")["status"] == "built"
    assert "in the cache: \n" in logs(bob, bobs_build)


def test_a_first_build_in_a_new_cache_still_names_what_the_student_changed(
    studio_server: StudioServer,
) -> None:
    """Ana builds in her own cache, edits app.py, and then the teacher gives the class one shared
    cache: nothing in it to compare with, so the reason says so, and still names her edit."""
    tan = person(studio_server, "tan")
    starter = own_project(tan, STARTER, FILES)
    classroom = ok(tan.api("POST", "/api/classrooms/", {"name": "Switching caches"}), 201)
    ok(tan.api("POST", f"/api/classrooms/{classroom['id']}/exercises/",
               {"title": "Shared", "project": starter, "checks": []}), 201)
    ana = person(studio_server, "ana")
    joined = ok(ana.api("POST", "/api/classrooms/join/",
                        {"code": classroom["join_code"], "display_name": "Ana"}), 201)
    copy = joined["exercises"][0]["project"]
    assert build(ana, copy)["cache_scope"]["kind"] == "user"

    put(ana, copy, "app.py", "print('ana')\n")
    ok(tan.api("PATCH", f"/api/classrooms/{classroom['id']}/", {"shared_cache": True}))
    second = build(ana, copy)
    assert second["cache_scope"]["kind"] == "class"
    assert verdicts(second) == ["built"] * 5
    # The first step the new cache lacks says why; the ones above it follow from it.
    reason = step(second, "WORKDIR")["reason"]
    assert reason["code"] == "first_build", reason
    assert "Since build #1, the files app.py changed." in reason["message"], reason
    assert reason["since_build"] == {"build": 1, "files": ["app.py"], "build_args": []}
