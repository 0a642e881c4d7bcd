"""The JSON API for builds, their steps and events, predictions, lint, the store's images, and
comparing two builds: the `builds` router of studio/api_root.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.http import Http404, HttpRequest
from ninja import Field, Query, Status
from pydantic import StrictBool, StrictStr, WithJsonSchema

from studio.api import EVENT_MARK, MAX_ID, ApiError, Id, In, Out, StudioRouter, Timestamp, Token, errors
from studio.models import User
from studio.projects.files import check_file_size
from studio.projects.selectors import project_get

from . import inspector, lint, planning, selectors, services, throttle
from .compare.report import build_comparison, row_detail
from .compare_views import both_builds
from .engine.image.usage import disk_usage
from .engine.store import Store
from .engine.verdicts import VERDICTS
from .models import Build
from .stores import web_store
from .takehome.api import router as takehome

router = StudioRouter(tags=["builds"])
router.add_router("", takehome)

Loose = dict[str, Any]
# One of the engine's events (builds.engine.events.json_schema(), in the components as `Event`).
Event = Annotated[Loose, WithJsonSchema(EVENT_MARK)]
BuildStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
BuildArgs = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "additionalProperties": {"type": "string"}}),
]


class BuildOptions(In):
    """Each option may be left out or null for its default."""

    target: StrictStr | None = Field(None, description="the stage to build (default: the last)")
    build_args: BuildArgs | None = Field(None, description="names to values, as --build-arg")
    no_cache: StrictBool | None = Field(None, description="build every step anew (default: false)")

    def options(self) -> dict[str, Any]:
        return {
            "target": self.target or "",
            "build_args": self.build_args or {},
            "no_cache": bool(self.no_cache),
        }


class PlanRequest(BuildOptions):
    dockerfile: StrictStr | None = Field(
        None, description="the Dockerfile's text as it is being typed (default: the saved one)"
    )


class LintRequest(In):
    dockerfile: StrictStr | None = Field(None, description="the text to lint (default: the saved one)")


class Reason(Out):
    """Why a step was not (or would not be) served from the cache; `code` and `message`, with the
    details that code has (the files that changed, the build arg...)."""

    code: str
    message: str


class Failure(Out):
    """Where a build failed, or a prediction stops: what, and where where known."""

    message: str
    line: int | None = None
    step: int | None = None
    file: str | None = None


class LayerFile(Out):
    path: str = Field(description="inside the image, no leading /")
    change: Literal["added", "modified", "deleted"]
    kind: Literal["file", "dir", "symlink", "other"] = Field(
        description="for a deleted entry, what it was in the layers below (`other` when that cannot be told)"
    )
    size: int = Field(description="bytes")


class LogLine(Out):
    stream: Literal["stdout", "stderr"]
    text: str


class CacheScope(Out):
    kind: Literal["user", "class", "store"]
    name: str
    label: str


class Counts(Out):
    """How many steps ended with each verdict (a FROM is a base, not counted)."""

    built: int
    cached: int
    metadata: int
    skipped: int
    cancelled: int
    failed: int


assert set(Counts.model_fields) == set(VERDICTS), "Counts names every verdict"


class CacheCounts(Out):
    hits: int
    misses: int


class ImageOut(Out):
    digest: str
    size: int
    layers: int


class BuildOut(Out):
    id: int
    project: int
    number: int = Field(description="1, 2, 3... within the project")
    revision: str | None = Field(description="sha256 of the files the build was made from")
    requested_by: str | None
    target: str | None
    build_args: dict[str, str]
    no_cache: bool
    cache_scope: CacheScope = Field(
        description="whose cache the build read and filled: a person's own (user), a class's (class), "
        "or the store's own (store: builds before scopes)"
    )
    status: BuildStatus
    queued_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    cache: CacheCounts
    counts: Counts
    hit_ratio: float | None = Field(description="hits / (hits + misses), to 3 places; null before any")
    image: ImageOut | None
    duration_ms: int | None
    error: Failure | None = Field(description="where it failed")


class StepOut(Out):
    """A step.finished event's fields (without type and seq)."""

    step: int
    stage: str
    instruction: str
    line: int
    keyword: str
    status: str = Field(description=f"one of {', '.join(VERDICTS)}")
    cached: bool
    cache_key: str | None
    reason: Reason | None = Field(description="for a step not cached")
    layer: Loose | None
    duration_ms: int | None


class BuildDetailOut(BuildOut):
    plan: list[Loose] | None = Field(description="build.started's steps: every step up front")
    steps: list[StepOut]


class BuildListOut(Out):
    builds: list[BuildOut]


class EventsOut(Out):
    build: int
    status: BuildStatus
    events: list[Event]
    more: bool = Field(description="more may follow: the page was full, or the build is still going")


class PlannedStep(Out):
    """What the next build would do with one step, predicted without running anything."""

    step: int
    stage: str
    instruction: str
    line: int
    end_line: int = Field(description="the last line of a continued instruction")
    keyword: str
    prediction: Literal["cached", "built", "metadata", "skipped"]
    reason: Reason | None
    certain: bool = Field(description="false where the verdict depends on files a step still to run makes")
    cache_key: str | None = Field(None, description="the step's key, where it can be known")
    metadata: bool | None = Field(None, description="true for a step that changes no files (ENV, CMD...)")
    base: Loose | None = Field(None, description="for a FROM: the base's ref and digest")


class PlanOut(Out):
    steps: list[PlannedStep]
    error: Failure | None = Field(
        description="where the build would stop before running anything; `steps` then holds those before it"
    )


class Diagnostic(Out):
    line: int
    end_line: int | None = Field(None, description="the last line of the instruction at fault")
    column: int | None = None
    severity: Literal["error", "warning", "info"]
    code: str = Field(description="hadolint's rule (DL3006, SC2086...) or the studio's own (studio/...)")
    message: str
    source: Literal["hadolint", "studio"]
    url: str | None = Field(None, description="the rule's documentation")


class LintOut(Out):
    diagnostics: list[Diagnostic]


class StepDetailOut(StepOut):
    files: list[LayerFile] = Field(description="what the step's layer added, modified and deleted")
    files_truncated: bool
    log: list[LogLine] = Field(description="what the step printed, as its step.log events")
    log_truncated: bool
    cache_inputs: Loose | None = Field(description="what the step's cache key is the hash of")


class DiskUsageOut(Out):
    images: list[Loose] = Field(description="each image once: names, digest, size, unique, layers")
    layers: list[Loose] = Field(description="each layer once, most shared first")
    images_total: int = Field(description="bytes the images would take unshared")
    stored: int = Field(description="bytes their layers take, each once")
    saved: int = Field(description="images_total - stored")


class CompareRow(Out):
    index: int
    kind: Literal["same", "changed", "moved", "removed", "added"]
    a: Loose | None = Field(description="build a's step on this row; null: a gap")
    b: Loose | None
    same_key: bool | None
    parted: bool = Field(description="the builds went different ways here")
    first_divergence: bool
    duration_delta_ms: int | None = Field(description="b minus a")
    size_delta: int | None = Field(description="b minus a, in bytes")


class ComparisonOut(Out):
    a: BuildOut
    b: BuildOut
    rows: list[CompareRow]
    dockerfiles: Loose = Field(description="`a`, `b` (texts) and `diff` (lines: op, a, b, text)")
    summary: Loose = Field(
        description="first_divergence, parting (row, code, message), rows of each kind, "
        "duration_delta_ms, image_size_delta, shared_layers"
    )


class CompareRowDetailOut(Out):
    a: Loose | None
    b: Loose | None
    instruction: list[list[str]] = Field(description="[op, text] pieces: equal, delete, insert")
    context: Loose = Field(description="for COPY/ADD: the context files each side read")
    layer: Loose = Field(description="the two layers' files")


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # the API's session auth let only signed-in users through
    return request.user


def build_json(build: Build, *, steps: bool = False) -> dict[str, object]:
    out: dict[str, object] = selectors.build_summary(build)
    if steps:
        out["plan"] = selectors.build_plan(build=build)
        out["steps"] = [selectors.step_json(step) for step in selectors.build_steps(build=build)]
    return out


@router.get("/projects/{int:project_id}/builds/", response={200: BuildListOut, **errors()})
def build_list(
    request: HttpRequest,
    project_id: Id,
    token: Token = None,
    before: int = Query(0, ge=0, le=MAX_ID, description="only builds older than this build id"),
    limit: int = Query(50, ge=1, le=200),
) -> Any:
    """The project's builds, newest first."""
    services.builds_reap_if_due()
    project = project_get(user=_user(request), project_id=project_id, token=token)
    found = selectors.build_list(project=project, before=before or None, limit=limit)
    return {"builds": [build_json(b) for b in found]}


@router.post("/projects/{int:project_id}/builds/", response={202: BuildOut, **errors(429)})
def build_create(request: HttpRequest, project_id: Id, payload: BuildOptions) -> Any:
    """Queue a build of the project's saved files."""
    user = _user(request)
    project = project_get(user=user, project_id=project_id, write=True)
    build = services.build_create(project=project, user=user, **payload.options())
    return Status(202, build_json(build))


@router.post("/projects/{int:project_id}/plan/", response={200: PlanOut, **errors(429)})
def project_plan(request: HttpRequest, project_id: Id, payload: PlanRequest) -> Any:
    """What the next build would do, step by step, without running anything."""
    user = _user(request)
    project = project_get(user=user, project_id=project_id, write=True)
    with throttle.PREDICTIONS.turn(user.pk):
        return planning.project_predict(
            project=project, user=user, dockerfile=payload.dockerfile, **payload.options()
        )


@router.post("/projects/{int:project_id}/lint/", response={200: LintOut, **errors(413, 429)})
def project_lint(request: HttpRequest, project_id: Id, payload: LintRequest, token: Token = None) -> Any:
    """hadolint's and the studio's hints for a Dockerfile."""
    user = _user(request)
    project = project_get(user=user, project_id=project_id, token=token)
    text = payload.dockerfile
    if text is None:
        text = planning.saved_dockerfile(project=project)
    check_file_size(project.dockerfile_path, len(text.encode("utf-8", "surrogatepass")))
    with throttle.LINTS.turn(user.pk):
        return {"diagnostics": lint.dockerfile_lint(text=text)}


@router.get("/builds/{int:build_id}/", response={200: BuildDetailOut, **errors()})
def build_get(request: HttpRequest, build_id: Id, token: Token = None) -> Any:
    """A build with its plan and its finished steps."""
    services.builds_reap_if_due()
    return build_json(selectors.build_get(user=_user(request), build_id=build_id, token=token), steps=True)


@router.get("/builds/{int:build_id}/steps/{int:number}/", response={200: StepDetailOut, **errors()})
def build_step(request: HttpRequest, build_id: Id, number: Id, token: Token = None) -> Any:
    """One step with its layer's files, its log and its cache key's inputs."""
    found = selectors.build_get(user=_user(request), build_id=build_id, token=token)
    return inspector.step_detail(build=found, number=number)


@router.post("/builds/{int:build_id}/cancel/", response={202: BuildOut, **errors(409)})
def build_cancel(request: HttpRequest, build_id: Id) -> Any:
    """Owner: cancel a queued or running build."""
    found = selectors.build_get(user=_user(request), build_id=build_id)
    project_get(user=request.user, project_id=found.project_id, write=True)
    return Status(202, build_json(services.build_cancel(build=found)))


@router.get("/builds/{int:build_id}/events/", response={200: EventsOut, **errors()})
def build_events(
    request: HttpRequest,
    build_id: Id,
    token: Token = None,
    after: int = Query(0, ge=0, le=MAX_ID, description="only events with a greater seq"),
    limit: int = Query(selectors.MAX_EVENTS_PAGE, ge=1, le=selectors.MAX_EVENTS_PAGE),
) -> Any:
    """The build's stored events in `seq` order, a page at a time."""
    services.builds_reap_if_due()
    found = selectors.build_get(user=_user(request), build_id=build_id, token=token)
    events = selectors.build_events(build_id=found.id, after=after, limit=limit)
    return {
        "build": found.id,
        "status": found.status,
        "events": events,
        # More may follow: the page was full, or the build is still going.
        "more": len(events) == limit or not found.finished,
    }


@router.get("/images/df/", response={200: DiskUsageOut, **errors()})
def images_df(request: HttpRequest) -> Any:
    """The store's base images and how their layers are shared. The store is one for the whole
    studio: its tagged images are the base images every build starts from, so any signed-in person
    may see them; nobody's projects or builds show here."""
    return disk_usage(_store()).to_json()


def _store() -> Store:
    return web_store()


CompareToken = Annotated[str | None, Query(description="a share link's token, tried for both builds")]
SideToken = Annotated[str | None, Query(description="a share link's token for that build's project")]


@router.get("/compare/{int:a_id}/{int:b_id}/", response={200: ComparisonOut, **errors()})
def compare(
    request: HttpRequest,
    a_id: Id,
    b_id: Id,
    token: CompareToken = None,
    a_token: SideToken = None,
    b_token: SideToken = None,
) -> Any:
    """Two builds side by side, step by step. Whoever may not see both is told neither exists."""
    a, b = both_builds(request.user, a_id, b_id, token=token, a_token=a_token, b_token=b_token)
    return build_comparison(a, b, store=_store())


def _step_param(raw: str, name: str) -> int | None:
    if raw in ("", "none"):
        return None
    if not raw.isdigit():
        raise ApiError(f"{name} must be a step number of build {name}, or empty for a gap", field=name)
    return int(raw)


@router.get("/compare/{int:a_id}/{int:b_id}/row/", response={200: CompareRowDetailOut, **errors()})
def compare_row(
    request: HttpRequest,
    a_id: Id,
    b_id: Id,
    a: str = Query("", description="build a's step number (empty or `none`: a gap)"),
    b: str = Query("", description="build b's step number"),
    token: CompareToken = None,
    a_token: SideToken = None,
    b_token: SideToken = None,
) -> Any:
    """One row of the comparison in detail: the instruction's diff, the context files and the layers."""
    first, second = both_builds(request.user, a_id, b_id, token=token, a_token=a_token, b_token=b_token)
    a_step, b_step = _step_param(a, "a"), _step_param(b, "b")
    if a_step is None and b_step is None:
        raise ApiError("name a step of either build: ?a=<step>&b=<step>", field="a")
    try:
        return row_detail(first, second, a_step=a_step, b_step=b_step, store=_store())
    except LookupError as missing:
        raise Http404(str(missing)) from None
