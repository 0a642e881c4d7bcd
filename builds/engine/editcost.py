"""What the next edit costs a layered image and its squashed variant, measured by doing it.

Builds the Dockerfile as it is (in the caller's cache scope), squashes the result, then makes one
edit on a copy of the context (a line appended to a file, or a comment added to the last RUN),
builds again and squashes again. Each variant's next push sends the layers the registry lacks:
the layered image's rebuilt layers only, the squashed image's one layer whole. Nothing here is
estimated: times are wall-clock of the real builds, bytes are the layers' tar sizes.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .builder import BuildOptions, build
from .dockerfile import parse
from .errors import InputError
from .image.squash import squash_image
from .store import Image, Store

# Appended to the file the measure edits; a comment in most files a project has.
EDIT_MARK = b"\n# edited to measure the next build\n"
# Added to the last RUN's line: a shell comment, so the command is unchanged but its text is not.
RUN_MARK = "  # edited to measure the next build"


class EditError(InputError):
    """An edit the measure cannot make: no such file, or no RUN step to change."""


@dataclass
class Variant:
    layers: int  # how many layers the image has
    size: int  # bytes of file content, all layers
    tar_size: int  # bytes of its layer tars: what a first push sends
    rebuild_ms: int  # the rebuild after the edit (and the squash, for the squashed variant)
    push_bytes: int  # bytes of the layers a registry holding the first build lacks
    push_layers: int
    digest: str = ""  # the image after the edit
    before: str = ""  # the image before it, which the registry holds


@dataclass
class EditCost:
    edit: str  # what was changed, in words
    layered: Variant
    squashed: Variant

    def to_json(self) -> dict[str, Any]:
        return {"edit": self.edit, "layered": vars(self.layered), "squashed": vars(self.squashed),
                "measured": True}


def measure_edit_cost(store: Store, options: BuildOptions, *, edit_file: str | None = None) -> EditCost:
    """Build, squash, edit, rebuild and squash again; report both variants' next-edit cost.
    `options.context` is not changed: the edit goes into a copy."""
    first = _build(store, options)
    first_squashed = squash_image(store, first)
    work = store.work_dir("editcost")
    try:
        context = work / "context"
        shutil.copytree(options.context, context, symlinks=True)
        text = options.dockerfile_text
        if text is None:
            text = (options.dockerfile or options.context / "Dockerfile").read_text(encoding="utf-8")
        edit, text = _edit(context, text, edit_file)
        dockerfile = context / "Dockerfile.edited"
        edited = dataclasses.replace(options, context=context, dockerfile=dockerfile, dockerfile_text=text,
                                     context_owned=False, no_cache=False)
        t0 = time.monotonic()
        second = _build(store, edited)
        rebuild_ms = int((time.monotonic() - t0) * 1000)
        t1 = time.monotonic()
        second_squashed = squash_image(store, second)
        squash_ms = int((time.monotonic() - t1) * 1000)
    finally:
        store.discard(work)
    return EditCost(
        edit=edit,
        layered=_variant(store, second, first, rebuild_ms),
        squashed=_variant(store, second_squashed, first_squashed, rebuild_ms + squash_ms),
    )


def _build(store: Store, options: BuildOptions) -> Image:
    result = build(store, options)
    if result.status != "succeeded" or result.image is None:
        message = result.error.message if result.error is not None else result.status
        raise EditError(f"the build to measure did not succeed: {message}")
    return result.image


def _variant(store: Store, image: Image, pushed_before: Image, rebuild_ms: int) -> Variant:
    there = set(pushed_before.layers)
    missing = [layer for layer in dict.fromkeys(image.layers) if layer not in there]
    return Variant(
        layers=len(image.layers),
        size=sum(store.layer(layer).size for layer in image.layers),
        tar_size=sum(store.layer_tar_size(layer) for layer in image.layers),
        rebuild_ms=rebuild_ms,
        push_bytes=sum(store.layer_tar_size(layer) for layer in missing),
        push_layers=len(missing),
        digest=image.digest,
        before=pushed_before.digest,
    )


def _edit(context: Path, dockerfile: str, edit_file: str | None) -> tuple[str, str]:
    """(the edit in words, the Dockerfile text to build) after making the edit in `context`."""
    if edit_file:
        target = _context_file(context, edit_file)
        with target.open("ab") as out:
            out.write(EDIT_MARK)
        return f"a line appended to {edit_file}", dockerfile
    return _edit_last_run(dockerfile)


def _context_file(context: Path, name: str) -> Path:
    """The regular file `name` inside the copied context, refusing anything that leaves it."""
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    if not parts or ".." in parts or len(name) > 4096 or "\0" in name:
        raise EditError(f"{name!r} is not a file in the build context")
    target = context
    for part in parts:
        target = target / part
        if target.is_symlink():
            raise EditError(f"{name!r} is a symlink; name the file it points to")
    if not target.is_file():
        raise EditError(f"no file {name!r} in the build context")
    return target


def _edit_last_run(text: str) -> tuple[str, str]:
    parsed = parse(text)
    runs = [ins for stage in parsed.stages for ins in stage.instructions
            if ins.keyword == "RUN" and not ins.json_form and not ins.heredocs]
    if not runs:
        raise EditError("the Dockerfile has no shell-form RUN step to edit; name a file to edit instead")
    last = max(runs, key=lambda ins: ins.end_line)
    lines = text.split("\n")
    lines[last.end_line - 1] = lines[last.end_line - 1].rstrip() + RUN_MARK
    return f"a comment added to the RUN on line {last.line}", "\n".join(lines)


def measure_rewrite(store: Store, options: BuildOptions, text: str) -> dict[str, Any]:
    """Build the Dockerfile as it is and as `text` rewrites it (same context, same cache scope)
    and compare the two images: what the rewrite saves, measured."""
    first = _build(store, options)
    second = _build(store, dataclasses.replace(options, dockerfile_text=text, context_owned=False,
                                               no_cache=False))

    def facts(image: Image) -> dict[str, Any]:
        return {"digest": image.digest, "layers": len(image.layers),
                "size": sum(store.layer(layer).size for layer in image.layers),
                "tar_size": sum(store.layer_tar_size(layer) for layer in image.layers)}

    before, after = facts(first), facts(second)
    return {"before": before, "after": after, "saved": before["size"] - after["size"],
            "saved_tar": before["tar_size"] - after["tar_size"], "measured": True}
