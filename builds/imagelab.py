"""The image lab's shared layers and squash measures, for the `/images/` page and its API.

Shared layers: the store's base images (every build starts from them, anyone signed in sees them)
and the person's OWN built images, never anyone else's, with what their layers share.

Squash measures: for one of a person's builds, a Celery task builds its revision in the person's
own cache scope, squashes it, makes one edit, rebuilds both ways and counts what a push would send
(builds.engine.editcost). Its state and result are a small JSON file in the store's
directory, one per build, written atomically; the page polls it through the API.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import current_app, shared_task
from django.conf import settings

from studio.models import User

from .engine.editcost import measure_edit_cost
from .engine.errors import EngineError
from .engine.image.usage import disk_usage
from .engine.planner import BuildOptions
from .engine.store import Store
from .models import Build

log = logging.getLogger(__name__)

MEASURE_SQUASH = "builds.measure_squash"
OWN_IMAGES = 8  # the person's latest distinct images drawn beside the base images
MAX_EDIT_FILE = 1024  # characters of a file name the measure will take
# A measure still queued or running after this long lost its worker: it may be started again.
MEASURE_STALE_S = 15 * 60


class MeasureBusy(Exception):
    """The person already has a measure under way: one at a time, as each is two real builds."""


def _store() -> Store:
    return Store(settings.STUDIO_DATA_DIR)


def own_images(*, user: User, limit: int = OWN_IMAGES) -> dict[str, str]:
    """The person's latest built images, each once: "<project> #<number>" -> image digest. Only
    builds of their own projects count: a class's or a stranger's project is not theirs."""
    found: dict[str, str] = {}
    seen: set[str] = set()
    builds = (
        Build.objects.filter(project__owner=user, status=Build.Status.SUCCEEDED)
        .exclude(image_digest="")
        .select_related("project")
        .order_by("-id")
    )
    for build in builds[: limit * 4]:
        if build.image_digest in seen:
            continue
        seen.add(build.image_digest)
        found[f"{build.project.name} #{build.number}"] = build.image_digest
        if len(found) == limit:
            break
    return found


def shared_layers(*, user: User) -> dict[str, Any]:
    """The store's base images and the person's own images, and the layers they share."""
    store = _store()
    bases = store.tags()
    own = own_images(user=user)
    named = {**bases, **{name: digest for name, digest in own.items() if name not in bases}}
    usage = disk_usage(store, named=named).to_json()
    own_digests = set(own.values())
    for image in usage["images"]:
        image["own"] = image["digest"] in own_digests
    return usage


# -- measures: a Celery task rebuilds a person's build in their own cache scope --------------


def _measure_path(name: str) -> Path:
    return Path(settings.STUDIO_DATA_DIR) / "measures" / f"{name}.json"


def _user_path(user_id: int) -> Path:
    """Which measure the person asked for last: their one measure under way, if it still is."""
    return Path(settings.STUDIO_DATA_DIR) / "measures" / f"user-{user_id}.json"


def _under_way(doc: dict[str, Any]) -> bool:
    fresh = time.time() - float(doc.get("at") or 0) < MEASURE_STALE_S
    return doc.get("status") in ("queued", "running") and fresh


def _write(name: str, doc: dict[str, Any]) -> None:
    _write_at(_measure_path(name), {**doc, "at": time.time()})


def _write_at(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as out:
        out.write(json.dumps(doc).encode())
    os.replace(temp, path)


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def measure_get(name: str) -> dict[str, Any]:
    """The measure `name` as far as it has got: {"status": "none"} before any was asked for."""
    doc = _read(_measure_path(name))
    if not doc:
        return {"status": "none"}
    doc.pop("at", None)
    return doc


def measure_start(*, name: str, user: User, doc: dict[str, Any], task: str,
                  args: tuple[Any, ...]) -> dict[str, Any]:
    """Queue the measure `name` (the Celery task `task` with `args`), one per person at a time:
    raises MeasureBusy while another of theirs is under way; asked again for the same measure
    while it runs, says how it goes."""
    if _under_way(_read(_measure_path(name))):
        return measure_get(name)
    last = _read(_user_path(user.pk)).get("measure")
    if isinstance(last, str) and last != name and _under_way(_read(_measure_path(last))):
        raise MeasureBusy(f"another measure ({last}) is still under way; one measure at a time")
    queued = {**doc, "status": "queued"}
    _write(name, queued)
    _write_at(_user_path(user.pk), {"measure": name})
    current_app.send_task(task, args=args)
    return queued


Measure = Callable[[Store, BuildOptions], dict[str, Any]]


def measure_run(*, name: str, build_id: int, user_id: int, doc: dict[str, Any], measure: Measure) -> str:
    """Run `measure` on `build_id`'s revision, written into a temporary context and built in the
    person's own cache scope, and store its result as the measure `name`. A failing build or a
    bad input is an expected outcome: stored as the measure's error, never retried."""
    from .services import revision_materialise
    from .tasks import sandbox_limits

    build = Build.objects.select_related("revision").filter(id=build_id).first()
    if build is None:
        return f"{name}: no such build"
    _write(name, {**doc, "status": "running"})
    try:
        with tempfile.TemporaryDirectory(prefix=f"studio-{name}-") as tmp:
            context = Path(tmp) / "context"
            context.mkdir()
            revision_materialise(revision=build.revision, into=context)
            dockerfile = context / build.revision.dockerfile_path
            options = BuildOptions(
                context=context,
                dockerfile=dockerfile,
                dockerfile_text=dockerfile.read_text(encoding="utf-8"),
                target=build.target or None,
                build_args=dict(build.build_args),
                history_id=f"measure:{build.project_id}",
                cache_scope=f"user:{user_id}",
                limits=sandbox_limits(),
                private_registries=False,
            )
            result = measure(_store(), options)
    except EngineError as exc:
        _write(name, {**doc, "status": "failed", "error": exc.describe()})
        return f"{name}: failed: {exc}"
    except Exception as exc:
        log.exception("measure %s crashed", name)
        _write(name, {**doc, "status": "failed",
                      "error": f"the studio could not measure this build: {type(exc).__name__}"})
        return f"{name}: crashed"
    _write(name, {**doc, "status": "done", **result})
    return f"{name}: done"


# -- squash measures ---------------------------------------------------------------------------


def squash_measure_get(*, build: Build) -> dict[str, Any]:
    """The build's squash measure: {"status": "none"} before any was asked for."""
    return measure_get(f"squash-{build.id}")


def squash_measure_start(*, build: Build, user: User, edit_file: str | None) -> dict[str, Any]:
    """Queue the measure of `build` (a succeeded build of the person's own project). Raises
    ValueError for a build or file it cannot measure, MeasureBusy while another of the person's
    measures is under way; asked again for the same build while it runs, says how it goes."""
    if build.status != Build.Status.SUCCEEDED:
        raise ValueError("only a build that succeeded can be squashed and measured")
    if edit_file is not None and (len(edit_file) > MAX_EDIT_FILE or "\0" in edit_file):
        raise ValueError("the file to edit must be a path in the build context")
    return measure_start(name=f"squash-{build.id}", user=user, doc={"edit_file": edit_file or None},
                         task=MEASURE_SQUASH, args=(build.id, user.id, edit_file or None))


@shared_task(name=MEASURE_SQUASH, acks_late=False)
def measure_squash(build_id: int, user_id: int, edit_file: str | None) -> str:
    """Build `build_id`'s revision in the person's own cache scope, squash it, edit it, rebuild
    both ways and store what each next edit cost."""
    def measure(store: Store, options: BuildOptions) -> dict[str, Any]:
        return measure_edit_cost(store, options, edit_file=edit_file).to_json()

    return measure_run(name=f"squash-{build_id}", build_id=build_id, user_id=user_id,
                       doc={"edit_file": edit_file}, measure=measure)
