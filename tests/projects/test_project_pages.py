"""The studio's project pages and the file moves its file tree makes, in this process: who may
open which page, the starter project a new person gets, and renaming or moving files."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from studio.models import User
from studio.projects import starter
from studio.projects.models import Project
from studio.projects.services import project_file_put

pytestmark = pytest.mark.django_db


def person(username: str) -> Client:
    client = Client()
    client.force_login(User.objects.create_user(username=username, password="x"))
    return client


def move(client: Client, project_id: int, source: str, target: str) -> Any:
    body = json.dumps({"from": source, "to": target})
    return client.post(f"/api/projects/{project_id}/files-move/", body, content_type="application/json")


def paths(project: Project) -> list[str]:
    return sorted(project.files.values_list("path", flat=True))


def test_the_projects_page_asks_a_stranger_to_log_in_first() -> None:
    reply = Client().get("/studio/")
    assert reply.status_code == 302 and reply["Location"].startswith("/accounts/login/")


def test_every_signed_in_page_leads_to_the_projects_comparisons_and_classrooms() -> None:
    reader = person("reader")
    links = ('href="/studio/">Projects<', 'href="/compare/">Compare<', 'href="/classrooms/">Classrooms<')
    for path in ("/", "/studio/", "/compare/", "/classrooms/"):
        html = reader.get(path).content.decode()
        assert [link for link in links if link not in html] == [], path


def test_creating_a_project_from_the_projects_page_gives_the_starter_and_opens_its_studio() -> None:
    alice = person("alice")
    reply = alice.post("/studio/", {"name": ""})
    project = Project.objects.get(owner__username="alice")
    assert reply.status_code == 302 and reply["Location"] == f"/studio/{project.id}/"
    assert project.name == "my-first-image"
    assert paths(project) == ["Dockerfile", "app.py", "requirements.txt"]
    dockerfile = bytes(project.files.get(path="Dockerfile").blob.data).decode()
    # The lesson: the dependency list is copied and installed before the rest of the code.
    assert dockerfile.index("COPY requirements.txt") < dockerfile.index("RUN ") < dockerfile.index("COPY . .")
    page = alice.get(f"/studio/{project.id}/")
    assert page.status_code == 200
    assert f'data-project-id="{project.id}"' in page.text and 'data-can-edit="true"' in page.text
    listing = alice.get("/studio/")
    assert "my-first-image" in listing.text
    alice.post("/studio/", {"name": ""})
    assert Project.objects.filter(owner__username="alice", name="my-first-image-2").exists()


def test_a_taken_project_name_is_refused_on_the_page_saying_so() -> None:
    alice = person("alice")
    alice.post("/studio/", {"name": "web"})
    again = alice.post("/studio/", {"name": "web"})
    assert again.status_code == 400
    assert "already have a project called" in again.text


def test_bob_gets_a_404_for_alices_private_studio_and_a_read_only_one_when_shared() -> None:
    alice, bob = person("alice"), person("bob")
    project = starter.starter_create(owner=User.objects.get(username="alice"), name="web")
    assert bob.get(f"/studio/{project.id}/").status_code == 404
    project.visibility = Project.Visibility.PUBLIC
    project.save()
    page = bob.get(f"/studio/{project.id}/")
    assert page.status_code == 200 and 'data-can-edit="false"' in page.text
    assert alice.get(f"/studio/{project.id}/").status_code == 200


def test_renaming_a_file_keeps_its_content_and_moving_the_dockerfile_moves_the_pointer() -> None:
    alice = person("alice")
    project = starter.starter_create(owner=User.objects.get(username="alice"), name="web")
    reply = move(alice, project.id, "app.py", "src/main.py")
    assert reply.status_code == 200, reply.content
    assert [f["path"] for f in reply.json()["files"]] == ["src/main.py"]
    assert bytes(project.files.get(path="src/main.py").blob.data).decode() == starter.APP
    reply = move(alice, project.id, "Dockerfile", "docker/Dockerfile")
    assert reply.json()["dockerfile_path"] == "docker/Dockerfile"
    project.refresh_from_db()
    assert project.dockerfile_path == "docker/Dockerfile"


def test_moving_a_folder_moves_every_file_under_it_and_nothing_else() -> None:
    alice = person("alice")
    project = starter.starter_create(owner=User.objects.get(username="alice"), name="web")
    for path in ("src/a.py", "src/lib/b.py", "srcs/c.py"):
        project_file_put(project=project, path=path, data=b"x")
    assert move(alice, project.id, "src", "app").status_code == 200
    moved = ["Dockerfile", "app.py", "app/a.py", "app/lib/b.py", "requirements.txt", "srcs/c.py"]
    assert paths(project) == moved


@pytest.mark.parametrize(
    ("source", "target", "status", "says"),
    [
        ("app.py", "requirements.txt", 409, "requirements.txt already exists"),
        ("app.py", "src", 409, "src is already a folder"),
        ("app.py", "src/a.py/x.py", 409, "src/a.py is a file"),
        ("src", "src/inner", 400, "cannot be moved into itself"),
        ("nothing.py", "b.py", 404, "no file or folder nothing.py"),
        ("app.py", "../escape.py", 400, "escapes the context"),
    ],
)
def test_a_move_that_would_overwrite_or_escape_is_refused_and_changes_nothing(
    source: str, target: str, status: int, says: str
) -> None:
    alice = person("alice")
    project = starter.starter_create(owner=User.objects.get(username="alice"), name="web")
    project_file_put(project=project, path="src/a.py", data=b"x")
    before = paths(project)
    reply = move(alice, project.id, source, target)
    assert reply.status_code == status, reply.content
    assert says in reply.json()["error"]
    assert paths(project) == before


def test_only_the_owner_may_move_files() -> None:
    person("alice")
    bob = person("bob")
    project = starter.starter_create(owner=User.objects.get(username="alice"), name="web")
    assert move(bob, project.id, "app.py", "main.py").status_code == 404
    project.visibility = Project.Visibility.PUBLIC
    project.save()
    assert move(bob, project.id, "app.py", "main.py").status_code == 403
    assert "app.py" in paths(project)
