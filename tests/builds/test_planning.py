"""The planner's copy of a project's files: always exactly the files a build would be given, whatever
was edited, renamed, deleted or re-moded between two predictions, and gone with the project."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from builds import planning
from studio.models import User
from studio.projects.models import Project
from studio.projects.services import project_create, project_delete, project_file_delete, project_file_put

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(settings: Any, tmp_path: Path) -> Project:
    settings.VAR_DIR = tmp_path / "var"
    settings.STUDIO_DATA_DIR = tmp_path / "store"
    owner = User.objects.create_user(username="alice", password="x")
    return project_create(owner=owner, name="p", dockerfile="FROM busybox:1.36\nCOPY . /src\n")


def on_disk(project: Project) -> dict[str, tuple[bytes, int]]:
    root = planning.plan_dir(project.id) / "context"
    found = {}
    for path in root.rglob("*"):
        if path.is_file():
            found[str(path.relative_to(root))] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    return found


def dirs(project: Project) -> set[str]:
    root = planning.plan_dir(project.id) / "context"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()}


def test_the_copy_follows_every_kind_of_edit(project: Project) -> None:
    project_file_put(project=project, path="app/main.py", data=b"print(1)\n")
    project_file_put(project=project, path="run.sh", data=b"echo\n", mode=0o755)
    planning.project_predict(project=project)
    assert on_disk(project) == {
        "Dockerfile": (b"FROM busybox:1.36\nCOPY . /src\n", 0o644),
        "app/main.py": (b"print(1)\n", 0o644),
        "run.sh": (b"echo\n", 0o755),
    }
    project_file_delete(project=project, path="app/main.py")
    project_file_put(project=project, path="app", data=b"a file where a folder was\n")
    project_file_put(project=project, path="run.sh", data=b"echo\n", mode=0o644)
    planning.project_predict(project=project, dockerfile="FROM busybox:1.36\n# typed\n")
    assert on_disk(project) == {
        "Dockerfile": (b"FROM busybox:1.36\n# typed\n", 0o644),
        "app": (b"a file where a folder was\n", 0o644),
        "run.sh": (b"echo\n", 0o644),
    }
    planning.project_predict(project=project)  # the saved text again, once nothing is typed
    assert on_disk(project)["Dockerfile"][0] == b"FROM busybox:1.36\nCOPY . /src\n"


def test_a_folder_goes_with_its_last_file(project: Project) -> None:
    project_file_put(project=project, path="a/b/c.txt", data=b"c\n")
    planning.project_predict(project=project)
    assert {"a", "a/b"} <= dirs(project)
    project_file_delete(project=project, path="a/b/c.txt")
    planning.project_predict(project=project)
    assert dirs(project) == set()


def test_a_copy_left_half_written_is_made_again_from_nothing(project: Project) -> None:
    planning.project_predict(project=project)
    root = planning.plan_dir(project.id)
    (root / "files.json").unlink()  # as a crash in the middle of an update leaves it
    (root / "context" / "stray.txt").write_text("not the project's\n")
    planning.project_predict(project=project)
    assert set(on_disk(project)) == {"Dockerfile"}


def test_only_changed_files_are_written_so_their_digests_stay_cached(project: Project) -> None:
    project_file_put(project=project, path="big.bin", data=b"x" * 100_000)
    planning.project_predict(project=project)
    big = planning.plan_dir(project.id) / "context" / "big.bin"
    before = os.stat(big)
    project_file_put(project=project, path="other.txt", data=b"new\n")
    planning.project_predict(project=project, dockerfile="FROM busybox:1.36\n")
    after = os.stat(big)
    assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_ctime_ns,
    )


def test_a_project_without_its_base_image_says_so_at_the_from_line(project: Project) -> None:
    found = planning.project_predict(project=project)
    assert found["steps"] == [] and found["error"]["line"] == 1
    assert "busybox:1.36" in found["error"]["message"]


def test_a_deleted_project_takes_its_copy_with_it(
    project: Project, django_capture_on_commit_callbacks: Any
) -> None:
    planning.project_predict(project=project)
    assert planning.plan_dir(project.id).is_dir()
    where = planning.plan_dir(project.id)
    with django_capture_on_commit_callbacks(execute=True):
        project_delete(project=project)
    assert not where.exists()
