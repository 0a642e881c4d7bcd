"""The builds a check makes itself. Checks on cache behaviour cannot wait for a student to happen
to change the right file: the check builds the student's files as they are (from the cache, when
the student just built them), then a copy with one file changed, in the student's own cache, and
counts the steps that rebuild. The student's project is never touched.

Plain engine calls, no Django: the lesson pack's tests and the web's Celery task run the same code.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builds.engine.builder import BuildOptions, build
from builds.engine.sandbox import Limits
from builds.engine.store import Store

from . import checks as checks_
from .imagefiles import image_paths


@dataclass
class _Built:
    status: str
    steps: list[checks_.StepFacts] = field(default_factory=list)
    image: dict[str, Any] | None = None
    error: str = ""


def _build(
    store: Store, context: Path, dockerfile: str, *, scope: str, history: str, limits: Limits | None
) -> _Built:
    events: list[dict[str, Any]] = []
    options = BuildOptions(
        context=context,
        dockerfile=context / dockerfile,
        # Reasons compare with the check's own earlier build (the files as they are), wherever
        # the copy lies, and never with the student's builds, whose history the check leaves be.
        history_id=history,
        cache_scope=scope,
        limits=limits or Limits(),
        private_registries=False,
    )
    result = build(store, options, events.append)
    built = _Built(status=result.status)
    for event in events:
        if event.get("type") == "step.finished":
            reason = event.get("reason") or {}
            built.steps.append(
                checks_.StepFacts(
                    event["step"], event["instruction"], event.get("line"), event["status"],
                    reason.get("message", "") if event["status"] == "built" else "",
                )
            )
        elif event.get("type") == "build.finished":
            built.image = event.get("image")
            built.error = (event.get("error") or {}).get("message", "")
    return built


def run(
    store: Store,
    context: Path,
    checks: list[dict[str, Any]],
    *,
    scope: str,
    dockerfile: str = "Dockerfile",
    number: int = 1,
    history: str = "check",
    limits: Limits | None = None,
) -> checks_.BuildFacts:
    """Build `context` as it is, then once per file an edit_rebuilds or edit_push check changes,
    and return what the checks need to know (the first build's image, the edited builds' steps
    and what pushing each edited image would send)."""
    first = _build(store, context, dockerfile, scope=scope, history=history, limits=limits)
    digest = (first.image or {}).get("digest")
    facts = checks_.BuildFacts(
        number=number,
        status=first.status,
        steps=first.steps,
        image_size=(first.image or {}).get("size"),
        image_layers=(first.image or {}).get("layers"),
        image_paths=(lambda: image_paths(store, digest)) if digest else None,
    )
    if first.status == "succeeded":
        facts.edits, facts.pushes = {}, {}
        for name in checks_.edited_files(checks):
            edited = _edited(store, context, name, dockerfile, scope=scope, history=history, limits=limits)
            if edited is None or isinstance(edited, str):
                facts.edits[name] = facts.pushes[name] = edited
            else:
                facts.edits[name] = edited.steps
                facts.pushes[name] = push_bytes(store, digest, (edited.image or {}).get("digest"))
    return facts


def push_bytes(store: Store, pushed: str | None, edited: str | None) -> int:
    """Bytes of the layer tars of image `edited` that image `pushed` lacks: what a push of the
    edited image sends to a registry that holds the first one."""
    before = store.get_image(pushed) if pushed else None
    after = store.get_image(edited) if edited else None
    if after is None:
        return 0
    there = set(before.layers) if before is not None else set()
    return sum(store.layer_tar_size(layer) for layer in dict.fromkeys(after.layers) if layer not in there)


def _edited(
    store: Store, context: Path, name: str, dockerfile: str, *, scope: str, history: str,
    limits: Limits | None,
) -> _Built | str | None:
    root = context.resolve()
    # The name comes from the teacher's check: it must stay inside the context and be a file.
    if (root / name).is_symlink() or not (root / name).resolve().is_relative_to(root):
        return None
    if not (root / name).is_file():
        return None
    with tempfile.TemporaryDirectory(prefix="studio-check-") as tmp:
        copy = Path(tmp) / "context"
        shutil.copytree(root, copy, symlinks=True)
        with open(copy / name, "a", encoding="utf-8") as f:
            f.write(checks_.EDIT_MARK)
        edited = _build(store, copy, dockerfile, scope=scope, history=history, limits=limits)
    if edited.status != "succeeded":
        return edited.error or f"the build {edited.status}"
    return edited


def judge(
    store: Store, context: Path, checks: list[dict[str, Any]], *, scope: str, limits: Limits | None = None
) -> list[dict[str, Any]]:
    """Every check's result for the files in `context` (the lesson pack's tests use this)."""
    facts = run(store, context, checks, scope=scope, limits=limits)
    return checks_.merge(checks_.initial(checks), checks, facts)
