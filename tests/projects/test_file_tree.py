"""A project's files are a tree: no path is both a file and a folder, whichever way the files come
in, and the planner's copy of them on disk can be neither broken by them nor stay broken."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builds import planning
from studio.projects.models import Project, ProjectFile
from studio.projects.services import blob_put
from tests.projects.test_projects import Api, tar_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(settings: Any, tmp_path: Path) -> Api:
    settings.VAR_DIR = tmp_path / "var"
    settings.STUDIO_DATA_DIR = tmp_path / "store"
    return Api("alice")


def put(alice: Api, project_id: int, path: str, content: str = "x") -> Any:
    return alice.call("PUT", f"/api/projects/{project_id}/files/{path}", {"content": content})


def paths(alice: Api, project_id: int) -> list[str]:
    return [f["path"] for f in alice.call("GET", f"/api/projects/{project_id}/files/").json()["files"]]


def test_a_file_cannot_go_inside_a_file(alice: Api) -> None:
    project_id = alice.new_project()
    assert put(alice, project_id, "keep.txt").status_code == 200
    refused = put(alice, project_id, "keep.txt/inner.txt")
    assert refused.status_code == 409, refused.content
    assert refused.json() == {
        "error": "keep.txt cannot be both a file and a folder (holding keep.txt/inner.txt): "
        "rename or remove one of them",
        "file": "keep.txt",
    }
    assert paths(alice, project_id) == ["Dockerfile", "keep.txt"]


def test_a_file_cannot_take_a_folders_name(alice: Api) -> None:
    project_id = alice.new_project()
    assert put(alice, project_id, "dir/a.txt").status_code == 200
    refused = put(alice, project_id, "dir")
    assert refused.status_code == 409 and refused.json()["file"] == "dir"
    assert "holding dir/a.txt" in refused.json()["error"]
    assert paths(alice, project_id) == ["Dockerfile", "dir/a.txt"]


def test_a_move_cannot_put_a_file_inside_a_file(alice: Api) -> None:
    project_id = alice.new_project()
    put(alice, project_id, "keep.txt")
    put(alice, project_id, "a.txt")
    move = {"from": "a.txt", "to": "keep.txt/a.txt"}
    refused = alice.call("POST", f"/api/projects/{project_id}/files-move/", move)
    assert refused.status_code == 409 and refused.json()["file"] == "keep.txt"
    assert paths(alice, project_id) == ["Dockerfile", "a.txt", "keep.txt"]


def test_an_upload_added_to_the_files_cannot_clash_with_them(alice: Api) -> None:
    project_id = alice.new_project()
    put(alice, project_id, "keep.txt")
    refused = alice.upload(project_id, tar_of({"keep.txt/inner.txt": b"x"}), "?replace=false")
    assert refused.status_code == 409 and refused.json()["file"] == "keep.txt"
    refused = alice.upload(project_id, tar_of({"Dockerfile/x": b"x"}), "?replace=false")
    assert refused.status_code == 409 and refused.json()["file"] == "Dockerfile"
    assert paths(alice, project_id) == ["Dockerfile", "keep.txt"]
    # Replacing every file, the same names are no clash.
    replaced = alice.upload(project_id, tar_of({"Dockerfile": b"FROM busybox\n", "keep.txt/inner.txt": b"x"}))
    assert replaced.status_code == 201, replaced.content
    assert paths(alice, project_id) == ["Dockerfile", "keep.txt/inner.txt"]


def saved_by_an_older_studio(project_id: int, path: str) -> None:
    """A file written past today's checks, as the studio let them in before."""
    project = Project.objects.get(id=project_id)
    ProjectFile.objects.create(project=project, path=path, blob=blob_put(data=b"old"), mode=0o644)


def test_a_project_saved_with_a_clash_is_refused_naming_it_and_plans_again_once_fixed(alice: Api) -> None:
    project_id = alice.new_project()
    put(alice, project_id, "same")
    saved_by_an_older_studio(project_id, "same/inner")

    plan = alice.call("POST", f"/api/projects/{project_id}/plan/", {})
    assert plan.status_code == 409, plan.content
    assert plan.json()["file"] == "same"
    build = alice.call("POST", f"/api/projects/{project_id}/builds/", {})
    assert build.status_code == 409 and build.json()["file"] == "same"

    assert alice.call("DELETE", f"/api/projects/{project_id}/files/same/inner").status_code == 200
    plan = alice.call("POST", f"/api/projects/{project_id}/plan/", {})
    assert plan.status_code == 200, plan.content
    assert (planning.plan_dir(project_id) / "context" / "same").read_text() == "x"


def test_the_planners_copy_is_made_again_when_the_disk_disagrees(alice: Api) -> None:
    """A folder where the planner writes a file (left by an older studio) made every plan a 500."""
    project_id = alice.new_project()
    put(alice, project_id, "app.txt", "one")
    assert alice.call("POST", f"/api/projects/{project_id}/plan/", {}).status_code == 200
    on_disk = planning.plan_dir(project_id) / "context" / "app.txt"
    on_disk.unlink()
    (on_disk / "stray").mkdir(parents=True)  # a folder where a file must go

    put(alice, project_id, "app.txt", "two")
    plan = alice.call("POST", f"/api/projects/{project_id}/plan/", {})
    assert plan.status_code == 200, plan.content
    assert on_disk.read_text() == "two"


def test_a_project_with_a_clash_cannot_be_handed_out_to_a_class(alice: Api) -> None:
    project_id = alice.new_project("starter")
    put(alice, project_id, "same")
    saved_by_an_older_studio(project_id, "same/inner")
    classroom = alice.call("POST", "/api/classrooms/", {"name": "Docker 101"})
    assert classroom.status_code == 201, classroom.content
    exercises = f"/api/classrooms/{classroom.json()['id']}/exercises/"
    refused = alice.call("POST", exercises, {"title": "layers", "project": project_id})
    assert refused.status_code == 409, refused.content
    assert refused.json()["file"] == "same"
    assert Project.objects.filter(owner=alice.user).count() == 1  # no copy was made


def test_a_dockerfile_path_that_is_a_folder_is_refused_when_planning_what_is_typed(alice: Api) -> None:
    project_id = alice.new_project()
    put(alice, project_id, "app/main.py")
    assert alice.call("PATCH", f"/api/projects/{project_id}/", {"dockerfile_path": "app"}).status_code == 200
    plan = alice.call("POST", f"/api/projects/{project_id}/plan/", {"dockerfile": "FROM busybox\n"})
    assert plan.status_code == 409, plan.content
    assert plan.json()["file"] == "app"
