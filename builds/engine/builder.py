"""Walk the plan: only the stages the target needs, every step asked of the cache first, the
misses executed, and every happening reported as an event.

The entry point is `build(store, options, sink)`; the CLI, the Celery task and the tests each
pass their own sink.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import image as images
from . import reasons, registry
from .cachekey import base_key, step_key
from .context import BuildContext, HashCache
from .dockerfile import Dockerfile, Instruction, Stage, expand, parse, parse_arg
from .errors import EngineError, ImageNotFound, InputError, StepFailed
from .events import (
    BUILD_FINISHED,
    BUILD_STARTED,
    BUILT,
    CACHED,
    FAILED,
    SKIPPED,
    STEP_FINISHED,
    STEP_LOG,
    STEP_STARTED,
    Emitter,
    Sink,
)
from .instructions import STEPS, BuildEnv, Planned, StageState, Step
from .sandbox import Limits
from .store import Image, Store

# Values BuildKit gives its automatic platform ARGs on this machine.
PLATFORM_ARGS = {
    "TARGETPLATFORM": "linux/amd64",
    "TARGETOS": "linux",
    "TARGETARCH": "amd64",
    "TARGETVARIANT": "",
    "BUILDPLATFORM": "linux/amd64",
    "BUILDOS": "linux",
    "BUILDARCH": "amd64",
    "BUILDVARIANT": "",
}


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
    limits: Limits = field(default_factory=Limits)
    cancel: threading.Event | None = None
    # The context directory was written for this build alone and nothing changes it until it is
    # deleted: its files can become the store's blobs without a copy.
    context_owned: bool = False


@dataclass
class BuildResult:
    status: str  # "succeeded" | "failed" | "cancelled"
    image: Image | None = None
    error: EngineError | None = None
    events: int = 0

    @property
    def exit_code(self) -> int:
        if self.status == "succeeded":
            return 0
        return self.error.exit_code if self.error is not None else 1


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

    def describe(self) -> dict[str, Any]:
        return {"step": self.number, "stage": self.stage.label, "instruction": self.text, "line": self.line}


def build(store: Store, options: BuildOptions, sink: Sink | None = None) -> BuildResult:
    """Build the Dockerfile in `options`, reporting events to `sink`. Never raises for a bad
    Dockerfile or a failing step: the result and the events say what happened."""
    emitter = Emitter(sink)
    started = time.monotonic()
    try:
        run = _Build(store, options, emitter)
    except EngineError as exc:
        emitter.emit(
            BUILD_FINISHED,
            status="failed",
            image=None,
            cache={"hits": 0, "misses": 0},
            duration_ms=_ms(started),
            error=exc.to_json(),
        )
        return BuildResult("failed", error=exc, events=1)
    return run.run(started)


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


class _Build:
    """One build's state: the plan, the stages built so far, the counters."""

    def __init__(self, store: Store, options: BuildOptions, emitter: Emitter) -> None:
        self.store = store
        self.options = options
        self.emitter = emitter
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
        self.hash_cache = HashCache(store.root / "hashcache")
        self.context = BuildContext(context_dir, hash_cache=self.hash_cache)
        self.history_id = options.history_id or str(dockerfile_path.resolve())
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
        )
        self.hits = 0
        self.misses = 0
        self.built_keys: dict[str, int] = {}  # keys built in this build -> the step that built them
        self.bases: dict[str, dict[str, str]] = {}  # stage label -> the base it used, for history
        self.finished_steps: set[int] = set()

    # -- planning ------------------------------------------------------------------------------
    def _parse(self, path: Path) -> Dockerfile:
        text = self.options.dockerfile_text
        if text is None:
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise InputError(f"no Dockerfile at {path}") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read the Dockerfile: {exc}", file=path.name) from None
        return parse(text, filename=self.dockerfile_name)

    def _meta_args(self) -> dict[str, str | None]:
        values: dict[str, str | None] = {}
        for ins in self.df.meta_args:
            env = {k: v for k, v in values.items() if v is not None}
            for name, default in parse_arg(ins, env, escape=self.df.escape):
                values[name] = self.options.build_args.get(name, default)
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
            source = ins.flag("from") if ins.keyword in ("COPY", "ADD") else None
            if source is not None:
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

    # -- running -------------------------------------------------------------------------------
    def run(self, started: float) -> BuildResult:
        self.emitter.emit(
            BUILD_STARTED,
            steps=[s.describe() for s in self.plan],
            target=self.target.label,
            dockerfile=self.dockerfile_name,
        )
        for planned in self.plan:
            if planned.stage.index not in self.needed:
                self._skip(
                    planned,
                    {
                        "code": "not_needed",
                        "message": f"Not built: the target stage {self.target.label} does not need "
                        f"stage {planned.stage.label}.",
                    },
                )
        final: StageState | None = None
        try:
            for stage in self.df.stages:
                if stage.index in self.needed:
                    final = self._build_stage(stage)
                if stage is self.target:
                    break
            assert final is not None
            image = self._finish_image(final)
        except EngineError as exc:
            return self._failed(exc, started)
        finally:
            self.hash_cache.save()
        self._save_history()
        self.emitter.emit(
            BUILD_FINISHED,
            status="succeeded",
            image=self._image_summary(image),
            cache={"hits": self.hits, "misses": self.misses},
            duration_ms=_ms(started),
        )
        return BuildResult("succeeded", image=image, events=self.emitter._seq)

    def _failed(self, exc: EngineError, started: float) -> BuildResult:
        failed_step = exc.details.get("step")
        line = exc.line
        for planned in self.plan:
            if planned.number not in self.finished_steps:
                self._skip(
                    planned,
                    {
                        "code": "not_run",
                        "message": f"Not run: the build stopped at the failed step on line {line}.",
                    },
                )
        cancelled = exc.details.get("limit") == "cancelled"
        status = "cancelled" if cancelled else "failed"
        error = exc.to_json()
        error["step"] = failed_step
        self.emitter.emit(
            BUILD_FINISHED,
            status=status,
            image=None,
            cache={"hits": self.hits, "misses": self.misses},
            duration_ms=_ms(started),
            error=error,
        )
        return BuildResult(status, error=exc, events=self.emitter._seq)

    def _skip(self, planned: PlannedStep, reason: dict[str, Any]) -> None:
        self.finished_steps.add(planned.number)
        self.emitter.emit(
            STEP_FINISHED,
            **planned.describe(),
            keyword=self._keyword(planned),
            status=SKIPPED,
            cached=False,
            cache_key=None,
            reason=reason,
            layer=None,
            duration_ms=0,
        )

    @staticmethod
    def _keyword(planned: PlannedStep) -> str:
        return planned.instruction.keyword if planned.instruction else "FROM"

    def _build_stage(self, stage: Stage) -> StageState:
        from_step = next(p for p in self.plan if p.stage is stage and p.instruction is None)
        state = self._start_stage(stage, from_step)
        for planned in self.plan:
            if planned.stage is stage and planned.instruction is not None:
                if self.options.cancel is not None and self.options.cancel.is_set():
                    raise StepFailed(
                        "the build was cancelled", file=self.dockerfile_name, line=planned.line
                    ).with_details(limit="cancelled", step=planned.number)
                self._step(planned, state)
        self.env.stage_states[stage.label.lower()] = state
        self.env.stage_states[str(stage.index)] = state
        return state

    def _start_stage(self, stage: Stage, planned: PlannedStep) -> StageState:
        t0 = time.monotonic()
        self.emitter.emit(STEP_STARTED, step=planned.number)
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
            state = _state_from_image(stage.label, image)
            base = {"ref": ref, "digest": image.digest}
        state.last_step = planned.number
        self.bases[stage.label] = base
        self.finished_steps.add(planned.number)
        self.emitter.emit(
            STEP_FINISHED,
            **planned.describe(),
            keyword="FROM",
            status=CACHED,
            cached=True,
            cache_key=state.key,
            reason=None,
            layer=None,
            base=self._base_summary(base, state),
            duration_ms=_ms(t0),
        )
        return state

    def _base_image(self, ref: str, stage: Stage, planned: PlannedStep) -> Image:
        """The stage's base image from the store, pulled from its registry when missing (the
        pull's progress goes out as image.pull events of the FROM step)."""
        def report(type_: str, **fields: Any) -> None:
            self.emitter.emit(type_, step=planned.number, **fields)

        try:
            return registry.find_or_pull(self.store, ref, report=report)
        except InputError as exc:
            raise ImageNotFound(
                f"base image {ref!r} is not in the store, and pulling it failed: {exc.message}",
                file=self.dockerfile_name,
                line=stage.line,
            ).with_details(step=planned.number) from None

    def _base_summary(self, base: dict[str, str], state: StageState) -> dict[str, Any]:
        size = sum(self.store.layer(layer).size for layer in state.layers)
        return {**base, "size": size, "layers": len(state.layers)}

    def _step(self, planned: PlannedStep, state: StageState) -> None:
        ins = planned.instruction
        assert ins is not None
        t0 = time.monotonic()
        self.emitter.emit(STEP_STARTED, step=planned.number)
        step = STEPS[ins.keyword](ins, self.env)
        try:
            step.apply(state)
            if not step.writes_files(state):
                if not step.metadata_only:
                    step.history(state, ins.original, empty_layer=True)
                self._finished(planned, t0, status=CACHED, cached=True, metadata=True)
                return
            self._filesystem_step(planned, step, state, t0)
        except EngineError as exc:
            exc.details.setdefault("step", planned.number)
            if exc.line is None:
                exc.line = planned.line
            self._finished(
                planned,
                t0,
                status=FAILED,
                cached=False,
                error=exc.to_json(),
                reason=exc.details.pop("reason", None),
            )
            raise

    def _finished(self, planned: PlannedStep, t0: float, **fields: Any) -> None:
        self.finished_steps.add(planned.number)
        fields.setdefault("cache_key", None)
        fields.setdefault("reason", None)
        fields.setdefault("layer", None)
        self.emitter.emit(
            STEP_FINISHED, **planned.describe(), keyword=self._keyword(planned), duration_ms=_ms(t0), **fields
        )

    def _filesystem_step(self, planned: PlannedStep, step: Step, state: StageState, t0: float) -> None:
        plan = step.plan(state)
        key = step_key(state.key, plan.inputs)
        record = None if self.options.no_cache else self.store.cache_get(key)
        if record is not None and not self._layer_present(record):
            record = None
        if record is not None and key not in self.built_keys:
            self.hits += 1
            self._advance(state, planned, key, record, rebuilt=False)
            self._finished(
                planned, t0, status=CACHED, cached=True, cache_key=key, layer=record.get("layer_info")
            )
            return
        self.misses += 1
        if record is not None:
            # The same step on the same parent already ran earlier in this build (two stages
            # share it); BuildKit runs it once and reports both as one rebuilt vertex.
            reason = {
                "code": "same_step",
                "step": self.built_keys[key],
                "message": f"The same step as step {self.built_keys[key]}, built once in this build.",
            }
        else:
            reason = self._reason(planned, step, plan, state)
            record = self._execute(planned, step, plan, state, key, reason)
        self._advance(state, planned, key, record, rebuilt=True)
        self._finished(
            planned,
            t0,
            status=BUILT,
            cached=False,
            cache_key=key,
            reason=reason,
            layer=record.get("layer_info"),
        )

    def _layer_present(self, record: dict[str, Any]) -> bool:
        layer = record.get("layer")
        return layer is None or self.store.layer_path(layer).is_dir()

    def _execute(
        self,
        planned: PlannedStep,
        step: Step,
        plan: Planned,
        state: StageState,
        key: str,
        reason: dict[str, Any],
    ) -> dict[str, Any]:
        upper = self.store.work_dir("step")
        self.env.on_output = lambda stream, text: self.emitter.emit(
            STEP_LOG, step=planned.number, stream=stream, text=text
        )
        try:
            step.execute(state, upper)
            layer = self.store.commit_layer(upper, state.layers)
        except EngineError as exc:
            shutil.rmtree(upper, ignore_errors=True)
            exc.details["reason"] = reason
            raise
        except BaseException:
            shutil.rmtree(upper, ignore_errors=True)
            raise
        finally:
            self.env.on_output = None
        notes = dict(plan.notes)
        if plan.manifest is not None:
            notes["manifest"] = self.store.put_json(plan.manifest())
        layer_info = None
        if layer is not None:
            layer_info = {
                "digest": layer.diff_id,
                "size": layer.size,
                "files": {"added": layer.added, "modified": layer.modified, "deleted": layer.deleted},
            }
        record = {
            "key": key,
            "parent": state.key,
            "keyword": step.keyword,
            "instruction": planned.text,
            "inputs": plan.inputs,
            "notes": notes,
            "layer": layer.id if layer else None,
            "layer_info": layer_info,
            "created": time.time(),
        }
        self.store.cache_put(key, record, parent=state.key)
        self.built_keys[key] = planned.number
        return record

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
    def _reason(self, planned: PlannedStep, step: Step, plan: Planned, state: StageState) -> dict[str, Any]:
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
        miss = reasons.Miss(
            step=planned.number,
            keyword=step.keyword,
            instruction=planned.text,
            inputs=plan.inputs,
            notes=plan.notes,
            manifest=plan.manifest,
            siblings=self.store.cache_children(state.key),
            load_manifest=self.store.get_json,
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

    def _planned(self, number: int | None) -> PlannedStep | None:
        return self.plan[number - 1] if number is not None else None

    # -- history of earlier builds of the same Dockerfile -----------------------------------------
    def _history_path(self) -> Path:
        name = hashlib.sha256(self.history_id.encode()).hexdigest()[:32]
        return self.store.root / "history" / f"{name}.json"

    def _previous_base(self, label: str) -> dict[str, str] | None:
        try:
            data = json.loads(self._history_path().read_text())
        except (OSError, ValueError):
            return None
        base = data.get("bases", {}).get(label)
        return base if isinstance(base, dict) else None

    def _save_history(self) -> None:
        path = self._history_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"bases": self.bases}))
        os.replace(tmp, path)

    # -- the image -----------------------------------------------------------------------------
    def _finish_image(self, state: StageState) -> Image:
        image = images.image_from_state(self.store, state)
        self.store.put_image(image)
        if self.options.tag:
            self.store.tag(self.options.tag, image.digest)
        return image

    def _image_summary(self, image: Image) -> dict[str, Any]:
        size = sum(self.store.layer(layer).size for layer in image.layers)
        return {"digest": image.digest, "size": size, "layers": len(image.layers), "tag": self.options.tag}


def _state_from_image(label: str, image: Image) -> StageState:
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
