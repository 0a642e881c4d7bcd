"""A comparison of two builds as the API returns it, gathered from the database (steps, plans,
revisions) and the layer store (image layers, layers' file lists). The alignment and the diffs
themselves are pure (`align`, `diff`, `sources`); this module only fetches their inputs.

Callers have checked that the person may see both builds."""

from __future__ import annotations

import filecmp
from typing import Any

from builds.engine.store import Store
from builds.engine.verdicts import NOT_RUN, PENDING
from builds.models import Build
from builds.selectors import build_plan, build_steps, build_summary, step_json
from builds.stores import image_here, layer_here
from studio.projects.models import Revision

from . import align as alignment
from .diff import FileFacts, LayerEntry, counts, files_diff, layers_diff, lines_diff, words_diff
from .parting import READS_FILES, why_parted
from .sources import ignore_file_names, line_ends, read_paths, step_reads

MAX_FILE_DIFF_BYTES = 256 * 1024  # a context file bigger than this is compared, not shown line by line
MAX_FILE_DIFFS = 20  # changed files shown line by line per step
MAX_LAYER_FILES = 1000  # a layer diff's entries listed (all are counted)


def _dockerfile_text(revision: Revision) -> str:
    found = revision.files.select_related("blob").filter(path=revision.dockerfile_path).first()
    return bytes(found.blob.data).decode("utf-8", "replace") if found is not None else ""


def _side_steps(build: Build, ends: dict[int, int]) -> list[dict[str, Any]]:
    """The build's steps as finished, plus planned ones that never reported (still to come in a
    running build; never run in one that stopped), each with its last line and its layer's size."""
    steps = [step_json(step) for step in build_steps(build=build)]
    have = {step["step"] for step in steps}
    missing = PENDING if not build.finished else NOT_RUN
    for planned in build_plan(build=build) or []:
        if planned["step"] not in have:
            steps.append(
                {
                    **planned,
                    "keyword": planned["instruction"].split(" ", 1)[0].upper(),
                    "status": missing,
                    "cached": False,
                    "cache_key": None,
                    "reason": None,
                    "layer": None,
                    "duration_ms": 0,
                }
            )
    steps.sort(key=lambda step: step["step"])
    for step in steps:
        step["end_line"] = ends.get(step["line"], step["line"])
        step["size"] = (step.get("layer") or {}).get("size", 0)
    return steps


def _side(step: dict[str, Any] | None) -> dict[str, Any] | None:
    if step is None:
        return None
    keep = (
        "step",
        "stage",
        "instruction",
        "line",
        "end_line",
        "keyword",
        "status",
        "cached",
        "cache_key",
        "reason",
        "layer",
        "duration_ms",
        "size",
        "error",
        "base",
    )
    return {key: step.get(key) for key in keep}


RAN = {"cached", "built", "metadata", "failed", "cancelled"}  # statuses whose time means something
MADE = {"cached", "built", "metadata"}  # statuses whose layer (or lack of one) is the step's outcome


def _delta(row: alignment.Row, field: str, statuses: set[str]) -> int | None:
    """b's value minus a's, when both steps got far enough for the value to mean something:
    a step that did not run took no time and wrote nothing, which is no difference to show."""
    if row.a is None or row.b is None or not {row.a.get("status"), row.b.get("status")} <= statuses:
        return None
    return int(row.b.get(field) or 0) - int(row.a.get(field) or 0)


def _build_facts(build: Build) -> dict[str, Any]:
    return {
        **build_summary(build),
        "project_name": build.project.name,
        "owner": build.project.owner.username,
        "dockerfile_path": build.revision.dockerfile_path,
    }


def _image_layers(store: Store, digest: str) -> list[tuple[str, int]] | None:
    """(diff_id, size) of each layer of the image, bottom first; None when it is not stored."""
    image = image_here(store, digest) if digest else None  # built on another host: fetched
    if image is None:
        return None
    try:
        facts = [store.layer(layer_id) for layer_id in image.layers]
    except FileNotFoundError:
        return None
    return [(layer.diff_id, layer.size) for layer in facts]


def shared_layers(a: list[tuple[str, int]] | None, b: list[tuple[str, int]] | None) -> dict[str, Any] | None:
    """The layers both images are made of: stored and pulled once, so their bytes are saved once."""
    if a is None or b is None:
        return None
    in_b = {digest for digest, _ in b}
    shared: dict[str, int] = {digest: size for digest, size in a if digest in in_b}
    return {
        "count": len(shared),
        "bytes": sum(shared.values()),
        "a_layers": len(a),
        "b_layers": len(b),
        "layers": [{"digest": digest, "size": size} for digest, size in shared.items()],
    }


def build_comparison(a: Build, b: Build, *, store: Store) -> dict[str, Any]:
    """Both builds, their aligned rows, the Dockerfiles' diff and a summary."""
    text_a, text_b = _dockerfile_text(a.revision), _dockerfile_text(b.revision)
    rows = alignment.align(
        _side_steps(a, line_ends(text_a, a.revision.dockerfile_path)),
        _side_steps(b, line_ends(text_b, b.revision.dockerfile_path)),
    )
    first = alignment.first_parting(rows)
    parting = None
    if first is not None:
        parting = {"row": first, **_why_parted(a, b, rows[first])}
    out_rows = [
        {
            "index": n,
            "kind": row.kind,
            "a": _side(row.a),
            "b": _side(row.b),
            "same_key": alignment.keys_equal(row),
            "parted": alignment.parted(row),
            "first_divergence": n == first,
            "duration_delta_ms": _delta(row, "duration_ms", RAN),
            "size_delta": _delta(row, "size", MADE),
        }
        for n, row in enumerate(rows)
    ]
    size_a, size_b = a.image_size, b.image_size
    return {
        "a": _build_facts(a),
        "b": _build_facts(b),
        "rows": out_rows,
        "dockerfiles": {"a": text_a, "b": text_b, "diff": lines_diff(text_a, text_b)},
        "summary": {
            "first_divergence": first,
            "parting": parting,
            "rows": {
                kind: sum(1 for r in rows if r.kind == kind)
                for kind in ("same", "changed", "moved", "removed", "added")
            },
            "duration_delta_ms": (
                b.duration_ms - a.duration_ms
                if a.duration_ms is not None and b.duration_ms is not None
                else None
            ),
            "image_size_delta": size_b - size_a if size_a is not None and size_b is not None else None,
            "shared_layers": shared_layers(
                _image_layers(store, a.image_digest), _image_layers(store, b.image_digest)
            ),
        },
    }


def _why_parted(a: Build, b: Build, row: alignment.Row) -> dict[str, Any]:
    files: list[dict[str, Any]] = []
    if row.a is not None and row.b is not None and str(row.b.get("keyword")).upper() in READS_FILES:
        files = _context_diff(a, b, row.a, row.b).get("files", [])
    return why_parted(row, files=files, args=(a.build_args, b.build_args), no_cache=(a.no_cache, b.no_cache))


# -- one row, on demand ------------------------------------------------------------------------------


def _find_step(build: Build, number: int | None) -> dict[str, Any] | None:
    if number is None:
        return None
    text = _dockerfile_text(build.revision)
    found = next((s for s in _side_steps(build, line_ends(text)) if s["step"] == number), None)
    if found is None:
        raise LookupError(f"build {build.id} has no step {number}")
    return found


def _context_files(
    build: Build, step: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, FileFacts]]:
    """What the step reads from the build context: (description, path -> facts)."""
    if step is None:
        return None, {}
    revision = build.revision
    reads = step_reads(_dockerfile_text(revision), step["line"], revision.dockerfile_path)
    if reads is None:
        return None, {}
    files = {f.path: f for f in revision.files.select_related("blob").defer("blob__data")}
    ignore = next(
        (files[name] for name in ignore_file_names(revision.dockerfile_path) if name in files), None
    )
    ignore_text = _blob_text(revision, ignore.path) if ignore is not None else None
    paths = read_paths(reads, files, ignore_text)
    described = {
        "sources": list(reads.sources),
        "from": reads.from_stage,
        "heredoc": reads.heredoc,
        "exclude": list(reads.excludes),
    }
    return described, {path: FileFacts(files[path].blob.size, files[path].blob_id) for path in paths}


def _blob_text(revision: Revision, path: str) -> str | None:
    found = revision.files.select_related("blob").filter(path=path).first()
    if found is None or found.blob.size > MAX_FILE_DIFF_BYTES:
        return None
    try:
        return bytes(found.blob.data).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _context_diff(
    a: Build, b: Build, step_a: dict[str, Any] | None, step_b: dict[str, Any] | None
) -> dict[str, Any]:
    reads_a, files_a = _context_files(a, step_a)
    reads_b, files_b = _context_files(b, step_b)
    if reads_a is None and reads_b is None:
        return {"reads": False}
    entries = files_diff(files_a, files_b)
    shown = 0
    for entry in entries:
        if entry["change"] != "changed" or shown >= MAX_FILE_DIFFS:
            continue
        old, new = _blob_text(a.revision, entry["path"]), _blob_text(b.revision, entry["path"])
        if old is not None and new is not None:
            entry["diff"] = lines_diff(old, new)["lines"]
            shown += 1
    return {"reads": True, "a": reads_a, "b": reads_b, "files": entries, "counts": counts(entries)}


def _layer_id(step: dict[str, Any] | None) -> str | None:
    digest = ((step or {}).get("layer") or {}).get("digest")
    return digest.split(":", 1)[-1][:16] if digest else None


def _layer_diff(store: Store, step_a: dict[str, Any] | None, step_b: dict[str, Any] | None) -> dict[str, Any]:
    id_a, id_b = _layer_id(step_a), _layer_id(step_b)
    if id_a is None and id_b is None:
        return {"layers": False}
    for layer_id in (id_a, id_b):
        if layer_id:
            layer_here(store, layer_id)  # built on another host: fetched, or missing below
    try:
        layer_a = store.layer(id_a, changes=True) if id_a else None
        layer_b = store.layer(id_b, changes=True) if id_b else None
    except FileNotFoundError:
        return {"layers": True, "error": "a layer of these steps is no longer in the store"}

    def entries(layer: Any) -> list[LayerEntry]:
        return [LayerEntry(c.path, c.kind, c.size, c.change) for c in layer.changes] if layer else []

    def same_content(path: str) -> bool:
        # Asked only for a path both layers wrote, so both exist.
        assert id_a is not None and id_b is not None
        if id_a == id_b:
            return True
        try:
            return filecmp.cmp(store.layer_path(id_a) / path, store.layer_path(id_b) / path, shallow=False)
        except OSError:  # a layer's file went missing from the store: say it changed rather than fail
            return False

    found = layers_diff(entries(layer_a), entries(layer_b), same_content)
    # What differs first: a layer of thousands of files (a package install) stays readable.
    shown = sorted(found, key=lambda entry: entry["change"] == "same")[:MAX_LAYER_FILES]
    return {
        "layers": True,
        "same_layer": id_a == id_b,
        "a": layer_a.summary() if layer_a else None,
        "b": layer_b.summary() if layer_b else None,
        "files": shown,
        "counts": counts(found),
        "truncated": len(found) > len(shown),
    }


def row_detail(a: Build, b: Build, *, a_step: int | None, b_step: int | None, store: Store) -> dict[str, Any]:
    """For one row: the two instructions word by word, the context files each step read and how
    they differ (line by line for changed text files), and the two layers' files. LookupError
    when a build has no such step."""
    step_a, step_b = _find_step(a, a_step), _find_step(b, b_step)
    return {
        "a": _side(step_a),
        "b": _side(step_b),
        "instruction": words_diff(
            step_a["instruction"] if step_a else "", step_b["instruction"] if step_b else ""
        ),
        "context": _context_diff(a, b, step_a, step_b),
        "layer": _layer_diff(store, step_a, step_b),
    }
