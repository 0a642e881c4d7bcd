"""The JSON API for projects and their files (see /api/schema/ for every field)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from studio.api import ApiError, api_view, field, json_body
from studio.models import User
from studio.projects.models import Project, ProjectFile

from . import files, selectors, services

TEXT, BASE64 = "utf-8", "base64"


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # api_view let only signed-in users through
    return request.user


def _token(request: HttpRequest) -> str | None:
    return request.GET.get("token") or None


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


@api_view(("GET", "POST"))
def projects(request: HttpRequest) -> JsonResponse:
    user = _user(request)
    if request.method == "GET":
        found = selectors.project_list(user=user).select_related("owner")
        return JsonResponse({"projects": [project_json(p, user=user) for p in found]})
    body = json_body(request)
    project = services.project_create(
        owner=user,
        name=body.get("name"),
        visibility=field(body, "visibility", str, default=Project.Visibility.PRIVATE),
        dockerfile=field(body, "dockerfile", str),
    )
    return JsonResponse(project_json(project, user=user), status=201)


@api_view(("GET", "PATCH", "DELETE"))
def project(request: HttpRequest, project_id: int) -> JsonResponse:
    user = _user(request)
    write = request.method != "GET"
    found = selectors.project_get(user=user, project_id=project_id, token=_token(request), write=write)
    if request.method == "DELETE":
        services.project_delete(project=found)
        return JsonResponse({"deleted": project_id})
    if request.method == "PATCH":
        body = json_body(request)
        found = services.project_update(
            project=found,
            name=body.get("name"),
            visibility=body.get("visibility"),
            dockerfile_path=body.get("dockerfile_path"),
        )
    out = project_json(found, user=user)
    out["files"] = [file_json(f) for f in selectors.project_files(project=found)]
    return JsonResponse(out)


@api_view(("POST", "DELETE"))
def project_share(request: HttpRequest, project_id: int) -> JsonResponse:
    found = selectors.project_get(user=_user(request), project_id=project_id, write=True)
    if request.method == "DELETE":
        services.project_unshare(project=found)
        return JsonResponse({"share_token": None})
    return JsonResponse({"share_token": services.project_share(project=found)})


@api_view(("GET",))
def project_files(request: HttpRequest, project_id: int) -> JsonResponse:
    found = selectors.project_get(user=_user(request), project_id=project_id, token=_token(request))
    return JsonResponse({"files": [file_json(f) for f in selectors.project_files(project=found)]})


@api_view(("GET", "PUT", "DELETE"))
def project_file(request: HttpRequest, project_id: int, path: str) -> JsonResponse:
    user = _user(request)
    write = request.method != "GET"
    found = selectors.project_get(user=user, project_id=project_id, token=_token(request), write=write)
    if request.method == "GET":
        return JsonResponse(file_json(selectors.project_file_get(project=found, path=path), content=True))
    if request.method == "DELETE":
        services.project_file_delete(project=found, path=path)
        return JsonResponse({"deleted": path})
    body = json_body(request)
    content = field(body, "content", str, required=True)
    encoding = field(body, "encoding", str, default=TEXT)
    if encoding == TEXT:
        data = content.encode()
    elif encoding == BASE64:
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError("content is not valid base64", field="content") from None
    else:
        raise ApiError(f"encoding must be {TEXT} or {BASE64}", field="encoding")
    mode = field(body, "mode", int)
    saved = services.project_file_put(project=found, path=path, data=data, mode=mode)
    return JsonResponse(file_json(saved), status=200)


@api_view(("POST",))
def project_files_move(request: HttpRequest, project_id: int) -> JsonResponse:
    """Rename a file or move a folder: `{"from": path, "to": path}`."""
    found = selectors.project_get(user=_user(request), project_id=project_id, write=True)
    body = json_body(request)
    moved = services.project_files_move(project=found, source=body.get("from"), target=body.get("to"))
    return JsonResponse({"files": [file_json(f) for f in moved], "dockerfile_path": found.dockerfile_path})


@api_view(("POST",))
def project_context(request: HttpRequest, project_id: int) -> JsonResponse:
    """Upload the context as a tar (plain, gzip, bzip2 or xz) or zip archive: the raw request body,
    or a multipart form's `context` file. `?replace=false` adds to the files instead of replacing."""
    found = selectors.project_get(user=_user(request), project_id=project_id, write=True)
    replace = request.GET.get("replace", "true").lower() not in ("false", "0", "no")
    data = _upload_body(request)
    entries = files.read_archive(data)
    saved = services.project_files_upload(project=found, entries=entries, replace=replace)
    return JsonResponse({"files": [file_json(f) for f in saved], "replaced": replace}, status=201)


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
