"""Classrooms through the real studio: uvicorn, a Celery worker building in its sandbox, Redis and
websockets. Mrs Tan teaches; ana and ben are her students; eve teaches another class and is a
stranger to this one. Every page, API call and socket of the classroom is tried by someone who
may and by someone who may not."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from studio.projects import starter
from tests.conftest import Browser, StudioServer

pytestmark = pytest.mark.usefixtures("base_image", "celery_worker")

# Copies everything before the slow step: any edit of app.py rebuilds COPY and both RUNs.
STARTER = """\
FROM studio/busybox:1.35
WORKDIR /app
COPY . .
RUN mkdir -p /opt/compiler && echo cc > /opt/compiler/cc && echo installing > deps.txt
RUN cat app.py > out.txt
CMD ["cat", "/app/out.txt"]
"""
# What a student who learned the lesson writes: requirements first, the compiler gone.
FIXED = """\
FROM studio/busybox:1.35
WORKDIR /app
COPY requirements.txt .
RUN mkdir -p /opt/compiler && echo cc > /opt/compiler/cc && echo installing > deps.txt
COPY app.py .
RUN cat app.py > out.txt && rm -rf /opt/compiler
CMD ["cat", "/app/out.txt"]
"""
CHECKS = [
    {"kind": "rebuild_after_change", "file": "app.py", "max_steps": 2},
    {"kind": "image_size", "max_mb": 50},
    {"kind": "layers", "max": 3},
    {"kind": "absent_path", "path": "/opt/compiler"},
]


def person(server: StudioServer, name: str) -> Browser:
    browser = Browser(server.url)
    browser.sign_up(f"{name}-{uuid.uuid4().hex[:6]}")
    return browser


def ok(reply: Any, status: int = 200) -> Any:
    assert reply.status == status, reply.text
    return reply.json()


def make_project(browser: Browser, dockerfile: str, files: dict[str, str]) -> int:
    made = ok(
        browser.api(
            "POST", "/api/projects/", {"name": f"p-{uuid.uuid4().hex[:6]}", "dockerfile": dockerfile}
        ),
        201,
    )
    for path, content in files.items():
        ok(browser.api("PUT", f"/api/projects/{made['id']}/files/{path}", {"content": content}))
    return int(made["id"])


def put(browser: Browser, project_id: int, path: str, content: str) -> None:
    ok(browser.api("PUT", f"/api/projects/{project_id}/files/{path}", {"content": content}))


def build_and_judge(
    browser: Browser, classroom_id: int, project_id: int, timeout: float = 60
) -> dict[str, Any]:
    """Build the copy, wait until its checks were held to that build, return the exercise as the
    student sees it."""
    build = ok(browser.api("POST", f"/api/projects/{project_id}/builds/", {}), 202)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mine = ok(browser.get(f"/api/classrooms/{classroom_id}/"))
        exercise = next(e for e in mine["exercises"] if e["project"] == project_id)
        if exercise["judged_build"] == build["number"]:
            exercise["build"] = ok(browser.get(f"/api/builds/{build['id']}/"))
            return exercise
        time.sleep(0.2)
    raise AssertionError(f"build {build['id']} was not judged within {timeout} s")


@pytest.fixture
def lesson(studio_server: StudioServer) -> dict[str, Any]:
    """Mrs Tan's class with one exercise handed out, and ana and ben in it."""
    tan = person(studio_server, "tan")
    starter = make_project(tan, STARTER, {"app.py": "print('hi')\n", "requirements.txt": "flask\n"})
    classroom = ok(tan.api("POST", "/api/classrooms/", {"name": "Caching 101"}), 201)
    exercise = ok(
        tan.api(
            "POST",
            f"/api/classrooms/{classroom['id']}/exercises/",
            {"title": "Keep the cache warm", "project": starter, "checks": CHECKS},
        ),
        201,
    )
    ana, ben = person(studio_server, "ana"), person(studio_server, "ben")
    joined = {}
    for who, name in ((ana, "Ana"), (ben, "Ben")):
        joined[name] = ok(
            who.api("POST", "/api/classrooms/join/", {"code": classroom["join_code"], "display_name": name}),
            201,
        )
    return {
        "tan": tan,
        "ana": ana,
        "ben": ben,
        "classroom": classroom,
        "exercise": exercise,
        "starter": starter,
        "ana_copy": joined["Ana"]["exercises"][0]["project"],
        "ben_copy": joined["Ben"]["exercises"][0]["project"],
        "ana_id": joined["Ana"]["me"]["id"],
    }


# -- joining and handing out ----------------------------------------------------------------------


def test_a_student_joins_with_the_code_and_gets_a_copy_of_her_own(lesson: dict[str, Any]) -> None:
    classroom, ana, tan = lesson["classroom"], lesson["ana"], lesson["tan"]
    assert len(classroom["join_code"]) == 8
    assert classroom["join_url"].endswith(f"/classrooms/join/{classroom['join_code']}/")

    copy = ok(ana.get(f"/api/projects/{lesson['ana_copy']}/"))
    assert copy["owner"].startswith("ana-")
    assert sorted(f["path"] for f in copy["files"]) == ["Dockerfile", "app.py", "requirements.txt"]
    dockerfile = ok(ana.get(f"/api/projects/{lesson['ana_copy']}/files/Dockerfile"))
    assert dockerfile["content"] == STARTER

    mine = ok(ana.get(f"/api/classrooms/{classroom['id']}/"))
    assert mine["role"] == "student" and mine["me"]["name"] == "Ana"
    assert [r["status"] for r in mine["exercises"][0]["results"]] == ["not_yet"] * 4
    assert "join_code" not in mine and "students" not in mine

    teacher_view = ok(tan.get(f"/api/classrooms/{classroom['id']}/"))
    assert sorted(s["name"] for s in teacher_view["students"]) == ["Ana", "Ben"]


def test_a_copy_is_the_students_own_and_the_starter_stays_as_it_was(lesson: dict[str, Any]) -> None:
    put(lesson["ana"], lesson["ana_copy"], "app.py", "print('mine')\n")
    starter = ok(lesson["tan"].get(f"/api/projects/{lesson['starter']}/files/app.py"))
    assert starter["content"] == "print('hi')\n"
    assert (
        ok(lesson["ben"].get(f"/api/projects/{lesson['ben_copy']}/files/app.py"))["content"]
        == "print('hi')\n"
    )


def test_joining_is_refused_with_a_reason(lesson: dict[str, Any], studio_server: StudioServer) -> None:
    code = lesson["classroom"]["join_code"]
    cid = lesson["classroom"]["id"]
    newcomer = person(studio_server, "cat")
    bad = newcomer.api("POST", "/api/classrooms/join/", {"code": "NOPE1234", "display_name": "Cat"})
    assert bad.status == 400 and "no class has that join code" in bad.json()["error"]
    taken = newcomer.api("POST", "/api/classrooms/join/", {"code": code.lower(), "display_name": "ana"})
    assert taken.status == 409 and "already called 'ana'" in taken.json()["error"]
    own = lesson["tan"].api("POST", "/api/classrooms/join/", {"code": code, "display_name": "Tan"})
    assert own.status == 409

    ok(lesson["tan"].api("PATCH", f"/api/classrooms/{cid}/", {"closed": True}))
    closed = newcomer.api("POST", "/api/classrooms/join/", {"code": code, "display_name": "Cat"})
    assert closed.status == 403 and "closed" in closed.json()["error"]


def test_a_student_who_joins_later_gets_every_exercise(
    lesson: dict[str, Any], studio_server: StudioServer
) -> None:
    late = person(studio_server, "dan")
    joined = ok(
        late.api(
            "POST", "/api/classrooms/join/", {"code": lesson["classroom"]["join_code"], "display_name": "Dan"}
        ),
        201,
    )
    assert [e["title"] for e in joined["exercises"]] == ["Keep the cache warm"]


def test_handing_out_with_no_project_makes_a_starter_of_the_studios(lesson: dict[str, Any]) -> None:
    cid = lesson["classroom"]["id"]
    second = ok(lesson["tan"].api("POST", f"/api/classrooms/{cid}/exercises/", {"title": "Warm up"}), 201)
    mine = ok(lesson["ana"].get(f"/api/classrooms/{cid}/"))
    copy = next(e for e in mine["exercises"] if e["id"] == second["id"])
    files = ok(lesson["ana"].get(f"/api/projects/{copy['project']}/"))["files"]
    assert sorted(f["path"] for f in files) == ["Dockerfile", "app.py", "requirements.txt"]
    dockerfile = ok(lesson["ana"].get(f"/api/projects/{copy['project']}/files/Dockerfile"))["content"]
    assert dockerfile == starter.DOCKERFILE


def test_a_bad_exercise_is_refused_naming_the_check(lesson: dict[str, Any]) -> None:
    cid = lesson["classroom"]["id"]
    bad = lesson["tan"].api(
        "POST",
        f"/api/classrooms/{cid}/exercises/",
        {"title": "x", "checks": [{"kind": "layers", "max": 3}, {"kind": "layers", "max": -1}]},
    )
    assert bad.status == 400 and bad.json()["error"].startswith("check 2: max must be a whole number")
    assert ok(lesson["tan"].get(f"/api/classrooms/{cid}/"))["exercises"][0]["title"] == "Keep the cache warm"


# -- checks on real builds ------------------------------------------------------------------------------


def test_checks_fail_on_the_starter_and_pass_once_the_dockerfile_is_fixed(lesson: dict[str, Any]) -> None:
    ana, cid, copy = lesson["ana"], lesson["classroom"]["id"], lesson["ana_copy"]

    first = build_and_judge(ana, cid, copy)
    assert first["build"]["status"] == "succeeded"
    rebuild, size, layers, compiler = first["results"]
    assert rebuild["status"] == "not_yet" and "change only app.py and build again" in rebuild["message"]
    assert size["status"] == "pass" and "under 50 MB" in size["message"]
    assert layers["status"] == "fail" and "more than the 3 allowed" in layers["message"]
    assert compiler["status"] == "fail" and "still holds /opt/compiler" in compiler["message"]

    put(ana, copy, "app.py", "print('two')\n")
    second = build_and_judge(ana, cid, copy)
    rebuild = second["results"][0]
    assert rebuild["status"] == "fail", rebuild
    assert "changed only app.py since build #1, but 3 steps rebuilt (at most 2 allowed)" in rebuild["message"]
    assert "COPY . . (line 3)" in rebuild["message"]

    put(ana, copy, "Dockerfile", FIXED)
    third = build_and_judge(ana, cid, copy)
    assert third["results"][0] == rebuild, (
        "a build that changed the Dockerfile cannot judge the rebuild check"
    )
    assert (
        third["results"][3]["status"] == "pass" and "holds no /opt/compiler" in third["results"][3]["message"]
    )

    put(ana, copy, "app.py", "print('three')\n")
    fourth = build_and_judge(ana, cid, copy)
    assert fourth["results"][0]["status"] == "pass"
    assert "changed only app.py since build #3, and 2 steps rebuilt" in fourth["results"][0]["message"]
    assert fourth["build"]["cache"]["hits"] >= 3


# -- the teacher's live dashboard ---------------------------------------------------------------


def receive(ws: Any, timeout: float = 30) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return message


def test_the_teachers_socket_sends_the_grid_then_every_change(lesson: dict[str, Any]) -> None:
    tan, ana, cid = lesson["tan"], lesson["ana"], lesson["classroom"]["id"]
    with tan.websocket(f"/ws/classrooms/{cid}/") as ws:
        snapshot = receive(ws)
        assert snapshot["type"] == "classroom.snapshot"
        assert snapshot["exercise"]["title"] == "Keep the cache warm"
        assert sorted(r["name"] for r in snapshot["students"]) == ["Ana", "Ben"]
        assert all(r["build"] is None for r in snapshot["students"])

        # Her own app.py: the store's cache is shared, and nobody has built this one yet.
        put(ana, lesson["ana_copy"], "app.py", f"print('{uuid.uuid4().hex}')\n")
        build = ok(ana.api("POST", f"/api/projects/{lesson['ana_copy']}/builds/", {}), 202)
        seen: list[dict[str, Any]] = []
        while not (
            seen and seen[-1]["type"] == "student.row" and seen[-1]["row"]["build"]["status"] == "succeeded"
        ):
            seen.append(receive(ws))
    assert {m["type"] for m in seen} >= {"student.row", "student.step"}
    assert all(m.get("student", m.get("row", {}).get("student")) == lesson["ana_id"] for m in seen)
    statuses = [m["row"]["build"]["status"] for m in seen if m["type"] == "student.row"]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded" and "running" in statuses
    steps = [m for m in seen if m["type"] == "student.step"]
    assert {m["build"] for m in steps} == {build["id"]}
    assert {m["status"] for m in steps} >= {"running", "cached", "built"}

    final = seen[-1]["row"]
    cells = [c["status"] for c in final["build"]["steps"]]
    # The base, then her steps; the CMD makes no layer and reads "metadata", as in every count.
    assert cells[0] == "cached" and cells[2:] == ["built", "built", "built", "metadata"]
    assert final["build"]["hit_ratio"] < 0.5 and final["build"]["image_size"] > 1_000_000
    assert final["checks"]["passed"] == 1 and final["checks"]["total"] == 4


# -- who may see what --------------------------------------------------------------------------


def ws_refused(browser: Browser, path: str) -> bool:
    try:
        with browser.websocket(path) as ws:
            ws.recv(timeout=5)
    except (ConnectionClosed, InvalidStatus):
        return True
    return False


def test_only_the_teacher_sees_the_class_as_a_teacher(
    lesson: dict[str, Any], studio_server: StudioServer
) -> None:
    cid, ana, tan = lesson["classroom"]["id"], lesson["ana"], lesson["tan"]
    eve = person(studio_server, "eve")
    anonymous = Browser(studio_server.url)
    ok(eve.api("POST", "/api/classrooms/", {"name": "Eve's class"}), 201)

    for path in (f"/api/classrooms/{cid}/", f"/api/classrooms/{cid}/dashboard/"):
        assert eve.get(path).status == 404, path
        assert anonymous.get(path).status == 401, path
    assert ana.get(f"/api/classrooms/{cid}/dashboard/").status == 404
    assert ok(tan.get(f"/api/classrooms/{cid}/dashboard/"))["students"]

    assert ana.api("PATCH", f"/api/classrooms/{cid}/", {"closed": True}).status == 403
    assert eve.api("PATCH", f"/api/classrooms/{cid}/", {"closed": True}).status == 404
    for who, status in ((ana, 404), (eve, 404)):
        assert who.api("POST", f"/api/classrooms/{cid}/exercises/", {"title": "x"}).status == status
        assert who.api("DELETE", f"/api/classrooms/{cid}/students/{lesson['ana_id']}/").status == status
    assert (
        eve.api(
            "POST", f"/api/classrooms/{cid}/exercises/", {"title": "x", "project": lesson["starter"]}
        ).status
        == 404
    )
    assert [c["name"] for c in ok(eve.get("/api/classrooms/"))["classrooms"]] == ["Eve's class"]
    assert ok(lesson["tan"].get(f"/api/classrooms/{cid}/"))["closed"] is False

    assert ws_refused(ana, f"/ws/classrooms/{cid}/")
    assert ws_refused(eve, f"/ws/classrooms/{cid}/")
    assert ws_refused(anonymous, f"/ws/classrooms/{cid}/")

    assert eve.get(f"/classrooms/{cid}/").status == 404
    assert "Caching 101" not in eve.get("/classrooms/").text
    assert "Caching 101" in ana.get("/classrooms/").text and "Caching 101" in tan.get("/classrooms/").text
    assert "/accounts/login/" in anonymous.get("/classrooms/").url
    join_page = anonymous.get(f"/classrooms/join/{lesson['classroom']['join_code']}/")
    assert "You need an account to join a class" in join_page.text and "Caching 101" not in join_page.text
    assert "/accounts/login/" in anonymous.get(f"/classrooms/{cid}/").url
    assert 'id="student-view"' in ana.get(f"/classrooms/{cid}/").text
    page = tan.get(f"/classrooms/{cid}/")
    assert 'id="classroom-dashboard"' in page.text and lesson["classroom"]["join_code"] in page.text
    for who in (ana, eve):
        assert who.post(f"/classrooms/{cid}/exercises/", {"title": "x"}).status == 404
        assert who.post(f"/classrooms/{cid}/settings/", {"closed": "true"}).status == 404
        assert who.post(f"/classrooms/{cid}/students/{lesson['ana_id']}/remove/").status == 404
    assert ws_refused(tan, f"/ws/classrooms/{cid}/?exercise=999999")
    teacher_view = ok(tan.get(f"/api/classrooms/{cid}/"))
    assert teacher_view["closed"] is False and len(teacher_view["students"]) == 2
    assert len(teacher_view["exercises"]) == 1


def test_a_student_cannot_open_another_students_work(lesson: dict[str, Any]) -> None:
    ana, ben, cid = lesson["ana"], lesson["ben"], lesson["classroom"]["id"]
    bens = build_and_judge(ben, cid, lesson["ben_copy"])
    build_id = bens["build"]["id"]
    copy = lesson["ben_copy"]
    for path in (
        f"/api/projects/{copy}/",
        f"/api/projects/{copy}/files/",
        f"/api/projects/{copy}/files/app.py",
        f"/api/projects/{copy}/builds/",
        f"/api/builds/{build_id}/",
        f"/api/builds/{build_id}/events/",
    ):
        assert ana.get(path).status == 404, path
    assert ana.api("POST", f"/api/projects/{copy}/builds/", {}).status == 404
    assert ana.api("PUT", f"/api/projects/{copy}/files/app.py", {"content": "x"}).status == 404
    assert ws_refused(ana, f"/ws/builds/{build_id}/")
    assert ws_refused(ana, f"/ws/projects/{copy}/")
    assert "Ben" not in ana.get(f"/classrooms/{cid}/").text


def test_the_teacher_sees_her_students_builds_but_cannot_change_their_work(lesson: dict[str, Any]) -> None:
    tan, ana, cid, copy = lesson["tan"], lesson["ana"], lesson["classroom"]["id"], lesson["ana_copy"]
    anas = build_and_judge(ana, cid, copy)
    build_id = anas["build"]["id"]
    assert ok(tan.get(f"/api/projects/{copy}/files/app.py"))["content"] == "print('hi')\n"
    assert ok(tan.get(f"/api/builds/{build_id}/"))["status"] == "succeeded"
    with tan.websocket(f"/ws/builds/{build_id}/") as ws:
        assert receive(ws)["type"] == "build.started"
    assert tan.api("PUT", f"/api/projects/{copy}/files/app.py", {"content": "x"}).status == 403
    assert tan.api("POST", f"/api/projects/{copy}/builds/", {}).status == 403
    assert tan.api("DELETE", f"/api/projects/{copy}/").status == 403

    other_teacher_project = lesson["starter"]
    assert ana.get(f"/api/projects/{other_teacher_project}/").status == 404, "the starter is not shared"


def test_a_removed_student_is_out_and_the_teacher_no_longer_sees_her_copy(lesson: dict[str, Any]) -> None:
    tan, ana, cid, copy = lesson["tan"], lesson["ana"], lesson["classroom"]["id"], lesson["ana_copy"]
    with tan.websocket(f"/ws/classrooms/{cid}/") as ws:
        receive(ws)
        ok(tan.api("DELETE", f"/api/classrooms/{cid}/students/{lesson['ana_id']}/"))
        assert receive(ws) == {"type": "student.removed", "student": lesson["ana_id"]}
    assert tan.get(f"/api/projects/{copy}/").status == 404
    assert ana.get(f"/api/classrooms/{cid}/").status == 404
    assert ok(ana.get(f"/api/projects/{copy}/"))["id"] == copy, "her copy stays hers"
    again = ana.api(
        "POST", "/api/classrooms/join/", {"code": lesson["classroom"]["join_code"], "display_name": "A"}
    )
    assert again.status == 403 and "removed you" in again.json()["error"]
    assert [r["name"] for r in ok(tan.get(f"/api/classrooms/{cid}/dashboard/"))["students"]] == ["Ben"]


def test_a_closed_class_keeps_the_work_readable_but_stops_building_it(lesson: dict[str, Any]) -> None:
    tan, ana, cid, copy = lesson["tan"], lesson["ana"], lesson["classroom"]["id"], lesson["ana_copy"]
    ok(tan.api("PATCH", f"/api/classrooms/{cid}/", {"closed": True}))
    refused = ana.api("POST", f"/api/projects/{copy}/builds/", {})
    assert (
        refused.status == 403
        and "Caching 101" in refused.json()["error"]
        and "closed" in refused.json()["error"]
    )
    assert ana.api("PUT", f"/api/projects/{copy}/files/app.py", {"content": "x"}).status == 403
    assert ok(ana.get(f"/api/projects/{copy}/files/app.py"))["content"] == "print('hi')\n"
    assert ok(ana.get(f"/api/classrooms/{cid}/"))["closed"] is True
    assert ok(tan.get(f"/api/projects/{copy}/"))["id"] == copy
    ok(tan.api("PATCH", f"/api/classrooms/{cid}/", {"closed": False}))
    assert ana.api("POST", f"/api/projects/{copy}/builds/", {}).status == 202


def test_the_class_may_look_at_the_project_its_teacher_shares(
    lesson: dict[str, Any], studio_server: StudioServer
) -> None:
    tan, ana, cid = lesson["tan"], lesson["ana"], lesson["classroom"]["id"]
    eve = person(studio_server, "eve")
    eves = make_project(eve, STARTER, {})
    assert tan.api("PATCH", f"/api/classrooms/{cid}/", {"shared_project": eves}).status == 400
    ok(tan.api("PATCH", f"/api/classrooms/{cid}/", {"shared_project": lesson["starter"]}))
    shared = ok(ana.get(f"/api/classrooms/{cid}/"))["shared_project"]
    assert shared["id"] == lesson["starter"]
    assert ok(ana.get(f"/api/projects/{lesson['starter']}/"))["id"] == lesson["starter"]
    assert ana.api("PUT", f"/api/projects/{lesson['starter']}/files/app.py", {"content": "x"}).status == 403
    assert eve.get(f"/api/projects/{lesson['starter']}/").status == 404
    ok(tan.api("PATCH", f"/api/classrooms/{cid}/", {"shared_project": None}))
    assert ana.get(f"/api/projects/{lesson['starter']}/").status == 404


def test_the_teacher_runs_the_class_from_her_pages(lesson: dict[str, Any]) -> None:
    tan, ana, cid = lesson["tan"], lesson["ana"], lesson["classroom"]["id"]
    refused = tan.post(f"/classrooms/{cid}/exercises/", {"title": " ", "max_mb": "5"})
    assert "title must be a non-empty string" in refused.text
    bad_check = tan.post(f"/classrooms/{cid}/exercises/", {"title": "Small", "max_layers": "many"})
    assert "check 1: max must be a whole number" in bad_check.text
    assert len(ok(tan.get(f"/api/classrooms/{cid}/"))["exercises"]) == 1, "a refused form hands out nothing"

    handed = tan.post(
        f"/classrooms/{cid}/exercises/", {"title": "Small", "max_mb": "5", "absent_path": "/opt"}
    )
    assert handed.status == 200 and "The image is under 5 MB" in handed.text
    assert [c["kind"] for c in ok(tan.get(f"/api/classrooms/{cid}/"))["exercises"][0]["checks"]] == [
        "image_size",
        "absent_path",
    ]
    assert "Small" in ana.get(f"/classrooms/{cid}/").text

    tan.post(f"/classrooms/{cid}/settings/", {"closed": "true"})
    assert ok(tan.get(f"/api/classrooms/{cid}/"))["closed"] is True
    assert "The class is closed" in ana.get(f"/classrooms/{cid}/").text
    tan.post(f"/classrooms/{cid}/students/{lesson['ana_id']}/remove/")
    assert ana.get(f"/classrooms/{cid}/").status == 404
