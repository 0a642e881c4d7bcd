"""What the class got wrong: 32 students' latest builds grouped by the mistakes their Dockerfiles
make (the studio's cache hints, hadolint's findings) and the checks they fail, computed from
what is stored (no build is run) and with hadolint run once per distinct Dockerfile; and the
anonymised example a teacher puts on the projector."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from builds.models import Build
from studio.classrooms import mistakes, selectors
from studio.classrooms.models import Assignment
from studio.classrooms.services import classroom_create, classroom_join, exercise_create
from studio.models import User
from studio.projects.services import project_create, project_file_put, revision_snapshot

pytestmark = pytest.mark.django_db

BAD = "FROM busybox:1.36\nWORKDIR /app\nCOPY . .\nRUN pip install -r requirements.txt\n# variant {n}\n"
GOOD = (
    "FROM busybox:1.36\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n"
    "COPY . .\n# variant {n}\n"
)
COPY_ALL = "studio/copy-all-before-install"
CHECK = {"kind": "layers", "max": 3}
STUDENTS = 32


def _class_with_builds() -> dict[str, Any]:
    teacher = User.objects.create_user(username="tan", password="pw-unused-here")
    classroom = classroom_create(teacher=teacher, name="Caching, period 2")
    starter = project_create(owner=teacher, name="starter", dockerfile=GOOD.format(n=0))
    exercise = exercise_create(classroom=classroom, title="Order", project=starter, checks=[CHECK])
    for i in range(STUDENTS):
        user = User.objects.create_user(username=f"s{i:02}", password="pw-unused-here")
        classroom_join(user=user, code=classroom.join_code, display_name=f"Student {i:02}")
    assignments = list(Assignment.objects.filter(exercise=exercise).select_related("project", "membership"))
    for i, a in enumerate(sorted(assignments, key=lambda a: a.membership.display_name)):
        # 20 copy everything before the install, 12 do not; four wordings of each.
        text = (BAD if i < 20 else GOOD).format(n=i % 4)
        project_file_put(project=a.project, path="Dockerfile", data=text.encode())
        Build.objects.create(
            project=a.project,
            number=1,
            revision=revision_snapshot(project=a.project),
            requested_by=a.project.owner,
            status=Build.Status.SUCCEEDED,
            finished_at=timezone.now(),
        )
        if i >= 29:  # the last three fail the exercise's check
            a.results = [{"check": "The image has no more than 3 layers", "status": "fail",
                          "message": "Build #1's image has 5 layers", "build": 1}]
            a.save(update_fields=["results"])
    return {"teacher": teacher, "classroom": classroom, "exercise": exercise}


def test_thirty_two_students_are_grouped_by_mistake_largest_first_without_a_lint_per_student() -> None:
    made = _class_with_builds()
    mistakes.memo.__init__()  # a web process that has seen none of these Dockerfiles yet

    started = time.perf_counter()
    board = selectors.dashboard(classroom=made["classroom"])
    first = time.perf_counter() - started
    groups = mistakes.groups(board["students"])
    started = time.perf_counter()
    selectors.dashboard(classroom=made["classroom"])
    again = time.perf_counter() - started
    print(f"\ndashboard for {STUDENTS} students: {first * 1000:.0f} ms cold, {again * 1000:.0f} ms warm")

    # Eight distinct Dockerfiles: hadolint ran eight times, not 32, and not again.
    assert mistakes.memo.misses == 8
    assert first < 3.0 and again < 1.5
    by_code = {g["code"]: g for g in groups}
    print([(g["code"], len(g["students"])) for g in groups])
    # hadolint's advice everyone breaks comes first (32), then the cache mistake of 20.
    copy_all = next(i for i, g in enumerate(groups) if g["code"] == COPY_ALL)
    assert all(len(g["students"]) == STUDENTS for g in groups[:copy_all])
    assert groups[copy_all]["sentence"] == "20 students copy the whole context before installing"
    assert [s["name"] for s in groups[copy_all]["students"]] == [f"Student {i:02}" for i in range(20)]
    assert by_code["check:1"]["sentence"] == "3 students fail the check “The image has no more than 3 layers”"
    # hadolint's findings are grouped too, under its rule's code.
    assert by_code["DL3042"]["source"] == "hadolint" and len(by_code["DL3042"]["students"]) == STUDENTS
    assert by_code["DL3042"]["sentence"].startswith("32 students break hadolint's DL3042: Avoid use of cache")
    sizes = [len(g["students"]) for g in groups]
    assert sizes == sorted(sizes, reverse=True)


def test_the_example_is_one_students_dockerfile_with_the_lines_at_fault_marked_and_no_name() -> None:
    made = _class_with_builds()
    cid, eid = made["classroom"].id, made["exercise"].id
    teacher = Client()
    teacher.force_login(made["teacher"])
    url = f"/classrooms/{cid}/exercises/{eid}/mistakes/example/"

    page = teacher.get(url, {"code": COPY_ALL})
    assert page.status_code == 200
    html = page.content.decode()
    assert "20 students copy the whole context before installing" in html
    assert '<li class="at-fault" value="3">' in html and "COPY . ." in html
    assert '<li class="" value="4">' in html  # the install is not the line at fault
    assert "Student " not in html and "s00" not in html, "the example names nobody"
    assert "example 1 of 20" in html
    second = teacher.get(url, {"code": COPY_ALL, "n": "1"}).content.decode()
    assert "example 2 of 20" in second and "# variant 1" in second
    # A check's failure marks no line but still opens; hostile or unknown values are a 404.
    assert teacher.get(url, {"code": "check:1", "n": "99999"}).status_code == 200
    assert teacher.get(url, {"code": "<script>"}).status_code == 404
    assert teacher.get(url, {"code": COPY_ALL, "n": "-1"}).status_code == 200

    student = Client()
    student.force_login(User.objects.get(username="s00"))
    assert student.get(url, {"code": COPY_ALL}).status_code == 404


def test_the_csv_holds_each_students_mistakes_as_the_dashboard_words_them() -> None:
    made = _class_with_builds()
    teacher = Client()
    teacher.force_login(made["teacher"])
    reply = teacher.get(f"/classrooms/{made['classroom'].id}/results.csv")
    rows = list(csv.reader(io.StringIO(reply.content.decode())))
    header, body = rows[0], {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert header[-1] == "mistakes"
    assert "copy the whole context before installing" in body["Student 00"]["mistakes"]
    assert "copy the whole context" not in body["Student 25"]["mistakes"]
    assert "fail the check “The image has no more than 3 layers”" in body["Student 31"]["mistakes"]


def test_the_ordering_lessons_starter_makes_the_cache_mistake_and_its_solution_does_not() -> None:
    from studio.classrooms import pack

    lesson = pack.lesson("ordering")
    assert lesson is not None
    starter = {m["code"] for m in mistakes.memo.get((lesson.starter / "Dockerfile").read_text())}
    solution = {m["code"] for m in mistakes.memo.get((lesson.solution / "Dockerfile").read_text())}
    assert COPY_ALL in starter and COPY_ALL not in solution
