"""The `/builds/<id>/bytes/` page: where a build's image's bytes go. Its layers as bars of bytes
shown and wasted, the wasted bytes by the lines that added and hid them (with the rewrite that
moves a deletion, measured on request), one layer's changes, and the merged tree. Drawn on the
server, as the images page is (the page's policy allows no inline style: the bars are SVG, sized
by attributes); a running measure refreshes the page until it is done."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from . import imagebytes, imagelab, selectors

BAR_WIDTH = 1000  # the SVG's user units across
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\v": "\\v", "\f": "\\f", "\b": "\\b", "\x07": "\\a"}


def visible(name: str) -> str:
    """A file name with its control characters written out (`\\n`), as the studio's pages show them."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), name)


def _line(step: dict[str, Any] | None) -> str:
    if step is None:
        return "the base image"
    return f"line {step['line']}" if step.get("line") else f"step {step['step']}"


def _tree_html(node: dict[str, Any], steps: list[dict[str, Any] | None]) -> SafeString:
    """The merged tree as nested lists, every directory folded (<details>)."""
    items = []
    for child in node.get("children", []):
        by = _line(steps[child["layer"]]) if child["layer"] is not None else ""
        if child.get("earlier"):
            by += f" (over {', '.join(_line(steps[i]) for i in child['earlier'])})"
        mark = {"dir": "/", "symlink": " →"}.get(child["kind"], "")
        head = format_html('<span class="tree-name">{}{}</span><span class="tree-size">{}</span>'
                           '<span class="tree-by">{}</span>', visible(child["name"]), mark,
                           "link" if child["kind"] == "symlink" else filesizeformat(child["size"]), by)
        if child["kind"] == "dir" and (child.get("children") or child.get("more")):
            items.append(format_html('<li class="tree-dir"><details><summary>{}</summary>{}</details></li>',
                                     head, _tree_html(child, steps)))
        else:
            items.append(format_html('<li class="tree-{}"><div class="tree-row">{}</div></li>',
                                     "dir" if child["kind"] == "dir" else "file", head))
    if node.get("more"):
        items.append(format_html('<li class="tree-more">…and {} more ({}), counted above</li>',
                                 node["more"], filesizeformat(node.get("more_size", 0))))
    return format_html('<ul class="tree">{}</ul>', mark_safe("".join(items)))


def _layer_bars(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Each layer's bytes split into what the image shows and what a later layer hid, widths in
    proportion to the biggest layer."""
    widest = max((layer["size"] for layer in found["layers"]), default=0) or 1
    rows = []
    for layer in found["layers"]:
        kept = layer["kept"] / widest * BAR_WIDTH
        wasted = layer["wasted"] / widest * BAR_WIDTH
        rows.append({**layer, "kept_w": round(kept, 2), "wasted_x": round(kept, 2),
                     "wasted_w": round(wasted, 2),
                     "where": _line(layer["step"])})
    return rows


def _query(token: str | None, **params: Any) -> str:
    found = {k: v for k, v in {**params, "token": token}.items() if v not in (None, "")}
    return f"?{urlencode(found)}" if found else ""


@login_required
def bytes_page(request: HttpRequest, build_id: int) -> HttpResponse:
    token = request.GET.get("token") or None
    build = selectors.build_get(user=request.user, build_id=build_id, token=token)
    context: dict[str, Any] = {"build": build, "token": token, "found": None, "error": None,
                               "owner": build.project.owner_id == request.user.pk,
                               "studio": f"/studio/{build.project_id}/{_query(token, build=build.id)}"}
    try:
        found = imagebytes.build_bytes(build=build)
    except imagebytes.NoImage as exc:
        context["error"] = str(exc)
        return render(request, "studio/bytes.html", context)
    steps = [layer["step"] for layer in found["layers"]]
    chosen = request.GET.get("layer", "")
    index = int(chosen) if chosen.isdigit() and int(chosen) < len(steps) else _most_wasted(found)
    layer = found["layers"][index]
    for hiding in found["hidings"]:
        hiding["made_where"], hiding["hid_where"] = _line(hiding["made"]), _line(hiding["hid"])
        hiding["shown_paths"] = [visible(p) for p in hiding["paths"]]
    context.update({
        "found": found,
        "bars": [{**bar, "href": f"{_query(token, layer=bar['index'])}#bytes-layer"}
                 for bar in _layer_bars(found)],
        "layer": {**layer, "where": _line(layer["step"])},
        "layer_rows": [{**row, "shown_path": visible(row["path"]),
                        "hidden_where": "" if row["hidden_by"] is None else _line(steps[row["hidden_by"]])}
                       for row in layer["changes"]],
        "waste": [{**w, "shown_path": visible(w["path"]), "made": _line(steps[w["layer"]]),
                   "hid": _line(steps[w["hidden_by"]])} for w in found["waste"]],
        "tree": _tree_html(found["tree"], steps),
        "waiting": any((h.get("measure") or {}).get("status") in ("queued", "running")
                       for h in found["hidings"]),
        "wasted_share": round(100 * found["wasted"] / (found["image"]["size"] or 1)),
    })
    return render(request, "studio/bytes.html", context)


def _most_wasted(found: dict[str, Any]) -> int:
    """The layer shown first: the one whose bytes a later layer hid most, else the top one."""
    layers = found["layers"]
    best = max(layers, key=lambda layer: (layer["wasted"], layer["index"]))
    return int(best["index"]) if best["wasted"] else len(layers) - 1


@login_required
@require_POST
def bytes_measure(request: HttpRequest, build_id: int) -> HttpResponse:
    """Owner: start the measure of a suggested rewrite, then show the page measuring it."""
    build = selectors.build_get(user=request.user, build_id=build_id)
    if build.project.owner_id != request.user.pk:
        raise Http404(f"build {build_id} not found")
    adder, hider = request.POST.get("adder_line", ""), request.POST.get("hider_line", "")
    if not (adder.isdigit() and hider.isdigit() and len(adder) < 7 and len(hider) < 7):
        return HttpResponse("name the two lines of a suggested rewrite", status=400,
                            content_type="text/plain; charset=utf-8")
    try:
        imagebytes.rewrite_measure_start(build=build, user=request.user,
                                         adder_line=int(adder), hider_line=int(hider))
    except (ValueError, imagebytes.NoImage) as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    except imagelab.MeasureBusy as exc:
        return HttpResponse(str(exc), status=429, content_type="text/plain; charset=utf-8")
    return redirect(f"/builds/{build.id}/bytes/#rewrite-{int(adder)}-{int(hider)}")

