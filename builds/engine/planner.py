"""What a build will do, known before anything runs.

`BuildPlan` is the part of a build that needs no sandbox: the parsed Dockerfile, the stages the
target needs, every step numbered, each stage's base, each step's cache key and its lookup in the
cache index, and the reason a step misses. `walk.PlanWalk` walks it with a runner plugged in: the
builder's executes the misses, the predictor's (predict.py) only decides verdicts. Both use this
one code, so a prediction gives the verdict and the reason the build then gives.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import reasons, registry
from .cachekey import base_key, step_key
from .context import BuildContext, HashCache, read_inside, too_large, watched
from .dockerfile import Dockerfile, Instruction, Stage, expand, expansion_budget, parse, parse_arg
from .dockerfile.words import INSTRUCTION_SHARES
from .errors import DockerfileError, EngineError, ImageNotFound, InputError
from .instructions import BuildEnv, Planned, StageState, Step
from .instructions.metadata import PLATFORM_ARGS
from .instructions.mounts import from_names as mount_sources
from .printable import printable
from .sandbox import Limits
from .store import DEFAULT_SCOPE, Image, ScopedCache, Store

# Where a stage's base image comes from: the store alone (a prediction), or the store and then
# its registry (a build). Raises ImageNotFound.
FindBase = Callable[[str, Stage, "PlannedStep"], Image]


@dataclass
class BuildOptions:
    context: Path
    dockerfile: Path | None = None  # default: CONTEXT/Dockerfile
    dockerfile_text: str | None = None  # the Dockerfile's text, instead of reading `dockerfile`
    tag: str | None = None
    target: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    history_id: str | None = None  # whose earlier builds to compare with (default: the Dockerfile's path)
    # Whose cache index (and cache mounts) this build reads and writes: "" the store's own (the
    # command line's), "user:7" a person's, "class:3" a class's shared one. Layers are shared.
    cache_scope: str = DEFAULT_SCOPE
    limits: Limits = field(default_factory=Limits)
    cancel: threading.Event | None = None
    # The context directory was written for this build alone and nothing changes it until it is
    # deleted: its files can become the store's blobs without a copy.
    context_owned: bool = False
    # Whether FROM may pull from registries on loopback, link-local and private addresses: yes
    # on the command line, no for web builds (but for those the operator lists).
    private_registries: bool = True


@dataclass
class PlannedStep:
    number: int
    stage: Stage
    instruction: Instruction | None  # None for the stage's FROM

    @property
    def text(self) -> str:
        return self.instruction.original if self.instruction else self.stage.original

    @property
    def line(self) -> int:
        return self.instruction.line if self.instruction else self.stage.line

    @property
    def end_line(self) -> int:
        ins = self.instruction or self.stage.from_instruction
        return ins.end_line if ins is not None else self.line

    def describe(self) -> dict[str, Any]:
        return {"step": self.number, "stage": self.stage.label, "instruction": self.text, "line": self.line}


class BuildPlan:
    """One build's plan and the cache lookups along it; the builder and the predictor walk it."""

    def __init__(self, store: Store, options: BuildOptions, hash_cache: HashCache) -> None:
        self.store = store
        self.options = options
        dockerfile_path = options.dockerfile or options.context / "Dockerfile"
        self.dockerfile_name = dockerfile_path.name if options.dockerfile_text is None else "Dockerfile"
        self.df = self._parse(dockerfile_path)
        self.meta_args = self._meta_args()
        self.target = self._target_stage()
        self.needed = self._needed_stages()
        self.steps = self._steps()
        context_dir = options.context
        if not context_dir.is_dir():
            raise InputError(f"build context {str(context_dir)!r} is not a directory")
        self.hash_cache = hash_cache
        # `<Dockerfile>.dockerignore` beside the Dockerfile wins over the context's .dockerignore.
        # The warm engine may have read the context ahead (context/watched.py).
        limit = options.limits.dockerfile_bytes
        self.context = watched.take(context_dir, dockerfile_path, limit, self.hash_cache) or BuildContext(
            context_dir, hash_cache=self.hash_cache, dockerfile=dockerfile_path, ignore_limit=limit)
        # A path's bytes that are not UTF-8 are kept as text (`\xff`): the id goes into JSON and
        # into a hash, neither of which takes Python's lone surrogates.
        self.history_id = options.history_id or printable(str(dockerfile_path.resolve()))
        self.scope = check_scope(options.cache_scope)
        self.cache: ScopedCache = store.cache_index.scope(self.scope)
        self.history = self._load_history()
        self.env = BuildEnv(
            store=store,
            context=self.context,
            dockerfile_name=self.dockerfile_name,
            escape=self.df.escape,
            build_args=options.build_args,
            meta_args=self.meta_args,
            stage_states={},
            limits=options.limits,
            cancel=options.cancel,
            context_owned=options.context_owned,
            cache_scope=self.scope,
        )
        self.built_keys: dict[str, int] = {}  # keys built in this build -> the step that built them
        self.used_keys: list[str] = []  # the keys of the steps this build built or was served
        self.bases: dict[str, dict[str, str]] = {}  # stage label -> the base it used, for history

    # -- planning ------------------------------------------------------------------------------
    def _parse(self, path: Path) -> Dockerfile:
        """The Dockerfile, refused before it is parsed when it is too large, and before anything
        is planned when it has too many instructions."""
        limits = self.options.limits
        text = self.options.dockerfile_text
        if text is None:
            text = read_dockerfile(self.options.context, path, self.dockerfile_name, limits.dockerfile_bytes)
        elif len(text) > limits.dockerfile_bytes or len(text.encode("utf-8", "surrogatepass")) > \
                limits.dockerfile_bytes:
            raise too_large(self.dockerfile_name, limits.dockerfile_bytes)
        df = parse(text, filename=self.dockerfile_name)
        check_step_count(df, limits.steps)
        return df

    def _meta_args(self) -> dict[str, str | None]:
        # The automatic platform ARGs are global ARGs BuildKit declares itself: a stage that
        # declares one (`ARG TARGETPLATFORM`) gets its value, in its RUNs' environment too.
        values: dict[str, str | None] = dict(PLATFORM_ARGS)
        for ins in self.df.meta_args:
            env = {k: v for k, v in values.items() if v is not None}
            try:
                with expansion_budget(self.options.limits.word_bytes):
                    for name, default in parse_arg(ins, env, escape=self.df.escape):
                        fallback = default if default is not None else PLATFORM_ARGS.get(name)
                        values[name] = self.options.build_args.get(name, fallback)
                _check_total(values, self.options.limits.word_bytes)
            except EngineError as exc:
                exc.file, exc.line = exc.file or self.dockerfile_name, exc.line or ins.line
                raise
        return values

    def _meta_env(self) -> dict[str, str]:
        env = {k: v for k, v in PLATFORM_ARGS.items()}
        env.update({k: v for k, v in self.meta_args.items() if v is not None})
        return env

    def _target_stage(self) -> Stage:
        if self.options.target is None:
            return self.df.stages[-1]
        stage = self.df.stage(self.options.target)
        if stage is None:
            names = ", ".join(s.label for s in self.df.stages)
            raise InputError(
                f"target stage {self.options.target!r} not found (stages: {names})", file=self.dockerfile_name
            )
        return stage

    def _stage_ref(self, ref: str, before: int) -> Stage | None:
        stage = self.df.stage(ref)
        return stage if stage is not None and stage.index < before else None

    def _dependencies(self, stage: Stage) -> Iterator[Stage]:
        env = self._meta_env()
        base = self._stage_ref(expand(stage.base, env, escape=self.df.escape), stage.index)
        if base is not None:
            yield base
        for ins in stage.instructions:
            for source in read_sources(ins):
                dep = self._stage_ref(expand(source, env, escape=self.df.escape), stage.index)
                if dep is not None:
                    yield dep

    def _needed_stages(self) -> set[int]:
        needed: set[int] = set()
        todo = [self.target]
        while todo:
            stage = todo.pop()
            if stage.index not in needed:
                needed.add(stage.index)
                todo.extend(self._dependencies(stage))
        return needed

    def _steps(self) -> list[PlannedStep]:
        steps: list[PlannedStep] = []
        for stage in self.df.stages:
            steps.append(PlannedStep(len(steps) + 1, stage, None))
            for ins in stage.instructions:
                steps.append(PlannedStep(len(steps) + 1, stage, ins))
        return steps

    def not_needed(self, planned: PlannedStep) -> reasons.Reason:
        return reasons.not_needed(target=self.target.label, stage=planned.stage.label)

    # -- walking it ----------------------------------------------------------------------------
    def base_state(
        self, stage: Stage, planned: PlannedStep, find_base: FindBase
    ) -> tuple[StageState, dict[str, str]]:
        """The state a stage starts from (an earlier stage's, an image's found by `find_base`,
        or scratch), and which base that is."""
        ref = expand(stage.base, self._meta_env(), escape=self.df.escape)
        base_stage = self._stage_ref(ref, stage.index)
        if base_stage is not None:
            state = self.env.stage_states[str(base_stage.index)].clone()
            state.label, state.args = stage.label, {}
            base = {"ref": f"stage {base_stage.label}", "digest": state.key}
        elif ref == "scratch":
            state = StageState(label=stage.label, key=base_key(None), layers=[], env={}, args={})
            base = {"ref": "scratch", "digest": ""}
        else:
            image = find_base(ref, stage, planned)
            state = state_from_image(stage.label, image)
            base = {"ref": ref, "digest": image.digest}
        state.last_step = planned.number
        self.bases[stage.label] = base
        return state, base

    def local_base_image(self, ref: str, stage: Stage, planned: PlannedStep) -> Image:  # a FindBase
        """The stage's base image, from the store only (a build pulls a missing one; a
        prediction touches no network)."""
        image = registry.local_image(self.store, ref)
        if image is None:
            raise ImageNotFound(
                f"base image {ref!r} is not in the store yet: a build pulls it from its registry, "
                "and only then can the steps on it be foretold",
                file=self.dockerfile_name,
                line=stage.line,
            ).with_details(step=planned.number)
        return image

    def finish_stage(self, stage: Stage, state: StageState) -> None:
        self.env.stage_states[stage.label.lower()] = state
        self.env.stage_states[str(stage.index)] = state

    def lookup(self, step: Step, state: StageState) -> tuple[Planned, str, dict[str, Any] | None]:
        """The step's cache inputs, its key, and its record in the cache index when a build may
        use it (not with --no-cache, not when its layer has gone)."""
        plan = step.plan(state)
        key = step_key(state.key, plan.inputs)
        record = None if self.options.no_cache else self.cache.lookup(key)
        if record is not None and not self._layer_present(record):
            record = None
        return plan, key, record

    def _layer_present(self, record: dict[str, Any]) -> bool:
        layer = record.get("layer")
        return layer is None or self.store.layer_path(layer).is_dir()

    def advance(
        self, state: StageState, planned: PlannedStep, key: str, record: dict[str, Any], *, rebuilt: bool
    ) -> None:
        if rebuilt and state.rebuilt_from is None:
            state.rebuilt_from = planned.number
        state.key = key
        state.last_step = planned.number
        if record.get("layer"):
            state.layers = [*state.layers, record["layer"]]
        state.history.append(
            {
                "created_by": planned.text,
                "comment": "dockerfile-studio",
                **({} if record.get("layer") else {"empty_layer": True}),
            }
        )

    # -- reasons -------------------------------------------------------------------------------
    def cascade_reason(self, state: StageState) -> reasons.Reason | None:
        """The reason every step of a chain shares: --no-cache, or a rebuilt step below it."""
        if self.options.no_cache:
            return reasons.no_cache()
        parent = self._planned(state.last_step)
        if state.rebuilt_from is not None and parent is not None:
            # The parent is a rebuilt step, or the FROM of a stage built on a rebuilt stage.
            return reasons.parent_rebuilt(
                parent_step=parent.number,
                parent_line=parent.line,
                parent_text=parent.text,
                cause_step=state.rebuilt_from,
            )
        return None

    def reason(self, planned: PlannedStep, step: Step, plan: Planned, state: StageState) -> reasons.Reason:
        cascade = self.cascade_reason(state)
        if cascade is not None:
            return cascade
        parent = self._planned(state.last_step)
        miss = reasons.Miss(
            step=planned.number,
            keyword=step.keyword,
            instruction=planned.text,
            inputs=plan.inputs,
            notes=plan.notes,
            manifest=plan.manifest,
            siblings=self._siblings(state.key),
            load_manifest=self._load_manifest,
            later=[p.text for p in self.steps[planned.number:] if p.stage is planned.stage],
            children=self._siblings,
        )
        found = reasons.compare(miss)
        if found is not None:
            return found
        if parent is None or parent.instruction is None:
            old = self._previous_base(planned.stage.label)
            new = self.bases.get(planned.stage.label)
            if old is not None and new is not None and old.get("digest") != new.get("digest"):
                return reasons.base_changed(old=old["ref"], new=new["ref"])
            return reasons.first_build(after=None)
        return reasons.first_build(after=f"line {parent.line} ({parent.text})")

    def _siblings(self, parent: str) -> list[dict[str, Any]]:
        """The records of this scope's earlier builds of this Dockerfile (or project) made on
        `parent`, oldest first: what a miss is compared with. Those are the steps its own builds
        ran and the records its last build was served from (in a shared scope, a classmate's).
        Another Dockerfile's step on the same base is no earlier build of this one, and neither
        is a step this build made on the same parent (another stage's first step on the same
        base image): comparing with either would tell of an edit nobody made. Records from
        before histories were kept count as this history's."""
        seen = set(self.history.get("keys") or ())
        return [
            r
            for r in self.cache.children(parent)
            if r.get("key") not in self.built_keys
            and (r.get("history", self.history_id) == self.history_id or r.get("key") in seen)
        ]

    def _load_manifest(self, digest: str) -> dict[str, str]:
        return self.store.get_json(digest)

    def _planned(self, number: int | None) -> PlannedStep | None:
        return self.steps[number - 1] if number is not None else None

    # -- history of earlier builds of the same Dockerfile -----------------------------------------
    def _history_path(self) -> Path:
        # Per scope too: the keys a build used mean something only in the index they came from.
        name = hashlib.sha256(f"{self.scope}\0{self.history_id}".encode() if self.scope
                              else self.history_id.encode()).hexdigest()[:32]
        return self.store.root / "history" / f"{name}.json"

    def save_history(self, *, bases: bool = True) -> None:
        """Remember what this build saw, for the next one's reasons: each stage's base (after a
        build that got through), and the keys it was built as or served from (a failed build's
        too: its steps that ran are what its person last saw)."""
        path = self._history_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        kept = self.bases if bases else self.history.get("bases") or {}
        keys = self.used_keys
        if not bases:  # the steps it never reached: what the last build before it saw of them
            keys = list(dict.fromkeys([*keys, *(self.history.get("keys") or [])]))[:MAX_KEYS]
        tmp.write_text(json.dumps({"bases": kept, "keys": keys}))
        os.replace(tmp, path)

    def _load_history(self) -> dict[str, Any]:
        """What the last build of this history left: each stage's base, and the cache keys its
        steps were built as or served from."""
        try:
            data = json.loads(self._history_path().read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _previous_base(self, label: str) -> dict[str, str] | None:
        bases = self.history.get("bases")
        base = bases.get(label) if isinstance(bases, dict) else None
        return base if isinstance(base, dict) else None


def same_step_reason(first: int) -> reasons.Reason:
    """Why a step is reported rebuilt when the same step on the same parent ran earlier in this
    build (two stages share it): BuildKit runs it once and reports both as one rebuilt vertex."""
    return reasons.same_step(first)


MAX_SCOPE = 200
MAX_KEYS = 1000  # keys a history keeps of the builds it saw


def check_scope(scope: str) -> str:
    """A cache scope's name, as given: any printable text up to MAX_SCOPE characters (it names
    a directory only through a hash)."""
    if len(scope) > MAX_SCOPE or not scope.isprintable() or scope != scope.strip():
        raise InputError(
            f"cache scope {scope[:40]!r}: expected up to {MAX_SCOPE} printable characters, "
            "without spaces at either end"
        )
    return scope


def state_from_image(label: str, image: Image) -> StageState:
    config = dict(image.config.get("config") or {})
    env: dict[str, str] = {}
    for pair in config.pop("Env", None) or []:
        name, _, value = pair.partition("=")
        env[name] = value
    return StageState(
        label=label,
        key=base_key(image.digest),
        layers=list(image.layers),
        env=env,
        args={},
        workdir=config.pop("WorkingDir", "") or "/",
        user=config.pop("User", "") or "",
        shell=tuple(config.pop("Shell", None) or ("/bin/sh", "-c")),
        config=config,
        history=list(image.config.get("history") or []),
    )


def read_dockerfile(context: Path, path: Path, name: str, limit: int) -> str:
    """The Dockerfile's text: from inside the context only (a link out of it is refused before
    its target is read), at most `limit` bytes, UTF-8."""
    try:
        data = read_inside(Path(context).resolve(), path, limit=limit, what=name, spelled_root=Path(context))
    except FileNotFoundError:
        raise InputError(f"no Dockerfile at {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read the Dockerfile: {exc.strerror}", file=name) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DockerfileError("the Dockerfile is not valid UTF-8 text", file=name, line=line) from None


def check_environment(state: StageState, word_bytes: int) -> None:
    """Refuse a stage whose ENV and ARG values together outgrow what one instruction may expand
    to (each step adds at most that much; this keeps five hundred of them from adding up)."""
    _check_total({**state.args, **state.env}, word_bytes)


def _check_total(values: dict[str, str | None], word_bytes: int) -> None:
    limit = word_bytes * INSTRUCTION_SHARES
    total = sum(len(name) + len(value or "") for name, value in values.items())
    if total > limit:
        raise DockerfileError(f"the stage's ENV and ARG values add up to more than {limit >> 10} KiB "
                              "(eight times the limit STUDIO_BUILD_WORD_KB sets)")


def check_step_count(df: Dockerfile, limit: int) -> None:
    """Refuse a Dockerfile with more than `limit` instructions (FROMs and ARGs before the first
    FROM included), naming the first one past the limit."""
    count = len(df.meta_args)
    for stage in df.stages:
        count += 1 + len(stage.instructions)
    if count <= limit:
        return
    lines = sorted([ins.line for ins in df.meta_args] + [line for stage in df.stages for line in
                   (stage.line, *(ins.line for ins in stage.instructions))])
    raise DockerfileError(
        f"the Dockerfile has {count} instructions, more than the {limit} a build may have "
        "(the limit STUDIO_BUILD_STEPS sets); this is the first one past it",
        file=df.filename, line=lines[limit],
    )


def read_sources(ins: Instruction) -> list[str]:
    """The earlier stages or images a step reads files of, as written: COPY/ADD --from, and the
    from= of RUN --mount."""
    if ins.keyword in ("COPY", "ADD"):
        source = ins.flag("from")
        return [source] if source is not None else []
    if ins.keyword == "RUN":
        return mount_sources(ins.flags.get("mount", ()))
    return []
