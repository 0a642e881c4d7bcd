"""Reading builds, their steps and their events, for the API and the websockets."""

from __future__ import annotations

from typing import Any

from django.db.models import F, QuerySet
from django.http import Http404

from studio.projects.models import Project, RevisionFile
from studio.projects.selectors import AnyUser, project_can_view

from .counts import build_counts
from .models import Build, BuildEvent, Step
from .scopes import cache_scope_json

MAX_EVENTS_PAGE = 1000


def build_get(*, user: AnyUser, build_id: int, token: str | None = None) -> Build:
    """The build, when `user` may see its project; otherwise it does not exist, as far as they know."""
    build = (
        Build.objects.select_related("project", "project__owner", "revision", "requested_by")
        .filter(id=build_id)
        .first()
    )
    if build is None or not project_can_view(user=user, project=build.project, token=token):
        raise Http404(f"build {build_id} not found")
    return build


def build_can_view(*, user: AnyUser, build_id: int, token: str | None = None) -> bool:
    try:
        build_get(user=user, build_id=build_id, token=token)
    except Http404:
        return False
    return True


def build_dockerfile_text(*, build: Build) -> str | None:
    """The text of the Dockerfile `build` built, None when it is not UTF-8 text."""
    row = (
        RevisionFile.objects.filter(revision_id=build.revision_id, path=F("revision__dockerfile_path"))
        .select_related("blob")
        .first()
    )
    if row is None:
        return None
    try:
        return bytes(row.blob.data).decode("utf-8")
    except UnicodeDecodeError:
        return None


def build_list(*, project: Project, before: int | None = None, limit: int = 50) -> list[Build]:
    """The project's builds, newest first; `before` (a build id) pages back."""
    found = Build.objects.filter(project=project).select_related("project", "revision", "requested_by")
    if before is not None:
        found = found.filter(id__lt=before)
    return list(found.order_by("-id")[:limit])


def build_steps(*, build: Build) -> QuerySet[Step]:
    return Step.objects.filter(build=build).order_by("number")


def build_events(*, build_id: int, after: int = 0, limit: int = MAX_EVENTS_PAGE) -> list[dict[str, Any]]:
    """The build's stored events with seq > `after`, in order."""
    rows = (
        BuildEvent.objects.filter(build_id=build_id, seq__gt=after)
        .order_by("seq")
        .values_list("data", flat=True)
    )
    return list(rows[:limit])


def build_plan(*, build: Build) -> list[dict[str, Any]] | None:
    """The steps announced by build.started, before any ran (None until the build has started)."""
    data = (
        BuildEvent.objects.filter(build=build, seq=1, type="build.started")
        .values_list("data", flat=True)
        .first()
    )
    return data.get("steps") if data else None


def build_summary(build: Build) -> dict[str, Any]:
    """A build as the API and the project channel show it (without its steps)."""
    return {
        "id": build.id,
        "project": build.project_id,
        "number": build.number,
        "revision": build.revision.digest if build.revision_id else None,
        "requested_by": build.requested_by.username if build.requested_by else None,
        "target": build.target or None,
        "build_args": build.build_args,
        "no_cache": build.no_cache,
        "cache_scope": cache_scope_json(build.cache_scope),
        "status": build.status,
        "queued_at": _iso(build.queued_at),
        "started_at": _iso(build.started_at),
        "finished_at": _iso(build.finished_at),
        "cache": {"hits": build.cache_hits, "misses": build.cache_misses},
        "counts": build_counts(build),
        "hit_ratio": hit_ratio(build),
        "image": (
            {"digest": build.image_digest, "size": build.image_size, "layers": build.image_layers}
            if build.image_digest
            else None
        ),
        "duration_ms": build.duration_ms,
        "error": build.error,
    }


def hit_ratio(build: Build) -> float | None:
    """The share of its filesystem steps the build served from the cache; None before it has any."""
    total = build.cache_hits + build.cache_misses
    return round(build.cache_hits / total, 3) if total else None


def step_json(step: Step) -> dict[str, Any]:
    """The step as its step.finished event told it (without `type` and `seq`), as stored: a copy,
    so a caller adding to it changes nothing stored."""
    return dict(step.event)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def build_changes_since_previous(*, build: Build) -> dict[str, Any] | None:
    """What differs between this build and the project's build before it (the one its people last
    saw): the files whose content or mode changed, were added or removed (the Dockerfile among
    them), and the build arguments whose value changed. None when nothing did, or for a first build.
    Read from the two revisions, never from a cache, so it is true whatever scope the build uses."""
    previous = (
        Build.objects.filter(project_id=build.project_id, number__lt=build.number)
        .select_related("revision").order_by("-number").first()
    )
    if previous is None:
        return None

    def files(build: Build) -> dict[str, tuple[str, int]]:
        return {f.path: (f.blob_id, f.mode) for f in build.revision.files.all()}

    before, after = files(previous), files(build)
    changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    old_args, new_args = previous.build_args or {}, build.build_args or {}
    args = sorted(name for name in old_args.keys() | new_args.keys()
                  if old_args.get(name) != new_args.get(name))
    if not changed and not args:
        return None
    return {"build": previous.number, "files": changed, "build_args": args}
