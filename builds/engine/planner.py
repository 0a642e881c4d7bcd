"""What a build will do, known before anything runs, and a prediction of it that runs nothing.

`BuildPlan` is the part of a build that needs no sandbox: the parsed Dockerfile, the stages the
target needs, every step numbered, each stage's base, each step's cache key and its lookup in the
cache index, and the reason a step misses. The builder walks it executing the misses; `predict`
walks it without executing anything and says, for every step, whether the next build will serve
it from the cache or rebuild it, and why. Both use this one code, so a prediction gives the
verdict and the reason the build then gives.

A key can be computed without running anything, because it is made from the step's inputs and
its parent's key, not from what a RUN wrote. The one exception is `COPY --from=<stage>`, keyed by
the content of files another stage makes: when that stage will be rebuilt, the prediction is a
rebuild marked `certain: false` (the files may come out the same), and so is every step above it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import reasons, registry
from .cachekey import base_key, step_key
from .context import BuildContext, HashCache, read_inside, too_large
from .dockerfile import Dockerfile, Instruction, Stage, expand, expansion_budget, parse, parse_arg
from .dockerfile.words import INSTRUCTION_SHARES
from .errors import DockerfileError, EngineError, ImageNotFound, InputError
from .instructions import STEPS, BuildEnv, Planned, StageState, Step
from .instructions.metadata import PLATFORM_ARGS
from .instructions.mounts import from_names as mount_sources
from .sandbox import Limits
from .store import DEFAULT_SCOPE, Image, ScopedCache, Store

# A prediction's verdict for a step.
CACHED = "cached"
REBUILD = "rebuild"
SKIPPED = "skipped"
METADATA = "metadata"  # changes only the configuration: no layer, nothing to look up
# The key of a state whose files depend on a step that has not run yet.
UNKNOWN_KEY = "unknown"


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
        self.plan = self._plan()
        context_dir = options.context
        if not context_dir.is_dir():
            raise InputError(f"build context {str(context_dir)!r} is not a directory")
        self.hash_cache = hash_cache
        # `<Dockerfile>.dockerignore` beside the Dockerfile wins over the context's .dockerignore.
        self.context = BuildContext(context_dir, hash_cache=self.hash_cache, dockerfile=dockerfile_path,
                                    ignore_limit=options.limits.dockerfile_bytes)
        self.history_id = options.history_id or str(dockerfile_path.resolve())
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

    def _plan(self) -> list[PlannedStep]:
        steps: list[PlannedStep] = []
        for stage in self.df.stages:
            steps.append(PlannedStep(len(steps) + 1, stage, None))
            for ins in stage.instructions:
                steps.append(PlannedStep(len(steps) + 1, stage, ins))
        return steps

    def _not_needed(self, planned: PlannedStep) -> dict[str, Any]:
        return {
            "code": "not_needed",
            "message": f"Not built: the target stage {self.target.label} does not need "
            f"stage {planned.stage.label}.",
        }

    # -- walking it ----------------------------------------------------------------------------
    def _base_state(self, stage: Stage, planned: PlannedStep) -> tuple[StageState, dict[str, str]]:
        """The state a stage starts from (an earlier stage's, an image's, or scratch), and which
        base that is. Raises ImageNotFound for an image the store lacks."""
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
            image = self._base_image(ref, stage, planned)
            state = state_from_image(stage.label, image)
            base = {"ref": ref, "digest": image.digest}
        state.last_step = planned.number
        self.bases[stage.label] = base
        return state, base

    def _base_image(self, ref: str, stage: Stage, planned: PlannedStep) -> Image:
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

    def _finish_stage(self, stage: Stage, state: StageState) -> None:
        self.env.stage_states[stage.label.lower()] = state
        self.env.stage_states[str(stage.index)] = state

    def _lookup(self, step: Step, state: StageState) -> tuple[Planned, str, dict[str, Any] | None]:
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

    def _advance(
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
    def _cascade_reason(self, state: StageState) -> dict[str, Any] | None:
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

    def _reason(self, planned: PlannedStep, step: Step, plan: Planned, state: StageState) -> dict[str, Any]:
        cascade = self._cascade_reason(state)
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
            later=[p.text for p in self.plan[planned.number:] if p.stage is planned.stage],
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
        return self.plan[number - 1] if number is not None else None

    # -- history of earlier builds of the same Dockerfile -----------------------------------------
    def _history_path(self) -> Path:
        # Per scope too: the keys a build used mean something only in the index they came from.
        name = hashlib.sha256(f"{self.scope}\0{self.history_id}".encode() if self.scope
                              else self.history_id.encode()).hexdigest()[:32]
        return self.store.root / "history" / f"{name}.json"

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


MAX_SCOPE = 200


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


# -- the prediction ----------------------------------------------------------------------------------
@dataclass
class Prediction:
    """Every step's predicted verdict in step order; `error` where the build would stop (the
    steps after it are left out)."""

    steps: list[dict[str, Any]]
    error: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"steps": self.steps, "error": self.error}


def predict(store: Store, options: BuildOptions, *, hash_cache: HashCache | None = None) -> Prediction:
    """Predict what building `options` would do now: for every step `cached`, `rebuild` (with the
    reason the build would give) or `skipped`. Executes nothing and writes nothing to the store;
    reads the cache index, the context's files (through `hash_cache`) and the stored layers a
    `COPY --from` reads. Never raises for a bad Dockerfile: `error` says what and where."""
    try:
        walk = _Predictor(store, options, hash_cache if hash_cache is not None else HashCache())
    except EngineError as exc:
        return Prediction([], _error_json(exc))
    return walk.run()


def _error_json(exc: EngineError) -> dict[str, Any]:
    return {
        "message": exc.message,
        "line": exc.line,
        **({"file": exc.file} if exc.file else {}),
        **{k: v for k, v in exc.details.items() if k == "step"},
    }


class _Predictor(BuildPlan):
    """Walks the plan as the builder does, with every miss left unexecuted: a miss's key is
    remembered as built, so the steps after it are keyed and explained as the build would."""

    def __init__(self, store: Store, options: BuildOptions, hash_cache: HashCache) -> None:
        super().__init__(store, options, hash_cache)
        self.rows: dict[int, dict[str, Any]] = {}

    def run(self) -> Prediction:
        for planned in self.plan:
            if planned.stage.index not in self.needed:
                self._row(planned, SKIPPED, self._not_needed(planned))
        error = None
        try:
            for stage in self.df.stages:
                if stage.index in self.needed:
                    self._stage(stage)
                if stage is self.target:
                    break
        except EngineError as exc:
            error = _error_json(exc)
        finally:
            self.hash_cache.save()
        return Prediction([self.rows[n] for n in sorted(self.rows)], error)

    def _row(
        self, planned: PlannedStep, prediction: str, reason: dict[str, Any] | None, **extra: Any
    ) -> None:
        self.rows[planned.number] = {
            **planned.describe(),
            "end_line": planned.end_line,
            "keyword": planned.instruction.keyword if planned.instruction else "FROM",
            "prediction": prediction,
            "reason": reason,
            "certain": True,
            **extra,
        }

    def _stage(self, stage: Stage) -> None:
        from_step = next(p for p in self.plan if p.stage is stage and p.instruction is None)
        state, base = self._base_state(stage, from_step)
        self._row(from_step, CACHED, None, cache_key=state.key, base=base)
        for planned in self.plan:
            if planned.stage is stage and planned.instruction is not None:
                try:
                    self._step(planned, state)
                except EngineError as exc:
                    exc.details.setdefault("step", planned.number)
                    if exc.line is None:
                        exc.line = planned.line
                    raise
        self._finish_stage(stage, state)

    def _step(self, planned: PlannedStep, state: StageState) -> None:
        assert planned.instruction is not None
        with expansion_budget(self.options.limits.word_bytes):
            self._predict_step(planned, state)

    def _predict_step(self, planned: PlannedStep, state: StageState) -> None:
        assert planned.instruction is not None
        step = STEPS[planned.instruction.keyword](planned.instruction, self.env)
        step.apply(state)
        check_environment(state, self.options.limits.word_bytes)
        if not step.writes_files(state):
            self._row(planned, METADATA, None, metadata=True)
            return
        if state.key == UNKNOWN_KEY or self._reads_unknown_stage(step, state):
            self._unknown(planned, step, state)
            return
        plan, key, record = self._lookup(step, state)
        if key in self.built_keys and not self.options.no_cache:
            # The builder runs it once, for the first of the two steps, and reports both rebuilt.
            first = self.built_keys[key]
            reason = {
                "code": "same_step",
                "step": first,
                "message": f"The same step as step {first}, built once in this build.",
            }
        elif record is not None:
            self._advance(state, planned, key, record, rebuilt=False)
            self._row(planned, CACHED, None, cache_key=key)
            return
        else:
            reason = self._reason(planned, step, plan, state)
            self.built_keys[key] = planned.number
        self._advance(state, planned, key, {}, rebuilt=True)
        self._row(planned, REBUILD, reason, cache_key=key)

    def _reads_unknown_stage(self, step: Step, state: StageState) -> bool:
        """COPY --from (or RUN --mount from=) a stage whose files depend on a step this build
        will run."""
        return self._unknown_source(step, state) is not None

    def _unknown_source(self, step: Step, state: StageState) -> StageState | None:
        for source in read_sources(step.ins):
            found = self.env.stage_states.get(step.expand(source, state).lower())
            if found is not None and (found.rebuilt_from is not None or found.key == UNKNOWN_KEY):
                return found
        return None

    def _unknown(self, planned: PlannedStep, step: Step, state: StageState) -> None:
        """A step whose key cannot be known before the build runs: a rebuild, certain only when
        --no-cache or a rebuilt parent with a known key decides it whatever the files are."""
        reason = self._cascade_reason(state)
        certain = reason is not None and (self.options.no_cache or state.key != UNKNOWN_KEY)
        if reason is None:
            cause = self._unknown_source(step, state)
            assert cause is not None
            reason = {
                "code": "source_rebuilt",
                "message": f"Probably rebuilt: it {'mounts' if step.keyword == 'RUN' else 'copies'} files "
                f"from stage {cause.label}, which this build "
                "rebuilds first. Should those files come out exactly the same, it is served from the cache.",
                "from": cause.label,
                "cause_step": cause.rebuilt_from,
            }
        self._advance(state, planned, UNKNOWN_KEY, {}, rebuilt=True)
        self._row(planned, REBUILD, reason, cache_key=None, certain=certain)


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
