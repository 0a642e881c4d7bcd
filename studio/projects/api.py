"""The JSON API for projects and their files: the `projects` router of studio/api_root.py."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Query, Status
from pydantic import StrictInt, StrictStr

from studio.api import ApiError, Id, In, Out, StudioRouter, Timestamp, Token, errors
from studio.models import User
from studio.projects.models import Project, ProjectFile

from . import files, selectors, services

TEXT, BASE64 = "utf-8", "base64"
Visibility = Literal["private", "public"]

router = StudioRouter(tags=["projects"])


class FileOut(Out):
    path: str = Field(description="relative, `/`-separated, inside the context")
    size: int
    sha256: str
    mode: int = Field(description="permission bits, e.g. 420 (0644) or 493 (0755)")
    updated_at: Timestamp


class FileContentOut(FileOut):
    encoding: Literal["utf-8", "base64"]
    content: str


class ProjectOut(Out):
    id: int
    name: str
    owner: str
    visibility: Visibility
    dockerfile_path: str
    share_token: str | None = Field(description="shown to the owner only")
    created_at: Timestamp
    updated_at: Timestamp


class ProjectDetailOut(ProjectOut):
    files: list[FileOut]


class ProjectListOut(Out):
    projects: list[ProjectOut]


class FileListOut(Out):
    files: list[FileOut]


class MovedOut(FileListOut):
    dockerfile_path: str


class UploadedOut(FileListOut):
    replaced: bool


class ShareOut(Out):
    share_token: str | None


class DeletedProjectOut(Out):
    deleted: int


class DeletedFileOut(Out):
    deleted: str


class ProjectCreate(In):
    name: StrictStr | None = None
    visibility: Visibility | None = Field(None, description="default: private")
    dockerfile: StrictStr | None = Field(None, description="the Dockerfile's text (default: a starter)")


class ProjectPatch(In):
    name: StrictStr | None = None
    visibility: Visibility | None = None
    dockerfile_path: StrictStr | None = Field(None, description="which file of the context is the Dockerfile")


class FilePut(In):
    content: StrictStr
    encoding: Literal["utf-8", "base64"] | None = Field(None, description="default: utf-8")
    mode: StrictInt | None = Field(None, description="permission bits, e.g. 420 (0644) or 493 (0755)")


class FilesMove(In):
    """Rename a file or move a folder."""

    source: StrictStr | None = Field(None, alias="from")
    target: StrictStr | None = Field(None, alias="to")


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # the API's session auth let only signed-in users through
    return request.user


def project_json(project: Project, *, user: User | None = None) -> dict[str, Any]:
    owner = user is not None and project.owner_id == user.pk
    return {
        "id": project.id,
        "name": project.name,
        "owner": project.owner.username,
        "visibility": project.visibility,
        "dockerfile_path": project.dockerfile_path,
        # Only the owner sees the link's token: whoever else sees it could pass it on.
        "share_token": (project.share_token or None) if owner else None,
        "created_at": project.created_at.isoformat(),
        "updated_at": project.updated_at.isoformat(),
    }


def file_json(found: ProjectFile, *, content: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": found.path,
        "size": found.blob.size,
        "sha256": found.blob.sha256,
        "mode": found.mode,
        "updated_at": found.updated_at.isoformat(),
    }
    if content:
        data = bytes(found.blob.data)
        try:
            out.update(encoding=TEXT, content=data.decode(TEXT))
        except UnicodeDecodeError:
            out.update(encoding=BASE64, content=base64.b64encode(data).decode())
    return out


def _detail(project: Project, user: User) -> dict[str, Any]:
    out = project_json(project, user=user)
    out["files"] = [file_json(f) for f in selectors.project_files(project=project)]
    return out


@router.get("/projects/", response={200: ProjectListOut, **errors()})
def project_list(request: HttpRequest) -> Any:
    """Your projects."""
    user = _user(request)
    found = selectors.project_list(user=user).select_related("owner")
    return {"projects": [project_json(p, user=user) for p in found]}


@router.post("/projects/", response={201: ProjectOut, **errors(413, 429)})
def project_create(request: HttpRequest, payload: ProjectCreate) -> Any:
    """Create a project, with a starter Dockerfile unless `dockerfile` is given."""
    user = _user(request)
    project = services.project_create(
        owner=user,
        name=payload.name,
        visibility=payload.visibility or Project.Visibility.PRIVATE,
        dockerfile=payload.dockerfile,
    )
    return Status(201, project_json(project, user=user))


@router.get("/projects/{int:project_id}/", response={200: ProjectDetailOut, **errors()})
def project_get(request: HttpRequest, project_id: Id, token: Token = None) -> Any:
    """A project and its files (without their content)."""
    user = _user(request)
    return _detail(selectors.project_get(user=user, project_id=project_id, token=token), user)


@router.patch("/projects/{int:project_id}/", response={200: ProjectDetailOut, **errors()})
def project_update(request: HttpRequest, project_id: Id, payload: ProjectPatch, token: Token = None) -> Any:
    """Owner: rename it, make it public or private, or say which file is the Dockerfile."""
    user = _user(request)
    found = selectors.project_get(user=user, project_id=project_id, token=token, write=True)
    found = services.project_update(
        project=found,
        name=payload.name,
        visibility=payload.visibility,
        dockerfile_path=payload.dockerfile_path,
    )
    return _detail(found, user)


@router.delete("/projects/{int:project_id}/", response={200: DeletedProjectOut, **errors()})
def project_delete(request: HttpRequest, project_id: Id, token: Token = None) -> Any:
    """Owner: delete the project, its files and its builds."""
    found = selectors.project_get(user=_user(request), project_id=project_id, token=token, write=True)
    services.project_delete(project=found)
    return {"deleted": project_id}


@router.post("/projects/{int:project_id}/share/", response={200: ShareOut, **errors()})
def project_share(request: HttpRequest, project_id: Id) -> Any:
    """Make (or keep) the project's share link: its token lets whoever holds it look."""
    found = selectors.project_get(user=_user(request), project_id=project_id, write=True)
    return {"share_token": services.project_share(project=found)}


@router.delete("/projects/{int:project_id}/share/", response={200: ShareOut, **errors()})
def project_unshare(request: HttpRequest, project_id: Id) -> Any:
    """End the share link."""
    found = selectors.project_get(user=_user(request), project_id=project_id, write=True)
    services.project_unshare(project=found)
    return {"share_token": None}


@router.get("/projects/{int:project_id}/files/", response={200: FileListOut, **errors()})
def project_files(request: HttpRequest, project_id: Id, token: Token = None) -> Any:
    """The project's files (without their content)."""
    found = selectors.project_get(user=_user(request), project_id=project_id, token=token)
    return {"files": [file_json(f) for f in selectors.project_files(project=found)]}



@router.get(
    "/projects/{int:project_id}/files/{path:path}",
    response={200: FileContentOut, **errors()},
)
def project_file_get(request: HttpRequest, project_id: Id, path: str, token: Token = None) -> Any:
    """A file with its content: as text when it is UTF-8, else base64."""
    found = selectors.project_get(user=_user(request), project_id=project_id, token=token)
    return file_json(selectors.project_file_get(project=found, path=path), content=True)


@router.put("/projects/{int:project_id}/files/{path:path}", response={200: FileOut, **errors(413)})
def project_file_put(
    request: HttpRequest, project_id: Id, path: str, payload: FilePut, token: Token = None
) -> Any:
    """Create or replace a file; folders above it are implied."""
    found = selectors.project_get(user=_user(request), project_id=project_id, token=token, write=True)
    if payload.encoding in (None, TEXT):
        data = payload.content.encode()
    else:
        try:
            data = base64.b64decode(payload.content, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError("content is not valid base64", field="content") from None
    saved = services.project_file_put(project=found, path=path, data=data, mode=payload.mode)
    return file_json(saved)


@router.delete("/projects/{int:project_id}/files/{path:path}", response={200: DeletedFileOut, **errors()})
def project_file_delete(request: HttpRequest, project_id: Id, path: str, token: Token = None) -> Any:
    """Owner: delete a file."""
    found = selectors.project_get(user=_user(request), project_id=project_id, token=token, write=True)
    services.project_file_delete(project=found, path=path)
    return {"deleted": path}


@router.post(
    "/projects/{int:project_id}/files-move/",
    response={200: MovedOut, **errors(409)},
)
def project_files_move(request: HttpRequest, project_id: Id, payload: FilesMove) -> Any:
    """Rename a file or move a folder: `{"from": path, "to": path}`."""
    found = selectors.project_get(user=_user(request), project_id=project_id, write=True)
    moved = services.project_files_move(project=found, source=payload.source, target=payload.target)
    return {"files": [file_json(f) for f in moved], "dockerfile_path": found.dockerfile_path}


ARCHIVE = {"schema": {"type": "string", "format": "binary"}}


@router.post(
    "/projects/{int:project_id}/context/",
    response={201: UploadedOut, **errors(413)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "a tar (plain, gzip, bzip2 or xz) or zip archive of the build context",
            "content": {
                "application/x-tar": ARCHIVE,
                "application/zip": ARCHIVE,
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"context": {"type": "string", "format": "binary"}},
                        "required": ["context"],
                    }
                },
            },
        }
    },
)
def project_context(
    request: HttpRequest,
    project_id: Id,
    replace: str = Query("true", description="false (or 0, no) adds to the files instead of replacing them"),
) -> Any:
    """Upload the context as a tar (plain, gzip, bzip2 or xz) or zip archive: the raw request body,
    or a multipart form's `context` file."""
    found = selectors.project_get(user=_user(request), project_id=project_id, write=True)
    replacing = replace.lower() not in ("false", "0", "no")
    entries = files.read_archive(_upload_body(request))
    saved = services.project_files_upload(project=found, entries=entries, replace=replacing)
    return Status(201, {"files": [file_json(f) for f in saved], "replaced": replacing})


def _upload_body(request: HttpRequest) -> bytes:
    limit = settings.UPLOAD_MAX_BYTES
    declared = request.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise files.upload_too_large(int(declared))
    if request.content_type == "multipart/form-data":
        upload = request.FILES.get("context")
        if upload is None:
            raise ApiError(
                "send the archive as the form's `context` file, or as the whole body", field="context"
            )
        if upload.size is not None and upload.size > limit:
            raise files.upload_too_large(upload.size)
        data = upload.read(limit + 1)
    else:
        data = request.read(limit + 1)
    if len(data) > limit:
        raise files.upload_too_large()
    if not data:
        raise ApiError("the upload is empty: send a tar or zip archive of the context", field="context")
    return data
