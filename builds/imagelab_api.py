"""The image lab's JSON API: the layers a person's images share, squash measures of their own
builds, and where a build's bytes go. Mounted beside the `builds` router in studio/api_root.py."""

from __future__ import annotations

from typing import Any, Literal

from django.http import Http404, HttpRequest
from ninja import Field, Status
from pydantic import StrictInt, StrictStr

from studio.api import ApiError, Id, In, Out, StudioRouter, Token, errors
from studio.models import User

from . import imagebytes, imagelab, selectors
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


class RewriteMeasureOut(Out):
    status: Literal["none", "queued", "running", "done", "failed"]
    adder_line: int | None = None
    hider_line: int | None = None
    before: Loose | None = Field(None, description="measured: the image as built: digest, layers, size, "
                                 "tar_size")
    after: Loose | None = Field(None, description="measured: the image rewritten, the same facts")
    saved: int | None = Field(None, description="measured: bytes of file content the rewrite saves")
    saved_tar: int | None = Field(None, description="measured: bytes of layer tars it saves")
    measured: bool | None = None
    error: str | None = None


class Hiding(Out):
    layer: int = Field(description="the layer holding the wasted bytes (an index into `layers`)")
    hidden_by: int = Field(description="the layer that hid them")
    bytes: int
    files: int
    how: list[Literal["overwritten", "deleted", "opaque", "replaced"]]
    paths: list[str] = Field(description="the biggest few of the paths")
    made: Loose | None = Field(None, description="the step that made the layer holding them (as in `layers`)")
    hid: Loose | None = Field(None, description="the step that hid them")
    rewrite: Loose | None = Field(
        None, description="the deletion moved into the RUN that made the files: adder_line, hider_line, "
        "before (the lines as written), after (what stands in their place)")
    why_not: str | None = Field(None, description="why no rewrite is suggested")
    measure: RewriteMeasureOut | None = None


class BytesOut(Out):
    build: int
    image: Loose = Field(description="digest, size (bytes of file content, all layers), layers")
    shown: int = Field(description="bytes the image shows: its merged tree")
    wasted: int = Field(description="bytes its layers ship that the image does not show, each copy once")
    wasted_files: int
    layers: list[Loose] = Field(
        description="bottom first: index, id, size, kept, wasted, hides, added, modified, deleted, step "
        "(the step that made it, or for a base layer the FROM: step, line, stage, keyword, instruction, "
        "base), changes (biggest first: path, change, kind, size, status shown|wasted|deleted, "
        "hidden_by), changes_more")
    tree: Loose = Field(
        description="the merged tree, biggest first: name, path, kind, size, files, layer, earlier "
        "(layers whose copies it replaced), children, more, more_size (what is not listed)")
    waste: list[Loose] = Field(description="the wasted copies, biggest first: path, size, layer, hidden_by, "
                               "how, made_line and hid_line (the Dockerfile lines of the two layers)")
    waste_more: int
    hidings: list[Hiding] = Field(description="the wasted bytes by the two layers involved, biggest first")


class RewriteRequest(In):
    adder_line: StrictInt = Field(description="the first line of the RUN that made the files")
    hider_line: StrictInt = Field(description="the first line of the RUN that deletes them")


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


@router.get("/builds/{int:build_id}/bytes/", response={200: BytesOut, **errors(409)})
def build_bytes(request: HttpRequest, build_id: Id, token: Token = None) -> Any:
    """Where the bytes of the build's image go: its merged tree, its layers' changes, the wasted
    bytes traced to the lines that added and hid them, and rewrites with their measures."""
    build = selectors.build_get(user=_user(request), build_id=build_id, token=token)
    try:
        return imagebytes.build_bytes(build=build)
    except imagebytes.NoImage as exc:
        raise ApiError(str(exc), status=409) from None


@router.post("/builds/{int:build_id}/bytes/rewrite/", response={202: RewriteMeasureOut, **errors(409, 429)})
def build_bytes_rewrite(request: HttpRequest, build_id: Id, payload: RewriteRequest) -> Any:
    """Owner: measure a suggested rewrite by building it, in the person's own cache, on a copy."""
    build = _own_build(request, build_id)
    try:
        doc = imagebytes.rewrite_measure_start(build=build, user=_user(request),
                                               adder_line=payload.adder_line, hider_line=payload.hider_line)
    except ValueError as exc:
        raise ApiError(str(exc), field="hider_line") from None
    except imagebytes.NoImage as exc:
        raise ApiError(str(exc), status=409) from None
    except imagelab.MeasureBusy as exc:
        raise ApiError(str(exc), status=429) from None
    return Status(202, doc)
