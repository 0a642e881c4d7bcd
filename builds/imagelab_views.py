"""The `/images/` page: the images a person can see (the store's base images and their own built
images) drawn as stacks of layers, what sharing saves, and squash measures of their own builds.
Drawn on the server (the bars are SVG, sized by attributes, as the page's policy allows no inline
style); a running measure refreshes the page until it is done."""

from __future__ import annotations

import colorsys
import hashlib
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from studio.models import User

from . import imagelab, selectors
from .models import Build

MAX_LAYER_ROWS = 40  # layers listed on the page (all are counted)
MEASURABLE_BUILDS = 20  # the person's latest succeeded builds offered for a squash measure
BAR_WIDTH = 1000  # the SVG's user units across; the bar scales to the page


def _colour(layer_id: str) -> str:
    """One colour per layer, the same in every image that has it."""
    hue = int(hashlib.sha256(layer_id.encode()).hexdigest()[:4], 16) / 0xFFFF
    r, g, b = colorsys.hls_to_rgb(hue, 0.58, 0.55)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def _bars(usage: dict[str, Any]) -> list[dict[str, Any]]:
    """Each image as a row of segments, widths in proportion to the largest image."""
    layers = {layer["id"]: layer for layer in usage["layers"]}
    widest = max((image["size"] for image in usage["images"]), default=0) or 1
    rows = []
    for image in usage["images"]:
        x = 0.0
        segments = []
        for layer_id in image["layers"]:
            layer = layers[layer_id]
            width = max(layer["size"] / widest * BAR_WIDTH, 3.0)
            segments.append({"x": round(x, 2), "width": round(width, 2), "colour": _colour(layer_id),
                             "shared": layer["shared_by"] > 1, "id": layer_id, "size": layer["size"],
                             "shared_by": layer["shared_by"]})
            x += width
        rows.append({**image, "name": image["names"][0], "segments": segments,
                     "shared_bytes": image["size"] - image["unique"]})
    return rows


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # login_required let only signed-in people through
    return request.user


@login_required
def images_page(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    usage = imagelab.shared_layers(user=user)
    layer_rows = [{**layer, "colour": _colour(layer["id"]), "counted": layer["size"] * layer["shared_by"]}
                  for layer in usage["layers"][:MAX_LAYER_ROWS]]
    builds = list(
        Build.objects.filter(project__owner=user, status=Build.Status.SUCCEEDED)
        .exclude(image_digest="").select_related("project").order_by("-id")[:MEASURABLE_BUILDS]
    )
    chosen = request.GET.get("build", "")
    measure = None
    measured_build = None
    if chosen.isdigit():
        measured_build = _own_build(user, int(chosen))
        measure = imagelab.squash_measure_get(build=measured_build)
    return render(request, "studio/images.html", {
        "usage": usage,
        "bars": _bars(usage),
        "layers": layer_rows,
        "more_layers": max(len(usage["layers"]) - MAX_LAYER_ROWS, 0),
        "builds": builds,
        "measure": measure,
        "measured_build": measured_build,
        "waiting": bool(measure and measure["status"] in ("queued", "running")),
    })


def _own_build(user: User, build_id: int) -> Build:
    build = selectors.build_get(user=user, build_id=build_id)
    if build.project.owner_id != user.pk:
        raise Http404(f"build {build_id} not found")
    return build


@login_required
@require_POST
def images_squash(request: HttpRequest) -> HttpResponse:
    """Start a squash measure of one of the person's builds, then show the page measuring it."""
    user = _user(request)
    chosen = request.POST.get("build", "")
    if not chosen.isdigit() or len(chosen) > 12:
        raise Http404("no such build")
    build = _own_build(user, int(chosen))
    edit_file = request.POST.get("file", "").strip() or None
    try:
        imagelab.squash_measure_start(build=build, user=user, edit_file=edit_file)
    except ValueError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    except imagelab.MeasureBusy as exc:
        return HttpResponse(str(exc), status=429, content_type="text/plain; charset=utf-8")
    return redirect(f"/images/?build={build.id}#squash")
