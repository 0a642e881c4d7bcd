"""The push endpoints of the JSON API (included by builds/api.py's router): where the studio
pushes to, the build's latest push with its per-layer report, and starting a push."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Status
from pydantic import StrictStr

from builds import selectors
from studio.api import Id, In, Out, StudioRouter, Token, errors
from studio.models import User
from studio.projects.selectors import project_get

from . import services

router = StudioRouter(tags=["builds"])
NO_REGISTRY = ("Push is off: this studio has no registry to push to. Its operator can name one "
               "with STUDIO_PUSH_REGISTRY; until then, download the image and `docker load` it.")


class PushRequest(In):
    repository: StrictStr = Field(description="the repository under the studio's registry and prefix: "
                                              "lowercase, e.g. my-app or class/my-app")
    tag: StrictStr = Field("latest", description="letters, digits, _ . -; up to 128")


class PushLayer(Out):
    digest: str
    size: int = Field(description="bytes of the layer's blob")
    current: int = Field(description="bytes moved so far")
    status: Literal["waiting", "uploading", "pushed", "exists", "mounted"]
    source: str | None = Field(None, description="for a mounted layer: the repository it came from")


class PushOut(Out):
    id: int
    reference: str = Field(description="where it went: host/prefix/repository:tag")
    status: Literal["queued", "running", "succeeded", "failed"]
    layers: list[PushLayer] = Field(description="one per image layer, bottom first")
    uploaded: int = Field(description="bytes uploaded (layers the registry had are not)")
    manifest_digest: str | None
    error: str | None
    pull: str | None = Field(description="the `docker pull` command, once it succeeded")


class ArchiveOut(Out):
    url: str = Field(description="where the browser downloads it (GET, streamed)")
    file: str = Field(description="the file name it downloads as")
    loads_as: str = Field(description="the name:tag `docker load` gives it")
    size: int = Field(description="bytes")


class PushStateOut(Out):
    allowed: bool = Field(description="whether this person may push this build (its project's owner)")
    registry: str | None = Field(description="host/prefix pushes go under; null: pushing is off")
    off_because: str | None = Field(description="why pushing is off, for the page")
    latest: PushOut | None = Field(description="the build's latest push (for its owner)")


class TakeHomeOut(Out):
    archive: ArchiveOut | None = Field(description="null until the build has succeeded")
    push: PushStateOut


def _owned_build(request: HttpRequest, build_id: int) -> Any:
    user = request.user
    assert isinstance(user, User)
    build = selectors.build_get(user=user, build_id=build_id)
    project_get(user=user, project_id=build.project_id, write=True)
    return build


@router.get("/builds/{int:build_id}/home/", response={200: TakeHomeOut, **errors()})
def build_take_home(request: HttpRequest, build_id: Id, token: Token = None) -> Any:
    """How to take the build's image home: its download, and (for its owner) the push registry
    and the latest push, as it goes."""
    build = selectors.build_get(user=request.user, build_id=build_id, token=token)
    owner = build.project.owner_id == request.user.pk
    registry = services.push_registry()
    return {
        "archive": services.archive_json(build=build, token=token),
        "push": {
            "allowed": owner,
            "registry": str(registry) if registry else None,
            "off_because": None if registry else NO_REGISTRY,
            "latest": services.push_json(services.push_latest(build=build)) if owner else None,
        },
    }


@router.post("/builds/{int:build_id}/push/", response={202: PushOut, **errors(409)})
def build_push(request: HttpRequest, build_id: Id, payload: PushRequest) -> Any:
    """Owner: push the build's image to `repository:tag` under the studio's registry."""
    build = _owned_build(request, build_id)
    user = request.user
    assert isinstance(user, User)
    push = services.push_create(build=build, user=user, repository=payload.repository, tag=payload.tag)
    return Status(202, services.push_json(push))
