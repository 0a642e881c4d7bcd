"""Where the bytes of a build's image go: its merged file tree, per layer and aggregated, the bytes
its layers ship that the image never shows (builds.engine.image.waste), each traced to the
Dockerfile lines that added them and hid them, and a rewrite for a deletion made by a later RUN
(the deletion moved into the RUN that made the files), with what it saves measured by a Celery
task that builds the rewrite in the person's own cache scope.

Everything is counted; only so much is listed (a base image alone holds thousands of paths).
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from studio.models import User

from .engine.editcost import measure_rewrite
from .engine.image.waste import DELETED, OPAQUE, ImageBytes, image_bytes, layer_rows, tree_json
from .engine.planner import BuildOptions
from .engine.rewrite import RewriteError, move_deletion
from .engine.store import Store
from .imagelab import measure_get, measure_run, measure_start
from .models import Build, Step
from .selectors import build_dockerfile_text
from .stores import image_here, web_store

MEASURE_REWRITE = "builds.measure_rewrite"
MAX_TREE_NODES = 1500  # nodes of the merged tree listed (all are counted)
TREE_PER_DIR = 60  # children listed per directory
MAX_LAYER_ROWS = 300  # changes listed per layer
MAX_WASTED = 300  # wasted copies listed
MAX_HIDINGS = 20  # pairs of lines (made by, hidden by) listed
MAX_INSTRUCTION = 300  # characters of an instruction shown
SAMPLE_PATHS = 3


class NoImage(Exception):
    """The build has no image to look into (it did not succeed, or its image is gone)."""


def _step_json(step: Step, *, base: bool = False) -> dict[str, Any]:
    instruction = step.instruction
    return {"step": step.number, "line": step.line, "stage": str(step.event.get("stage", "")),
            "keyword": (instruction.split(None, 1) or [""])[0].upper(),
            "instruction": instruction[:MAX_INSTRUCTION], "base": base}


def _layer_steps(build: Build, layers: list[str]) -> list[dict[str, Any] | None]:
    """The step that made each of the image's layers, matched from the top down (an image's
    layers are its final stage's steps over its base); the layers below them are the base's,
    shown as the FROM that named it."""
    steps = list(Step.objects.filter(build=build).order_by("number"))
    made: dict[str, list[Step]] = {}
    for step in steps:
        digest = str((step.layer or {}).get("digest") or "")
        if digest.startswith("sha256:"):
            made.setdefault(digest[7:23], []).append(step)
    found: list[dict[str, Any] | None] = [None] * len(layers)
    below = None  # the lowest step matched so far
    for index in reversed(range(len(layers))):
        candidates = [s for s in made.get(layers[index], []) if below is None or s.number < below.number]
        if not candidates:
            break
        below = candidates[-1]
        found[index] = _step_json(below)
    froms = [s for s in steps if s.keyword == "FROM" or s.instruction.upper().startswith("FROM ")]
    top = below if below is not None else (steps[-1] if steps else None)
    stage = top.event.get("stage") if top is not None else None
    base = next((s for s in reversed(froms) if s.event.get("stage") == stage and
                 (below is None or s.number < below.number)), None)
    for index, matched in enumerate(found):
        if matched is None and base is not None:
            found[index] = _step_json(base, base=True)
    return found


def build_bytes(*, build: Build) -> dict[str, Any]:
    """Where the bytes of `build`'s image go. Raises NoImage when it has none in the store."""
    if build.status != Build.Status.SUCCEEDED or not build.image_digest:
        raise NoImage("only a build that succeeded has an image to look into")
    store = web_store()
    image = image_here(store, build.image_digest)
    if image is None:
        raise NoImage("the build's image is no longer in the store; build it again")
    found = image_bytes(store, image.layers)
    steps = _layer_steps(build, image.layers)
    waste = sorted((w for w in found.wasted if w.size), key=lambda w: (-w.size, w.path))
    layers = [{"index": layer.index, "id": layer.id, "size": layer.size, "kept": layer.kept,
               "wasted": layer.wasted, "hides": layer.hides, "added": layer.added,
               "modified": layer.modified, "deleted": layer.deleted, "step": steps[layer.index],
               "changes": layer_rows(found, layer.index, limit=MAX_LAYER_ROWS),
               "changes_more": max(len(layer.changes) - MAX_LAYER_ROWS, 0)}
              for layer in found.layers]
    return {
        "build": build.id,
        "image": {"digest": image.digest, "size": found.size, "layers": len(image.layers)},
        "shown": found.shown_bytes,
        "wasted": found.wasted_bytes,
        "wasted_files": len(waste),
        "layers": layers,
        "tree": tree_json(found.entries, max_nodes=MAX_TREE_NODES, per_dir=TREE_PER_DIR),
        "waste": [{"path": w.path, "size": w.size, "layer": w.layer, "hidden_by": w.hidden_by, "how": w.how,
                   "made_line": _line_of(steps[w.layer]), "hid_line": _line_of(steps[w.hidden_by])}
                  for w in waste[:MAX_WASTED]],
        "waste_more": max(len(waste) - MAX_WASTED, 0),
        "hidings": _hidings(build, found, steps),
    }


def _line_of(step: dict[str, Any] | None) -> int | None:
    return step["line"] if step is not None else None


def _hidings(build: Build, found: ImageBytes, steps: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """The wasted bytes by the two layers (and so the two lines) involved, biggest first; for a
    deletion by a later RUN of what an earlier RUN made, the rewrite that moves it."""
    pairs: dict[tuple[int, int], dict[str, Any]] = {}
    for item in sorted(found.wasted, key=lambda w: (-w.size, w.path)):
        if not item.size:
            continue
        pair = pairs.setdefault((item.layer, item.hidden_by), {
            "layer": item.layer, "hidden_by": item.hidden_by, "bytes": 0, "files": 0, "how": [], "paths": []})
        pair["bytes"] += item.size
        pair["files"] += 1
        if item.how not in pair["how"]:
            pair["how"].append(item.how)
        if len(pair["paths"]) < SAMPLE_PATHS:
            pair["paths"].append(item.path)
    text = build_dockerfile_text(build=build)
    listed = sorted(pairs.values(), key=lambda p: -p["bytes"])[:MAX_HIDINGS]
    for pair in listed:
        made, hid = steps[pair["layer"]], steps[pair["hidden_by"]]
        pair.update({"made": made, "hid": hid, **_rewrite_for(build, text, made, hid, pair["how"])})
    return listed


def _rewrite_for(build: Build, text: str | None, made: dict[str, Any] | None, hid: dict[str, Any] | None,
                 how: list[str]) -> dict[str, Any]:
    """The rewrite for one pair, or why there is none."""
    none: dict[str, Any] = {"rewrite": None, "why_not": None, "measure": None}
    if not set(how) & {DELETED, OPAQUE}:
        later = f"line {hid['line']}" if hid is not None and hid.get("line") else "a later line"
        return {**none, "why_not": f"{later} writes these paths again; writing each file once, "
                "where it is written last, saves these bytes"}
    if made is None or hid is None or made["base"] or made["keyword"] != "RUN" or hid["keyword"] != "RUN":
        return {**none, "why_not": "only a deletion by a RUN of what an earlier RUN made can be moved"}
    if text is None:
        return {**none, "why_not": "the Dockerfile is not UTF-8 text"}
    try:
        rewrite = move_deletion(text, adder_line=made["line"], hider_line=hid["line"])
    except RewriteError as exc:
        return {**none, "why_not": exc.message}
    measure = measure_get(_measure_name(build.id, rewrite.adder_line, rewrite.hider_line))
    return {**none, "rewrite": rewrite.to_json(), "measure": measure}


def _measure_name(build_id: int, adder_line: int, hider_line: int) -> str:
    return f"rewrite-{build_id}-{adder_line}-{hider_line}"


def rewrite_measure_start(*, build: Build, user: User, adder_line: int, hider_line: int) -> dict[str, Any]:
    """Queue the measure of one of the build's suggested rewrites (named by its two lines).
    Raises ValueError for a rewrite the build's page does not suggest, NoImage, or
    imagelab.MeasureBusy while another of the person's measures is under way."""
    suggested = [h["rewrite"] for h in build_bytes(build=build)["hidings"] if h["rewrite"]]
    if not any((r["adder_line"], r["hider_line"]) == (adder_line, hider_line) for r in suggested):
        raise ValueError(f"no rewrite moves line {hider_line} into line {adder_line} for this build")
    lines = {"adder_line": adder_line, "hider_line": hider_line}
    return measure_start(name=_measure_name(build.id, adder_line, hider_line), user=user, doc=lines,
                         task=MEASURE_REWRITE, args=(build.id, user.id, adder_line, hider_line))


@shared_task(name=MEASURE_REWRITE, acks_late=False)
def measure_rewrite_task(build_id: int, user_id: int, adder_line: int, hider_line: int) -> str:
    """Build `build_id`'s revision as it is and rewritten (the RUN on `hider_line` moved into the
    one on `adder_line`), in the person's own cache scope, on a copy: their project never
    changes. Stores both images' sizes and what the rewrite saves."""
    lines = {"adder_line": adder_line, "hider_line": hider_line}

    def measure(store: Store, options: BuildOptions) -> dict[str, Any]:
        rewrite = move_deletion(options.dockerfile_text or "", adder_line=adder_line, hider_line=hider_line)
        return measure_rewrite(store, options, rewrite.text)

    return measure_run(name=_measure_name(build_id, adder_line, hider_line), build_id=build_id,
                       user_id=user_id, doc=lines, measure=measure)
