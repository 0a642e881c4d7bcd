"""Projects and their files through the JSON API, in this process (the database is the only real
service they need): who may see and change what, the path rules, uploads and their limits."""

from __future__ import annotations

import base64
import io
import json
import tarfile
import zipfile
from typing import Any

import pytest
from django.test import Client

from studio.models import User
from studio.projects.models import Blob, Project
from studio.projects.services import project_create, project_file_put, revision_snapshot

pytestmark = pytest.mark.django_db


class Api:
    """A signed-in person's calls to the API."""

    def __init__(self, username: str, *, csrf: bool = False) -> None:
        self.user = User.objects.create_user(username=username, password="x")
        self.client = Client(enforce_csrf_checks=csrf)
        self.client.force_login(self.user)

    def call(self, method: str, path: str, payload: Any = None, **extra: Any) -> Any:
        if method == "GET":
            return self.client.get(path, **extra)
        body = json.dumps(payload) if payload is not None else ""
        return getattr(self.client, method.lower())(path, body, content_type="application/json", **extra)

    def upload(self, project_id: int, data: bytes, query: str = "", **extra: Any) -> Any:
        return self.client.post(
            f"/api/projects/{project_id}/context/{query}", data, content_type="application/x-tar", **extra
        )

    def new_project(self, name: str = "web", **fields: Any) -> int:
        made = self.call("POST", "/api/projects/", {"name": name, **fields})
        assert made.status_code == 201, made.content
        return int(made.json()["id"])


def tar_of(files: dict[str, bytes], *, modes: dict[str, int] | None = None, gzip: bool = False) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz" if gzip else "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), (modes or {}).get(name, 0o644)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.fixture
def alice() -> Api:
    return Api("alice")


@pytest.fixture
def bob() -> Api:
    return Api("bob")


def test_alice_creates_a_project_that_starts_with_a_dockerfile_she_can_read(alice: Api) -> None:
    project_id = alice.new_project("hello")
    shown = alice.call("GET", f"/api/projects/{project_id}/").json()
    assert shown["name"] == "hello" and shown["owner"] == "alice" and shown["visibility"] == "private"
    assert [f["path"] for f in shown["files"]] == ["Dockerfile"]
    dockerfile = alice.call("GET", f"/api/projects/{project_id}/files/Dockerfile").json()
    assert dockerfile["encoding"] == "utf-8" and dockerfile["content"].startswith("FROM ")
    assert [p["name"] for p in alice.call("GET", "/api/projects/").json()["projects"]] == ["hello"]


def test_a_second_project_with_the_same_name_is_refused_naming_the_field(alice: Api) -> None:
    alice.new_project("twice")
    again = alice.call("POST", "/api/projects/", {"name": "twice"})
    assert again.status_code == 409
    assert again.json() == {"error": "you already have a project called 'twice'", "field": "name"}


def test_alice_edits_renames_and_deletes_her_project(alice: Api) -> None:
    project_id = alice.new_project("draft")
    put = alice.call(
        "PUT", f"/api/projects/{project_id}/files/src/app.sh", {"content": "echo hi\n", "mode": 0o755}
    )
    assert put.status_code == 200 and put.json()["mode"] == 0o755
    binary = base64.b64encode(b"\x00\xff\x10").decode()
    alice.call("PUT", f"/api/projects/{project_id}/files/logo.bin", {"content": binary, "encoding": "base64"})
    assert alice.call("GET", f"/api/projects/{project_id}/files/logo.bin").json()["content"] == binary

    assert alice.call("PATCH", f"/api/projects/{project_id}/", {"name": "final"}).json()["name"] == "final"
    assert alice.call("DELETE", f"/api/projects/{project_id}/files/logo.bin").status_code == 200
    files = alice.call("GET", f"/api/projects/{project_id}/files/").json()["files"]
    assert [f["path"] for f in files] == ["Dockerfile", "src/app.sh"]
    assert alice.call("DELETE", f"/api/projects/{project_id}/").status_code == 200
    assert alice.call("GET", f"/api/projects/{project_id}/").status_code == 404


def test_bob_cannot_tell_alices_private_project_exists(alice: Api, bob: Api) -> None:
    project_id = alice.new_project()
    for method, path in [
        ("GET", f"/api/projects/{project_id}/"),
        ("GET", f"/api/projects/{project_id}/files/Dockerfile"),
        ("PATCH", f"/api/projects/{project_id}/"),
        ("PUT", f"/api/projects/{project_id}/files/x"),
        ("DELETE", f"/api/projects/{project_id}/"),
    ]:
        refused = bob.call(method, path, {"content": "x"} if method == "PUT" else {})
        assert refused.status_code == 404, (method, path)
        assert refused.json() == {"error": f"project {project_id} not found"}
    assert bob.call("GET", "/api/projects/").json() == {"projects": []}


def test_the_share_link_lets_bob_look_but_not_change_and_unsharing_ends_it(alice: Api, bob: Api) -> None:
    project_id = alice.new_project()
    token = alice.call("POST", f"/api/projects/{project_id}/share/").json()["share_token"]
    seen = bob.call("GET", f"/api/projects/{project_id}/?token={token}")
    assert seen.status_code == 200 and seen.json()["share_token"] is None  # not his to pass on
    change = bob.call("PUT", f"/api/projects/{project_id}/files/x?token={token}", {"content": "x"})
    assert change.status_code == 403 and "owner" in change.json()["error"]
    assert bob.call("GET", f"/api/projects/{project_id}/?token=guess").status_code == 404

    alice.call("DELETE", f"/api/projects/{project_id}/share/")
    assert bob.call("GET", f"/api/projects/{project_id}/?token={token}").status_code == 404


def test_a_public_project_is_visible_to_anyone_signed_in_and_to_nobody_else(alice: Api, bob: Api) -> None:
    project_id = alice.new_project(visibility="public")
    assert bob.call("GET", f"/api/projects/{project_id}/").status_code == 200
    anonymous = Client().get(f"/api/projects/{project_id}/")
    assert anonymous.status_code == 401 and anonymous.json() == {"error": "log in first"}


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("../outside", "escapes the context"),
        ("a/../../b", "escapes the context"),
        ("%2Fetc/passwd", "is absolute"),
        ("nul%00byte", "contains a NUL character"),
        ("/".join(["d"] * 17) + "/f", "levels deep; at most 16"),
    ],
)
def test_a_file_path_outside_the_rules_is_refused_saying_which_rule(alice: Api, path: str, says: str) -> None:
    project_id = alice.new_project()
    refused = alice.call("PUT", f"/api/projects/{project_id}/files/{path}", {"content": "x"})
    assert refused.status_code == 400
    assert says in refused.json()["error"] and refused.json()["field"] == "path"


def test_a_file_over_the_size_limit_is_refused_naming_the_limit(alice: Api, settings: Any) -> None:
    settings.PROJECT_FILE_MAX_BYTES = 1024
    project_id = alice.new_project()
    refused = alice.call("PUT", f"/api/projects/{project_id}/files/big.txt", {"content": "x" * 2000})
    assert refused.status_code == 413
    assert (
        refused.json()["limit"] == "file_bytes" and "STUDIO_PROJECT_FILE_MAX_BYTES" in refused.json()["error"]
    )


def test_an_uploaded_tar_becomes_the_context_keeping_modes_and_the_dockerfile(alice: Api) -> None:
    project_id = alice.new_project()
    alice.call("PUT", f"/api/projects/{project_id}/files/old.txt", {"content": "gone after the upload"})
    archive = tar_of(
        {"./Dockerfile": b"FROM busybox\n", "./app/run.sh": b"#!/bin/sh\n", "app/data.txt": b"data"},
        modes={"./app/run.sh": 0o755},
        gzip=True,
    )
    uploaded = alice.upload(project_id, archive)
    assert uploaded.status_code == 201, uploaded.content
    files = {f["path"]: f for f in alice.call("GET", f"/api/projects/{project_id}/files/").json()["files"]}
    assert sorted(files) == ["Dockerfile", "app/data.txt", "app/run.sh"]
    assert files["app/run.sh"]["mode"] == 0o755 and files["app/data.txt"]["mode"] == 0o644


def test_an_uploaded_zip_can_add_to_the_files_instead_of_replacing_them(alice: Api) -> None:
    project_id = alice.new_project()
    uploaded = alice.upload(project_id, zip_of({"src/main.py": b"print(1)\n"}), "?replace=false")
    assert uploaded.status_code == 201 and uploaded.json()["replaced"] is False
    files = alice.call("GET", f"/api/projects/{project_id}/files/").json()["files"]
    assert [f["path"] for f in files] == ["Dockerfile", "src/main.py"]


@pytest.mark.parametrize(
    ("archive", "file", "says"),
    [
        (tar_of({"../../etc/cron.d/evil": b"x"}), "../../etc/cron.d/evil", "escapes the context"),
        (zip_of({"/abs/path.txt": b"x"}), "/abs/path.txt", "is absolute"),
        (zip_of({"ok/../../up.txt": b"x"}), "ok/../../up.txt", "escapes the context"),
    ],
)
def test_an_upload_with_a_path_escaping_the_context_is_refused_naming_the_file(
    alice: Api, archive: bytes, file: str, says: str
) -> None:
    project_id = alice.new_project()
    refused = alice.upload(project_id, archive)
    assert refused.status_code == 400
    assert refused.json()["file"] == file and says in refused.json()["error"]
    files = alice.call("GET", f"/api/projects/{project_id}/files/").json()["files"]
    assert [f["path"] for f in files] == ["Dockerfile"]  # nothing of it was kept


def test_an_upload_holding_a_symlink_is_refused_naming_it(alice: Api) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        link = tarfile.TarInfo("passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    refused = alice.upload(alice.new_project(), out.getvalue())
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "passwd is a symbolic link: a context upload may hold only files and folders",
        "file": "passwd",
    }


def test_an_upload_over_the_limits_gets_a_413_naming_the_limit(alice: Api, settings: Any) -> None:
    settings.UPLOAD_MAX_BYTES = 4096
    too_big = alice.upload(alice.new_project("a"), b"\0" * 5000)
    assert too_big.status_code == 413
    assert too_big.json()["limit"] == "upload_bytes" and "STUDIO_UPLOAD_MAX_BYTES" in too_big.json()["error"]

    settings.UPLOAD_MAX_BYTES = 1 << 20
    settings.PROJECT_MAX_FILES = 3
    too_many = alice.upload(alice.new_project("b"), tar_of({f"f{i}": b"x" for i in range(5)}))
    assert too_many.status_code == 413 and too_many.json()["limit"] == "project_files"

    settings.PROJECT_MAX_BYTES = 2048
    too_much = alice.upload(alice.new_project("c"), zip_of({"a": b"x" * 1500, "b": b"y" * 1500}))
    assert too_much.status_code == 413 and too_much.json()["limit"] == "project_bytes"


def test_something_that_is_not_an_archive_is_refused_plainly(alice: Api) -> None:
    refused = alice.upload(alice.new_project(), b"just some text, not a tar")
    assert refused.status_code == 400 and "neither a tar nor a zip" in refused.json()["error"]


def test_a_post_without_the_csrf_token_is_refused_in_json() -> None:
    carol = Api("carol", csrf=True)
    refused = carol.call("POST", "/api/projects/", {"name": "x"})
    assert refused.status_code == 403 and "X-CSRFToken" in refused.json()["error"]
    token = carol.client.get("/api/projects/").cookies["csrftoken"].value
    assert carol.call("POST", "/api/projects/", {"name": "x"}, HTTP_X_CSRFTOKEN=token).status_code == 201


def test_the_same_content_is_stored_once_and_the_same_files_are_one_revision() -> None:
    owner = User.objects.create_user(username="dora")
    project = project_create(owner=owner, name="p", dockerfile="FROM busybox\n")
    project_file_put(project=project, path="a.txt", data=b"same bytes")
    project_file_put(project=project, path="b.txt", data=b"same bytes")
    other = project_create(owner=owner, name="q", dockerfile="FROM busybox\n")
    assert Blob.objects.count() == 2  # the Dockerfile's text, and "same bytes"

    first = revision_snapshot(project=project)
    assert revision_snapshot(project=project) == first
    assert revision_snapshot(project=other) != first
    project_file_put(project=project, path="a.txt", data=b"changed")
    changed = revision_snapshot(project=project)
    assert changed != first
    assert [f.path for f in first.files.all()] == ["Dockerfile", "a.txt", "b.txt"]
    assert bytes(first.files.get(path="a.txt").blob.data) == b"same bytes"  # the old revision kept its bytes
    assert Project.objects.get(id=project.id).revisions.count() == 2
