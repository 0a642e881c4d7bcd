"""The image lab's JSON API: the layers a person's images share, and squash measures of their
own builds. Mounted beside the `builds` router in studio/api_root.py."""

from __future__ import annotations

from typing import Any, Literal

from django.http import Http404, HttpRequest
from ninja import Field, Status
from pydantic import StrictStr

from studio.api import ApiError, Id, In, Out, StudioRouter, errors
from studio.models import User

from . import imagelab, selectors
from .models import Build

router = StudioRouter(tags=["image lab"])

Loose = dict[str, Any]


class SharedLayersOut(Out):
    images: list[Loose] = Field(description="each image once: names, digest, size, unique, layers, own")
    layers: list[Loose] = Field(description="each layer once, most shared first: id, diff_id, size, images")
    images_total: int = Field(description="bytes the images take counted per image")
    stored: int = Field(description="bytes their layers take, each stored once")
    saved: int = Field(description="images_total - stored")


class SquashRequest(In):
    file: StrictStr | None = Field(
        None, description="the context file to edit (a line is appended); default: a comment on the last RUN"
    )


class SquashVariant(Out):
    layers: int
    size: int = Field(description="bytes of file content")
    tar_size: int = Field(description="bytes of its layer tars: what a first push sends")
    rebuild_ms: int = Field(description="measured: the rebuild after the edit (and the squash)")
    push_bytes: int = Field(description="measured: bytes of the layers the registry lacks")
    push_layers: int
    digest: str = Field(description="the image after the edit")
    before: str = Field(description="the image before it, which the registry held")


class SquashMeasureOut(Out):
    status: Literal["none", "queued", "running", "done", "failed"]
    edit_file: str | None = None
    edit: str | None = Field(None, description="the edit that was measured, in words")
    layered: SquashVariant | None = None
    squashed: SquashVariant | None = None
    measured: bool | None = None
    error: str | None = None


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # the API's session auth let only signed-in users through
    return request.user


def _own_build(request: HttpRequest, build_id: int) -> Build:
    """The build, when it is of the person's own project; anyone else's does not exist."""
    user = _user(request)
    build = selectors.build_get(user=user, build_id=build_id)
    if build.project.owner_id != user.pk:
        raise Http404(f"build {build_id} not found")
    return build


@router.get("/images/shared/", response={200: SharedLayersOut, **errors()})
def images_shared(request: HttpRequest) -> Any:
    """The store's base images and the person's own built images, and the layers they share."""
    return imagelab.shared_layers(user=_user(request))


@router.get("/builds/{int:build_id}/squash/", response={200: SquashMeasureOut, **errors()})
def squash_measure(request: HttpRequest, build_id: Id) -> Any:
    """The squash measure of one of the person's builds, as far as it has got."""
    return imagelab.squash_measure_get(build=_own_build(request, build_id))


@router.post("/builds/{int:build_id}/squash/", response={202: SquashMeasureOut, **errors(429)})
def squash_measure_start(request: HttpRequest, build_id: Id, payload: SquashRequest) -> Any:
    """Squash the build's image and measure what the next edit costs it and the layered image:
    both rebuilt for real, in the person's own cache."""
    build = _own_build(request, build_id)
    try:
        doc = imagelab.squash_measure_start(build=build, user=_user(request), edit_file=payload.file)
    except ValueError as exc:
        raise ApiError(str(exc), field="file") from None
    except imagelab.MeasureBusy as exc:
        raise ApiError(str(exc), status=429) from None
    return Status(202, doc)
