"""Comparing two builds over the API and on the page, in this process: the builds are real (the
engine runs them into a store of its own, as the worker would, minus Celery), and the comparison
says where they part and why, what each step read and wrote, and what the images share. Nobody
sees a comparison that involves a build they may not see."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from builds import services, tasks
from builds.models import Build
from studio.models import User
from studio.projects.models import Project
from studio.projects.services import project_create, project_file_put, project_share

pytestmark = pytest.mark.django_db

DOCKERFILE = """\
FROM busybox:latest
WORKDIR /app
COPY requirements.txt ./
RUN cat requirements.txt > installed.txt
COPY app.py ./
RUN wc -c app.py > size.txt
CMD ["cat", "app.py"]
"""


@pytest.fixture(scope="module")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from builds.engine.seed import busybox_rootfs

    if shutil.which("busybox") is None:
        pytest.fail("busybox-static is not installed (make test installs it)")
    return busybox_rootfs(tmp_path_factory.mktemp("base") / "busybox.tar")


@pytest.fixture(autouse=True)
def store(busybox_tar: Path, tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store of each test's own, with busybox in it: no test finds another's layers in the cache."""
    from builds.engine import image as images
    from builds.engine.store import Store

    images.import_any(Store(tmp_path / "store"), busybox_tar, "busybox:latest")
    settings.STUDIO_DATA_DIR = tmp_path / "store"
    monkeypatch.setattr(services, "_enqueue", lambda build_id: None)  # built below, not by a worker
    return tmp_path / "store"


class Person:
    def __init__(self, username: str) -> None:
        self.user = User.objects.create_user(username=username, password="x")
        self.client = Client()
        self.client.force_login(self.user)

    def project(self, name: str = "app", dockerfile: str = DOCKERFILE, **files: str) -> Project:
        project = project_create(owner=self.user, name=name, dockerfile=dockerfile)
        for path, text in {"requirements.txt": "flask\n", "app.py": "print('hello')\n", **files}.items():
            project_file_put(project=project, path=path, data=text.encode())
        return project

    def build(self, project: Project, expect: str = "succeeded") -> Build:
        """Build the project as it is now, to the end, the way a worker does."""
        build = services.build_create(project=project, user=self.user)
        claimed = services.build_start(build_id=build.id, worker="test")
        assert claimed is not None
        tasks._run_engine(claimed, tasks.BuildRun(build_id=build.id))
        build.refresh_from_db()
        assert build.status == expect, build.error
        return build

    def get(self, path: str) -> Any:
        return self.client.get(path)


@pytest.fixture
def alice() -> Person:
    return Person("alice")


@pytest.fixture
def bob() -> Person:
    return Person("bob")


@pytest.fixture
def edited_twice(alice: Person) -> tuple[Build, Build]:
    """alice builds, edits app.py, builds again."""
    project = alice.project()
    first = alice.build(project)
    project_file_put(project=project, path="app.py", data=b"print('hello, world')\n")
    return first, alice.build(project)


def test_the_comparison_marks_the_copy_of_the_edited_file_as_where_the_builds_part(
    alice: Person, edited_twice: tuple[Build, Build]
) -> None:
    a, b = edited_twice
    reply = alice.get(f"/api/compare/{a.id}/{b.id}/")
    assert reply.status_code == 200, reply.content
    found = reply.json()
    rows = found["rows"]
    assert [row["a"]["instruction"] for row in rows] == DOCKERFILE.strip().splitlines()
    assert all(row["kind"] == "same" for row in rows)
    first = rows[found["summary"]["first_divergence"]]
    assert first["first_divergence"] and first["b"]["instruction"] == "COPY app.py ./"
    assert first["same_key"] is False
    assert first["b"]["reason"]["code"] == "files_changed" and "app.py" in first["b"]["reason"]["message"]
    assert first["b"]["status"] == "built" and first["a"]["status"] == "built"
    # Above it the second build reused the first's layers, and said so.
    assert [row["same_key"] for row in rows[1:4]] == [True, True, True]
    assert [row["b"]["status"] for row in rows[1:4]] == ["cached", "cached", "cached"]
    assert [row["parted"] for row in rows] == [False, False, False, False, True, True, False]
    assert first["size_delta"] == len("print('hello, world')\n") - len("print('hello')\n")
    # Between these two builds: the file differs.
    parting = found["summary"]["parting"]
    assert parting["row"] == first["index"] and parting["code"] == "files_differ"
    assert parting["message"] == "The files it copies differ: app.py changed."


def test_the_summary_counts_the_layers_both_images_share_and_the_bytes_that_saves(
    alice: Person, edited_twice: tuple[Build, Build]
) -> None:
    a, b = edited_twice
    found = alice.get(f"/api/compare/{a.id}/{b.id}/").json()
    shared = found["summary"]["shared_layers"]
    # busybox, WORKDIR, COPY requirements.txt, RUN cat: four of six layers, all but the last two.
    assert (shared["count"], shared["a_layers"], shared["b_layers"]) == (4, 6, 6)
    assert shared["bytes"] > 1_000_000  # busybox itself
    assert shared["bytes"] < a.image_size
    # WORKDIR, COPY, RUN, COPY, RUN: all new the first time; the second reuses the first three.
    assert found["a"]["cache"] == {"hits": 0, "misses": 5}
    assert found["b"]["cache"] == {"hits": 3, "misses": 2}
    assert found["summary"]["image_size_delta"] == b.image_size - a.image_size
    assert found["dockerfiles"]["a"] == DOCKERFILE
    assert all(line["op"] == "equal" for line in found["dockerfiles"]["diff"]["lines"])


def test_a_row_shows_the_edited_file_line_by_line_and_the_layers_file_that_changed(
    alice: Person, edited_twice: tuple[Build, Build]
) -> None:
    a, b = edited_twice
    detail = alice.get(f"/api/compare/{a.id}/{b.id}/row/?a=5&b=5").json()
    assert detail["instruction"] == [["equal", "COPY app.py ./"]]
    context = detail["context"]
    assert [(f["path"], f["change"]) for f in context["files"]] == [("app.py", "changed")]
    assert [(d["op"], d["text"]) for d in context["files"][0]["diff"]] == [
        ("delete", "print('hello')"),
        ("insert", "print('hello, world')"),
    ]
    layer = detail["layer"]
    assert layer["same_layer"] is False
    changed = {f["path"]: f for f in layer["files"]}
    assert changed["app/app.py"]["change"] == "changed"
    assert (changed["app/app.py"]["a_size"], changed["app/app.py"]["b_size"]) == (15, 22)

    untouched = alice.get(f"/api/compare/{a.id}/{b.id}/row/?a=3&b=3").json()
    assert [(f["path"], f["change"]) for f in untouched["context"]["files"]] == [("requirements.txt", "same")]
    assert untouched["layer"]["same_layer"] is True
    assert {f["change"] for f in untouched["layer"]["files"]} == {"same"}


def test_a_long_layer_diff_lists_what_differs_first_and_counts_everything(
    alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    from builds.compare import report

    project = alice.project(dockerfile="FROM busybox:latest\nCOPY . /src\n")
    first = alice.build(project)
    project_file_put(project=project, path="app.py", data=b"print('changed')\n")
    second = alice.build(project)
    monkeypatch.setattr(report, "MAX_LAYER_FILES", 2)
    layer = alice.get(f"/api/compare/{first.id}/{second.id}/row/?a=2&b=2").json()["layer"]
    assert layer["truncated"] is True
    assert [(f["path"], f["change"]) for f in layer["files"]][:1] == [("src/app.py", "changed")]
    assert len(layer["files"]) == 2
    assert layer["counts"]["changed"] == 1 and sum(layer["counts"].values()) > 2


def test_a_row_with_a_gap_diffs_against_nothing_and_a_missing_step_is_a_404(
    alice: Person, edited_twice: tuple[Build, Build]
) -> None:
    a, b = edited_twice
    gap = alice.get(f"/api/compare/{a.id}/{b.id}/row/?a=5&b=").json()
    assert gap["b"] is None and gap["instruction"] == [["delete", "COPY app.py ./"]]
    assert [f["change"] for f in gap["layer"]["files"]] == ["removed"]
    assert alice.get(f"/api/compare/{a.id}/{b.id}/row/?a=99&b=1").status_code == 404
    bad = alice.get(f"/api/compare/{a.id}/{b.id}/row/?a=x&b=1")
    assert bad.status_code == 400 and bad.json()["field"] == "a"
    assert alice.get(f"/api/compare/{a.id}/{b.id}/row/").json()["field"] == "a"


MULTI_STAGE = """\
FROM busybox:latest AS builder
WORKDIR /src
COPY app.py ./
RUN wc -c app.py > size.txt
FROM busybox:latest
COPY --from=builder /src/size.txt /size.txt
CMD ["cat", "/size.txt"]
"""


def test_a_renamed_stage_and_a_new_failing_step_part_the_builds_at_that_step(alice: Person) -> None:
    project = alice.project(dockerfile=MULTI_STAGE)
    first = alice.build(project)
    edited = (
        MULTI_STAGE.replace("AS builder", "AS build")
        .replace("--from=builder", "--from=build")
        .replace("WORKDIR /src\n", "WORKDIR /src\nRUN test -s missing.txt\n")
    )
    project_file_put(project=project, path="Dockerfile", data=edited.encode())
    second = alice.build(project, expect="failed")

    found = alice.get(f"/api/compare/{first.id}/{second.id}/").json()
    rows = found["rows"]
    assert [row["kind"] for row in rows] == ["same", "same", "added", "same", "same", "same", "same", "same"]
    assert (rows[0]["a"]["stage"], rows[0]["b"]["stage"]) == ("builder", "build")
    assert rows[6]["b"]["instruction"] == "COPY --from=build /src/size.txt /size.txt"
    assert found["summary"]["first_divergence"] == 2
    assert found["summary"]["parting"]["message"] == "Only build B has this step."
    failed = rows[2]
    assert failed["a"] is None and failed["b"]["status"] == "failed"
    assert failed["b"]["instruction"] == "RUN test -s missing.txt"
    assert [row["same_key"] for row in rows[:2]] == [True, True]
    assert {row["b"]["status"] for row in rows[3:]} <= {"skipped", "not_run"}
    assert all(row["parted"] for row in rows[2:])
    assert [(row["duration_delta_ms"], row["size_delta"]) for row in rows[3:]] == [(None, None)] * 5
    assert found["summary"]["shared_layers"] is None, "a failed build has no image to share layers with"
    lines = found["dockerfiles"]["diff"]["lines"]
    assert {"op": "insert", "a": None, "b": 3, "text": "RUN test -s missing.txt"} in lines


def test_a_build_still_running_shows_its_planned_steps_as_waiting(alice: Person) -> None:
    project = alice.project()
    done = alice.build(project)
    running = services.build_create(project=project, user=alice.user)
    assert services.build_start(build_id=running.id, worker="test") is not None
    plan = [
        {"step": n, "stage": "0", "instruction": text, "line": n}
        for n, text in enumerate(DOCKERFILE.strip().splitlines(), start=1)
    ]
    services.publish_build_event(
        build_id=running.id, event={"type": "build.started", "seq": 1, "steps": plan}
    )

    found = alice.get(f"/api/compare/{done.id}/{running.id}/").json()
    assert found["b"]["status"] == "running"
    assert [row["kind"] for row in found["rows"]] == ["same"] * 7
    assert {row["b"]["status"] for row in found["rows"]} == {"pending"}
    assert found["summary"]["first_divergence"] is None, "where they part is not known yet"
    assert not any(row["parted"] for row in found["rows"])


def test_two_students_projects_compare_when_both_may_be_seen(alice: Person, bob: Person) -> None:
    mine = alice.build(alice.project())
    theirs_project = bob.project(**{"app.py": "print('bob was here')\n"})
    theirs = bob.build(theirs_project)
    # bob's project is private: alice may not see it, so for her the comparison does not exist.
    for path in (
        f"/api/compare/{mine.id}/{theirs.id}/",
        f"/api/compare/{theirs.id}/{mine.id}/",
        f"/api/compare/{mine.id}/{theirs.id}/row/?a=1&b=1",
    ):
        assert alice.get(path).status_code == 404
    assert alice.get(f"/compare/{mine.id}/{theirs.id}/").status_code == 404
    assert alice.get(f"/compare/{theirs.id}/{mine.id}/").status_code == 404
    # With bob's share link it does, from the API and on the page.
    token = project_share(project=theirs_project)
    found = alice.get(f"/api/compare/{mine.id}/{theirs.id}/?b_token={token}")
    assert found.status_code == 200
    assert found.json()["b"]["owner"] == "bob"
    first = found.json()["rows"][found.json()["summary"]["first_divergence"]]
    assert first["b"]["instruction"] == "COPY app.py ./"
    assert alice.get(f"/compare/{mine.id}/{theirs.id}/?b_token={token}").status_code == 200
    assert alice.get(f"/api/compare/{mine.id}/{theirs.id}/?a_token={token}").status_code == 404
    # A public project is open to anyone signed in.
    Project.objects.filter(id=theirs_project.id).update(visibility="public", share_token="")
    assert alice.get(f"/api/compare/{mine.id}/{theirs.id}/").status_code == 200


def test_a_teacher_compares_two_students_and_a_classmate_may_not(alice: Person, bob: Person) -> None:
    from studio.classrooms.models import Assignment
    from studio.classrooms.services import classroom_create, classroom_join, exercise_create

    teacher = Person("teacher")
    classroom = classroom_create(teacher=teacher.user, name="Layers 101")
    for student in (alice, bob):
        classroom_join(user=student.user, code=classroom.join_code, display_name=student.user.username)
    exercise_create(classroom=classroom, title="Cache it", project=teacher.project(name="starter"))
    copies = {a.membership.student_id: a.project for a in Assignment.objects.select_related("membership")}
    ana = alice.build(copies[alice.user.id])
    project_file_put(project=copies[bob.user.id], path="app.py", data=b"print('ben')\n")
    ben = bob.build(copies[bob.user.id])

    found = teacher.get(f"/api/compare/{ana.id}/{ben.id}/")
    assert found.status_code == 200
    first = found.json()["rows"][found.json()["summary"]["first_divergence"]]
    assert first["b"]["instruction"] == "COPY app.py ./"
    assert teacher.get(f"/compare/{ana.id}/{ben.id}/").status_code == 200
    picker = teacher.get("/compare/").content.decode()
    assert f'value="{ana.id}"' in picker and f'value="{ben.id}"' in picker
    # A classmate sees their own copy, not the other's.
    assert alice.get(f"/api/compare/{ana.id}/{ben.id}/").status_code == 404
    assert alice.get(f"/compare/{ana.id}/{ben.id}/").status_code == 404
    assert f'value="{ben.id}"' not in alice.get("/compare/").content.decode()


def test_nobody_signed_out_sees_a_comparison(edited_twice: tuple[Build, Build]) -> None:
    a, b = edited_twice
    anonymous = Client()
    reply = anonymous.get(f"/api/compare/{a.id}/{b.id}/")
    assert reply.status_code == 401 and "log in" in reply.json()["error"]
    page = anonymous.get(f"/compare/{a.id}/{b.id}/")
    assert page.status_code == 302 and page["Location"].startswith("/accounts/login/")
    assert anonymous.get("/compare/").status_code == 302


def test_the_picker_offers_only_builds_the_person_may_see_and_sends_them_to_the_comparison(
    alice: Person, bob: Person, edited_twice: tuple[Build, Build]
) -> None:
    a, b = edited_twice
    hidden = bob.build(bob.project(name="secret-project"))
    page = alice.get("/compare/").content.decode()
    assert f'value="{a.id}"' in page and f'value="{b.id}"' in page
    assert "secret-project" not in page and f'value="{hidden.id}"' not in page
    go = alice.get(f"/compare/?a={a.id}&b={b.id}")
    assert go.status_code == 302 and go["Location"] == f"/compare/{a.id}/{b.id}/"
    assert "Choose two builds" in alice.get(f"/compare/?a={a.id}&b=").content.decode()
    comparison = alice.get(go["Location"]).content.decode()
    assert "compare.js" in comparison and f'data-a="{a.id}"' in comparison


def test_the_comparison_is_described_in_the_schema(alice: Person) -> None:
    paths = json.loads(alice.get("/api/schema/").content)["paths"]
    assert "/api/compare/{a_id}/{b_id}/" in paths
    assert "/api/compare/{a_id}/{b_id}/row/" in paths
