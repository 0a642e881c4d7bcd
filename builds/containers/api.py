"""The JSON API for containers: run a person's own finished build, read the container, commit
or remove its writable layer. Anyone else's build or container is 404, share link or not."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Status
from pydantic import StrictStr

from studio.api import Id, In, Out, StudioRouter, errors
from studio.models import User
from studio.projects.selectors import project_get

from . import services

router = StudioRouter(tags=["containers"])


class RunRequest(In):
    cmd: list[StrictStr] | None = Field(
        None, description="the command and its arguments, replacing the image's CMD (default: the image's)")


class DiffChange(Out):
    path: str = Field(description="inside the image, no leading /; as the container named it")
    kind: Literal["file", "dir", "symlink", "whiteout"]
    size: int
    change: Literal["added", "modified", "deleted"]


class DiffOut(Out):
    """The writable layer against the image: every change counted, the first ones listed."""

    added: int
    modified: int
    deleted: int
    size: int = Field(description="bytes of file content in the layer")
    total: int = Field(description="changes in all, listed or not")
    truncated: bool
    changes: list[DiffChange]


class CommittedOut(Out):
    digest: str
    layers: int
    layer: dict[str, Any] | None = Field(description="the new top layer's facts; null when nothing changed")


class ContainerOut(Out):
    id: int
    build: int
    status: Literal["queued", "running", "exited", "failed", "committing", "committed", "removed"]
    cmd: list[str]
    exit_code: int | None
    message: str = Field(description="why it stopped, when not by itself, or why a commit failed")
    output: str = Field(description="the latest output (at most 64 KiB of it)")
    output_chars: int = Field(description="characters printed in all")
    output_truncated: bool
    diff: DiffOut | None
    committed_image: CommittedOut | None = Field(description="set once the commit is stored (committed)")
    queued_at: str | None
    finished_at: str | None


class LatestOut(Out):
    container: ContainerOut | None


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@router.post("/builds/{int:build_id}/containers/", response={202: ContainerOut, **errors(409, 429)})
def container_create(request: HttpRequest, build_id: Id, payload: RunRequest) -> Any:
    """Run the build's image as a container (owner only)."""
    user = _user(request)
    build = services.own_build_get(user=user, build_id=build_id)
    project_get(user=user, project_id=build.project_id, write=True)  # a frozen exercise runs nothing
    found = services.container_create(build=build, user=user, cmd=payload.cmd)
    return Status(202, services.container_json(found))


@router.get("/builds/{int:build_id}/container/", response={200: LatestOut, **errors()})
def container_latest(request: HttpRequest, build_id: Id) -> Any:
    """The person's newest container of the build that is not removed, or null."""
    user = _user(request)
    services.containers_reap()
    found = services.container_latest(build=services.own_build_get(user=user, build_id=build_id), user=user)
    return {"container": services.container_json(found) if found else None}


@router.get("/containers/{int:container_id}/", response={200: ContainerOut, **errors()})
def container_get(request: HttpRequest, container_id: Id) -> Any:
    """One of the person's containers: its state, output and writable layer."""
    services.containers_reap()
    return services.container_json(services.container_get(user=_user(request), container_id=container_id))


@router.post("/containers/{int:container_id}/commit/", response={202: ContainerOut, **errors(409)})
def container_commit(request: HttpRequest, container_id: Id) -> Any:
    """Store the writable layer as one more layer on the image, a new image: the container is
    committing until the worker holding the layer has stored it (then committed, or exited or
    failed with a message), which its websocket tells."""
    found = services.container_get(user=_user(request), container_id=container_id)
    return Status(202, services.container_json(services.container_commit(container=found)))


@router.delete("/containers/{int:container_id}/", response={200: ContainerOut, **errors(409)})
def container_remove(request: HttpRequest, container_id: Id) -> Any:
    """Remove the container: it is gone at once, and its worker discards its writable layer."""
    found = services.container_get(user=_user(request), container_id=container_id)
    return services.container_json(services.container_remove(container=found))
