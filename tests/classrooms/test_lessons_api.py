"""Handing out a lesson of the studio's pack through the real studio (uvicorn, a Celery worker
building in its sandbox, Redis): the teacher names the lesson, every student gets its starter and
text, the checks that change a file run as builds of their own after a student's build, and a
student who never built reads "not yet", not "failed"."""

from __future__ import annotations

import time
from typing import Any

import pytest

from studio.classrooms import pack
from tests.classrooms.test_classrooms import ok, person, put
from tests.conftest import Browser, StudioServer

pytestmark = pytest.mark.usefixtures("base_image", "celery_worker")

ORDERING = pack.lesson("ordering")
assert ORDERING is not None
FIXED = (ORDERING.solution / "Dockerfile").read_text()


def judged(browser: Browser, classroom_id: int, project_id: int, number: int, timeout: float = 90) -> Any:
    """The student's exercise once its checks were held to build `number`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mine = ok(browser.get(f"/api/classrooms/{classroom_id}/"))
        exercise = next(e for e in mine["exercises"] if e["project"] == project_id)
        if exercise["judged_build"] == number:
            return exercise
        time.sleep(0.2)
    raise AssertionError(f"build #{number} of project {project_id} was not judged within {timeout} s")


def build(browser: Browser, project_id: int) -> int:
    return int(ok(browser.api("POST", f"/api/projects/{project_id}/builds/", {}), 202)["number"])


@pytest.fixture
def handed_out(studio_server: StudioServer) -> dict[str, Any]:
    tan = person(studio_server, "tan")
    classroom = ok(tan.api("POST", "/api/classrooms/", {"name": "Caching 101"}), 201)
    ana = person(studio_server, "ana")
    joined = ok(
        ana.api("POST", "/api/classrooms/join/", {"code": classroom["join_code"], "display_name": "Ana"}), 201
    )
    exercise = ok(
        tan.api("POST", f"/api/classrooms/{classroom['id']}/exercises/", {"lesson": "ordering"}), 201
    )
    mine = ok(ana.get(f"/api/classrooms/{classroom['id']}/"))["exercises"][0]
    assert joined["exercises"] == []
    return {"tan": tan, "ana": ana, "cid": classroom["id"], "exercise": exercise, "copy": mine["project"]}


def test_the_pack_is_listed_for_a_signed_in_teacher(studio_server: StudioServer) -> None:
    tan = person(studio_server, "tan")
    lessons = ok(tan.get("/api/lessons/"))["lessons"]
    assert [lesson["slug"] for lesson in lessons][:3] == ["layers", "cache", "ordering"]
    assert lessons[2]["steps"][0]["title"] == "What the starter does"
    assert Browser(studio_server.url).get("/api/lessons/").status == 401


def test_a_lesson_is_handed_out_with_its_starter_text_and_checks(handed_out: dict[str, Any]) -> None:
    exercise, ana, cid = handed_out["exercise"], handed_out["ana"], handed_out["cid"]
    assert exercise["lesson"] == "ordering" and exercise["title"] == ORDERING.title
    assert [s["title"] for s in exercise["steps"]] == [
        "What the starter does", "Copy the list first", "The check",
    ]
    assert exercise["checks"][0]["description"] == "When the check changes app.py, at most 1 step rebuild"

    copy = handed_out["copy"]
    dockerfile = ok(ana.get(f"/api/projects/{copy}/files/Dockerfile"))["content"]
    assert dockerfile == (ORDERING.starter / "Dockerfile").read_text()
    mine = ok(ana.get(f"/api/classrooms/{cid}/"))["exercises"][0]
    assert mine["state"] == "not_yet" and mine["steps"] == exercise["steps"]
    row = ok(handed_out["tan"].get(f"/api/classrooms/{cid}/dashboard/"))["students"][0]
    assert row["checks"]["state"] == "not_yet" and row["build"] is None


def test_the_starter_fails_the_checks_own_build_and_the_fix_passes(handed_out: dict[str, Any]) -> None:
    ana, cid, copy = handed_out["ana"], handed_out["cid"], handed_out["copy"]
    first = judged(ana, cid, copy, build(ana, copy))
    assert first["state"] == "failed"
    edit = first["results"][0]
    assert edit["status"] == "fail", edit
    assert "With app.py changed in a copy of build #1's files, 2 steps rebuilt" in edit["message"]
    assert "line 4: RUN mkdir -p /opt/deps" in edit["message"]
    assert "app.py was changed" in edit["message"]  # the engine's own reason
    # The check changed a copy: the student's app.py is as it was.
    assert ok(ana.get(f"/api/projects/{copy}/files/app.py"))["content"] == (
        ORDERING.starter / "app.py"
    ).read_text()

    put(ana, copy, "Dockerfile", FIXED)
    second = judged(ana, cid, copy, build(ana, copy))
    assert second["state"] == "passed", second["results"]
    row = ok(handed_out["tan"].get(f"/api/classrooms/{cid}/dashboard/"))["students"][0]
    assert row["checks"]["state"] == "passed" and row["checks"]["passed"] == 3


def test_the_teacher_edits_a_handed_out_lesson(handed_out: dict[str, Any]) -> None:
    tan, ana, cid = handed_out["tan"], handed_out["ana"], handed_out["cid"]
    url = f"/api/classrooms/{cid}/exercises/{handed_out['exercise']['id']}/"
    edited = ok(
        tan.api(
            "PATCH",
            url,
            {"instructions": "## Only this\nDo it.", "checks": [{"kind": "layers", "max": 9}]},
        )
    )
    assert edited["steps"] == [{"title": "Only this", "text": "Do it."}]
    mine = ok(ana.get(f"/api/classrooms/{cid}/"))["exercises"][0]
    assert [r["check"] for r in mine["results"]] == ["The image has no more than 9 layers"]
    assert mine["state"] == "not_yet"

    bad = tan.api("PATCH", url, {"checks": [{"kind": "edit_rebuilds", "file": "app.py"}]})
    assert bad.status == 400 and "check 1: max_steps must be a whole number" in bad.json()["error"]
    assert ana.api("PATCH", url, {"title": "mine now"}).status == 404
    unknown = tan.api("POST", f"/api/classrooms/{cid}/exercises/", {"lesson": "../../etc"})
    assert unknown.status == 400 and "the studio has no lesson '../../etc'" in unknown.json()["error"]


# -- the teacher's tools --------------------------------------------------------------------------


def test_the_teacher_resets_a_copy_to_the_starter_and_its_builds_stay(handed_out: dict[str, Any]) -> None:
    tan, ana, cid, copy = handed_out["tan"], handed_out["ana"], handed_out["cid"], handed_out["copy"]
    eid = handed_out["exercise"]["id"]
    student = ok(tan.get(f"/api/classrooms/{cid}/"))["students"][0]["id"]
    put(ana, copy, "Dockerfile", FIXED)
    put(ana, copy, "notes.txt", "mine\n")
    first = build(ana, copy)
    judged(ana, cid, copy, first)

    url = f"/api/classrooms/{cid}/exercises/{eid}/students/{student}/"
    assert ana.api("POST", url + "reset/", {}).status == 404  # only the teacher
    row = ok(tan.api("POST", url + "reset/", {}))
    assert row["checks"]["state"] == "not_yet" and row["build"]["number"] == first
    assert "put your copy back to the starter" in row["checks"]["results"][0]["message"]
    files = ok(ana.get(f"/api/projects/{copy}/"))["files"]
    assert sorted(f["path"] for f in files) == ["Dockerfile", "app.py", "requirements.txt"]
    assert ok(ana.get(f"/api/projects/{copy}/files/Dockerfile"))["content"] == (
        ORDERING.starter / "Dockerfile"
    ).read_text()

    # Her history is all there, in order: the fixed build, then one of the starter again.
    second = build(ana, copy)
    judged(ana, cid, copy, second)
    history = ok(tan.get(url + "builds/"))
    assert [b["number"] for b in history["builds"]] == [first, second]
    assert history["name"] == "Ana" and all(b["status"] == "succeeded" for b in history["builds"])
    assert ana.get(url + "builds/").status == 404
    page = tan.get(f"/classrooms/{cid}/exercises/{eid}/students/{student}/builds/")
    assert page.status == 200 and f"/studio/{copy}/?build={history['builds'][0]['id']}" in page.text

    ok(tan.api("PATCH", f"/api/classrooms/{cid}/", {"closed": True}))
    closed = tan.api("POST", url + "reset/", {})
    assert closed.status == 409 and "closed" in closed.json()["error"]


def test_the_results_export_as_csv_and_hostile_names_stay_text(
    handed_out: dict[str, Any], studio_server: StudioServer
) -> None:
    import csv
    import io

    tan, ana, cid, copy = handed_out["tan"], handed_out["ana"], handed_out["cid"], handed_out["copy"]
    judged(ana, cid, copy, build(ana, copy))
    hostile = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-3", "@SUM(A1)"]
    code = ok(tan.get(f"/api/classrooms/{cid}/"))["join_code"]
    for i, name in enumerate(hostile):
        who = person(studio_server, f"h{i}")
        ok(who.api("POST", "/api/classrooms/join/", {"code": code, "display_name": name}), 201)

    reply = tan.get(f"/classrooms/{cid}/results.csv")
    assert reply.status == 200
    rows = list(csv.reader(io.StringIO(reply.text)))
    header, body = rows[0], {r[0]: r for r in rows[1:]}
    assert header[:6] == ["student", "username", "exercise", "state", "checks passed", "checks total"]
    assert header[-5:] == ["builds", "latest build", "latest status", "hit ratio", "mistakes"]
    ana_row = dict(zip(header, body["Ana"], strict=True))
    assert ana_row["state"] == "failed" and ana_row["checks passed"] == "2"
    assert ana_row["When the check changes app.py, at most 1 step rebuild"] == "fail"
    assert ana_row["builds"] == "1" and ana_row["latest status"] == "succeeded"
    assert 0 <= float(ana_row["hit ratio"]) <= 1
    assert "fail the check “When the check changes app.py" in ana_row["mistakes"]
    for name in hostile:
        assert "'" + name in body, sorted(body)
        assert dict(zip(header, body["'" + name], strict=True))["state"] == "not_yet"
    assert ana.get(f"/classrooms/{cid}/results.csv").status == 404


# -- predict, then build ----------------------------------------------------------------------------


def test_a_prediction_is_graded_step_by_step_by_the_next_build(handed_out: dict[str, Any]) -> None:
    tan, ana, cid, copy = handed_out["tan"], handed_out["ana"], handed_out["cid"], handed_out["copy"]
    eid = handed_out["exercise"]["id"]
    judged(ana, cid, copy, build(ana, copy))

    url = f"/api/classrooms/{cid}/exercises/{eid}/prediction/"
    bad = ana.api("POST", url, {"rebuild": [0]})
    assert bad.status == 400 and "step numbers from 1" in bad.json()["error"]
    assert tan.api("POST", url, {"rebuild": [3]}).status == 403
    # Ana thinks editing app.py rebuilds only the copy of everything (step 3).
    made = ok(ana.api("POST", url, {"rebuild": [3]}), 201)
    assert made["build"] is None and made["rebuild"] == [3]

    put(ana, copy, "app.py", "print('edited')\n")
    number = build(ana, copy)
    judged(ana, cid, copy, number)
    prediction = ok(ana.get(f"/api/classrooms/{cid}/"))["exercises"][0]["prediction"]
    assert prediction["build"] == number
    grades = {g["step"]: g for g in prediction["grades"]}
    assert grades[3]["predicted"] and grades[3]["rebuilt"] and grades[3]["correct"]
    assert "app.py was changed" in grades[3]["reason"]
    assert not grades[4]["predicted"] and grades[4]["rebuilt"] and not grades[4]["correct"]
    assert "the layer below it" in grades[4]["reason"]
    assert grades[2]["correct"] and grades[2]["reason"] == "from the cache"
    assert prediction["correct"] == prediction["total"] - 1

    accuracy = {a["step"]: a for a in ok(tan.get(f"/api/classrooms/{cid}/dashboard/"))["predictions"]}
    assert (accuracy[3]["right"], accuracy[3]["total"]) == (1, 1)
    assert (accuracy[4]["right"], accuracy[4]["total"]) == (0, 1)
    page = tan.get(f"/classrooms/{cid}/").text
    assert 'id="prediction-accuracy"' in page and "0 of 1" in page
