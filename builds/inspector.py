"""One step of a build looked at closely: the files its layer added, changed and deleted, what it
printed, and the inputs its cache key was made from."""

from __future__ import annotations

import stat
from typing import Any

from django.http import Http404

from builds.engine.cachekey import base_key
from builds.engine.rootfs import RootFS
from builds.engine.store import Store
from builds.stores import image_here, layer_here, web_store

from .models import Build, BuildEvent, Step
from .selectors import step_json

MAX_FILES = 5000
MAX_LOG_EVENTS = 2000
MAX_LOG_CHARS = 512 * 1024
KINDS = {"file", "dir", "symlink"}


def step_detail(*, build: Build, number: int) -> dict[str, Any]:
    """The step as `GET /api/builds/<id>/` shows it, plus `files`, `log` and `cache_inputs`.
    Raises Http404 for a step the build does not have (yet)."""
    step = Step.objects.filter(build=build, number=number).first()
    if step is None:
        raise Http404(f"build {build.id} has no step {number}")
    store = web_store()
    files, truncated = _files(store, step)
    log, log_truncated = _log(build, number)
    return {
        **step_json(step),
        "files": files,
        "files_truncated": truncated,
        "log": log,
        "log_truncated": log_truncated,
        "cache_inputs": _cache_inputs(store, step.cache_key, step.build.cache_scope),
    }


def _files(store: Store, step: Step) -> tuple[list[dict[str, Any]], bool]:
    """The layer's changes, as recorded when it was committed. A layer is named by the first 16 hex
    digits of its diff_id; one that is no longer in the store lists nothing."""
    digest = (step.layer or {}).get("digest") or ""
    if not digest.startswith("sha256:"):
        return [], False
    if not layer_here(store, digest[7:23]):  # built on another host, and the cache lacks it
        return [], False
    try:
        layer = store.layer(digest[7:23], changes=True)
    except (OSError, ValueError):
        return [], False
    shown = layer.changes[:MAX_FILES]
    below = _below(store, step) if any(c.change == "deleted" for c in shown) else None
    rows = [
        {
            "path": change.path,
            "change": change.change,
            "kind": _kind_below(below, change.path) if change.change == "deleted" else _kind(change.kind),
            "size": change.size,
        }
        for change in shown
    ]
    return rows, len(layer.changes) > MAX_FILES


def _kind(kind: str) -> str:
    return kind if kind in KINDS else "other"


def _below(store: Store, step: Step) -> RootFS | None:
    """The filesystem the step ran on: its parent's layers, found by following the cache records
    from its key down to its stage's base (an image a FROM of this build named, or scratch).
    None when the chain cannot be followed to the end."""
    scope = step.build.cache_scope
    record = store.cache_get(step.cache_key, scope=scope) if step.cache_key else None
    key = record.get("parent") if record else None
    layers: list[str] = []
    while key is not None and (parent := store.cache_get(key, scope=scope)) is not None:
        if parent.get("layer"):
            layers.append(parent["layer"])
        key = parent.get("parent")
    if key is None:
        return None
    if key != base_key(None):
        froms = Step.objects.filter(build_id=step.build_id, keyword="FROM").values_list("event", flat=True)
        image = next(
            (
                image_here(store, event["base"]["digest"])
                for event in froms
                if (event.get("base") or {}).get("digest", "").startswith("sha256:")
                and base_key(event["base"]["digest"]) == key
            ),
            None,
        )
        if image is None:
            return None
        layers.extend(reversed(image.layers))
    return RootFS([store.layer_path(layer) for layer in reversed(layers)])


def _kind_below(below: RootFS | None, path: str) -> str:
    """What a deleted entry was, in the layers below the one that deleted it."""
    found = below.resolve(path, follow=False) if below is not None else None
    if found is None:
        return "other"
    mode = found.st.st_mode
    return (
        "dir"
        if stat.S_ISDIR(mode)
        else "symlink"
        if stat.S_ISLNK(mode)
        else "file"
        if stat.S_ISREG(mode)
        else "other"
    )


def _log(build: Build, number: int) -> tuple[list[dict[str, str]], bool]:
    """What the step printed, from its stored step.log events, up to MAX_LOG_EVENTS and MAX_LOG_CHARS."""
    events = (
        BuildEvent.objects.filter(build=build, type="step.log", data__step=number)
        .order_by("seq")
        .values_list("data", flat=True)
    )
    out: list[dict[str, str]] = []
    chars = 0
    for data in events[: MAX_LOG_EVENTS + 1]:
        text = str(data.get("text", ""))
        if len(out) == MAX_LOG_EVENTS or chars + len(text) > MAX_LOG_CHARS:
            return out, True
        chars += len(text)
        out.append({"stream": "stderr" if data.get("stream") == "stderr" else "stdout", "text": text})
    return out, False


def _cache_inputs(store: Store, key: str | None, scope: str) -> dict[str, Any] | None:
    """The document the step's key is the hash of: its parent's key and its inputs, as the
    build's own cache scope holds it."""
    if not key:
        return None
    record = store.cache_get(key, scope=scope)
    if record is None or not isinstance(record.get("inputs"), dict):
        return None
    return {**record["inputs"], "parent": record.get("parent")}
