"""The push endpoints of the JSON API (included by builds/api.py's router): where the studio
pushes to, the build's latest push with its per-layer report, and starting a push."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Status
from pydantic import StrictStr

from builds import selectors
from studio.api import Id, In, Out, StudioRouter, errors
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


class PushOut(Out):
    id: int
    reference: str = Field(description="where it went: host/prefix/repository:tag")
    status: Literal["queued", "running", "succeeded", "failed"]
    layers: list[PushLayer] = Field(description="one per image layer, bottom first")
    uploaded: int = Field(description="bytes uploaded (layers the registry had are not)")
    manifest_digest: str | None
    error: str | None
    pull: str | None = Field(description="the `docker pull` command, once it succeeded")


class PushStateOut(Out):
    registry: str | None = Field(description="host/prefix pushes go under; null: pushing is off")
    off_because: str | None = Field(description="why pushing is off, for the page")
    push: PushOut | None = Field(description="the build's latest push")


def _owned_build(request: HttpRequest, build_id: int) -> Any:
    user = request.user
    assert isinstance(user, User)
    build = selectors.build_get(user=user, build_id=build_id)
    project_get(user=user, project_id=build.project_id, write=True)
    return build


@router.get("/builds/{int:build_id}/push/", response={200: PushStateOut, **errors()})
def build_push_state(request: HttpRequest, build_id: Id) -> Any:
    """Owner: whether the studio can push, and the build's latest push as it goes."""
    build = _owned_build(request, build_id)
    registry = services.push_registry()
    return {"registry": str(registry) if registry else None, "off_because": None if registry else NO_REGISTRY,
            "push": services.push_json(services.push_latest(build=build))}


@router.post("/builds/{int:build_id}/push/", response={202: PushOut, **errors(409)})
def build_push(request: HttpRequest, build_id: Id, payload: PushRequest) -> Any:
    """Owner: push the build's image to `repository:tag` under the studio's registry."""
    build = _owned_build(request, build_id)
    user = request.user
    assert isinstance(user, User)
    push = services.push_create(build=build, user=user, repository=payload.repository, tag=payload.tag)
    return Status(202, services.push_json(push))
