"""Walk the plan: only the stages the target needs, every step asked of the cache first, the
misses executed, and every happening reported as an event.

The entry point is `build(store, options, sink)`; the CLI, the Celery task and the tests each
pass their own sink.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any

from . import image as images
from . import registry
from .context import HashCache
from .dockerfile import Stage, expansion_budget
from .errors import EngineError, ImageNotFound, InputError, StepFailed
from .events import (
    BUILD_STARTED,
    BUILT,
    CACHED,
    CANCELLED,
    FAILED,
    METADATA,
    SKIPPED,
    STEP_FINISHED,
    STEP_LOG,
    STEP_STARTED,
    BuildFinished,
    Emitter,
    Sink,
    printable,
)
from .instructions import STEPS, Planned, StageState, Step
from .planner import BuildOptions, BuildPlan, PlannedStep, check_environment
from .store import Image, Store
from .verdicts import cache_counts, tally

__all__ = ["BuildOptions", "BuildResult", "build"]

MAX_KEYS = 1000  # keys a history keeps of the builds it saw


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


def build(store: Store, options: BuildOptions, sink: Sink | None = None) -> BuildResult:
    """Build the Dockerfile in `options`, reporting events to `sink`. Never raises for a bad
    Dockerfile or a failing step: the result and the events say what happened."""
    emitter = Emitter(sink)
    started = time.monotonic()
    try:
        run = _Build(store, options, emitter)
    except EngineError as exc:
        emitter.emit(BuildFinished(
            status="failed", counts=tally([]), duration_ms=_ms(started), error=exc.to_json()
        ))
        return BuildResult("failed", error=exc, events=1)
    return run.run(started)


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


class _Build(BuildPlan):
    """One build's state: the plan, the stages built so far, the counters."""

    def __init__(self, store: Store, options: BuildOptions, emitter: Emitter) -> None:
        super().__init__(store, options, HashCache(store.root / "hashcache"))
        self.emitter = emitter
        self.finished_steps: set[int] = set()
        self.reported: list[dict[str, Any]] = []  # every step.finished, for the counts
        self.used_keys: list[str] = []  # the keys of the steps this build built or was served

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
                self._skip(planned, self._not_needed(planned))
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
        self.emitter.emit(BuildFinished(
            status="succeeded",
            image=self._image_summary(image),
            **self._counts(),
            duration_ms=_ms(started),
        ))
        return BuildResult("succeeded", image=image, events=self.emitter._seq)

    def _failed(self, exc: EngineError, started: float) -> BuildResult:
        failed_step = exc.details.get("step")
        line = exc.line
        cancelled = exc.details.get("limit") == "cancelled"
        stopped = f"the build was cancelled at line {line}" if cancelled else \
            f"the build stopped at the failed step on line {line}"
        for planned in self.plan:
            if planned.number not in self.finished_steps:
                self._skip(planned, {"code": "not_run", "message": f"Not run: {stopped}."})
        self._save_history(bases=False)
        status = "cancelled" if cancelled else "failed"
        error = exc.to_json()
        error["step"] = failed_step
        self.emitter.emit(BuildFinished(
            status=status, **self._counts(), duration_ms=_ms(started), error=error
        ))
        return BuildResult(status, error=exc, events=self.emitter._seq)

    def _counts(self) -> dict[str, Any]:
        """build.finished's counts, made by the one function every page uses on the events."""
        counts = tally(self.reported)
        return {"cache": cache_counts(counts), "counts": counts}

    def _skip(self, planned: PlannedStep, reason: dict[str, Any]) -> None:
        self.finished_steps.add(planned.number)
        self.reported.append(self.emitter.emit(
            STEP_FINISHED,
            **planned.describe(),
            keyword=self._keyword(planned),
            status=SKIPPED,
            cached=False,
            cache_key=None,
            reason=reason,
            layer=None,
            duration_ms=0,
        ))

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
        self._finish_stage(stage, state)
        return state

    def _start_stage(self, stage: Stage, planned: PlannedStep) -> StageState:
        t0 = time.monotonic()
        self.emitter.emit(STEP_STARTED, step=planned.number)
        state, base = self._base_state(stage, planned)
        self.finished_steps.add(planned.number)
        self.reported.append(self.emitter.emit(
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
        ))
        return state

    def _base_image(self, ref: str, stage: Stage, planned: PlannedStep) -> Image:
        """The stage's base image from the store, pulled from its registry when missing."""
        try:
            return self._find_or_pull(ref, planned, stage.line)
        except ImageNotFound as exc:
            raise ImageNotFound(
                f"base image {ref!r} is not in the store, and {exc.message}", file=self.dockerfile_name,
                line=stage.line,
            ).with_details(step=planned.number) from None

    def _find_or_pull(self, ref: str, planned: PlannedStep, line: int) -> Image:
        """The image `ref` from the store, pulled from its registry when missing: for a FROM,
        and for a `--from` that names no stage. The pull's progress goes out as image.pull
        events of the step `planned`."""
        def report(type_: str, **fields: Any) -> None:
            # A cancel stops a pull at its next report: nothing is stored until it is all checked.
            if self.options.cancel is not None and self.options.cancel.is_set():
                raise StepFailed(
                    "the build was cancelled", file=self.dockerfile_name, line=line
                ).with_details(limit="cancelled", step=planned.number)
            self.emitter.emit(type_, step=planned.number, **fields)

        try:
            return registry.find_or_pull(self.store, ref, report=report,
                                         private_ok=self.options.private_registries)
        except InputError as exc:
            raise ImageNotFound(f"pulling it failed: {exc.message}", file=self.dockerfile_name,
                                line=line).with_details(step=planned.number) from None

    def _base_summary(self, base: dict[str, str], state: StageState) -> dict[str, Any]:
        size = sum(self.store.layer(layer).size for layer in state.layers)
        return {**base, "size": size, "layers": len(state.layers)}

    def _step(self, planned: PlannedStep, state: StageState) -> None:
        ins = planned.instruction
        assert ins is not None
        t0 = time.monotonic()
        self.emitter.emit(STEP_STARTED, step=planned.number)
        step = STEPS[ins.keyword](ins, self.env)
        self.env.find_image = functools.partial(self._find_or_pull, planned=planned, line=ins.line)
        try:
            with expansion_budget(self.options.limits.word_bytes):
                step.apply(state)
                check_environment(state, self.options.limits.word_bytes)
                if not step.writes_files(state):
                    if not step.metadata_only:
                        step.history(state, ins.original, empty_layer=True)
                    # No layer and nothing to look up: BuildKit neither counts nor caches it.
                    self._finished(planned, t0, status=METADATA, cached=False, metadata=True)
                    return
                self._filesystem_step(planned, step, state, t0)
        except EngineError as exc:
            exc.details.setdefault("step", planned.number)
            if exc.line is None:
                exc.line = planned.line
            self._finished(
                planned,
                t0,
                status=CANCELLED if exc.details.get("limit") == "cancelled" else FAILED,
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
        self.reported.append(self.emitter.emit(
            STEP_FINISHED, **planned.describe(), keyword=self._keyword(planned), duration_ms=_ms(t0), **fields
        ))

    def _filesystem_step(self, planned: PlannedStep, step: Step, state: StageState, t0: float) -> None:
        plan, key, record = self._lookup(step, state)
        self.used_keys.append(key)
        if record is not None and key not in self.built_keys:
            self._advance(state, planned, key, record, rebuilt=False)
            self._finished(
                planned, t0, status=CACHED, cached=True, cache_key=key, layer=record.get("layer_info")
            )
            return
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
            # Names that are not UTF-8 as the events show them (`\xNN`), which JSON can hold.
            notes["manifest"] = self.store.put_json(printable(plan.manifest()))
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
            "history": self.history_id,  # whose build made it: reasons compare within one history
        }
        self.store.cache_put(key, record, parent=state.key, scope=self.scope)
        self.built_keys[key] = planned.number
        return record

    # -- history of earlier builds of the same Dockerfile -----------------------------------------
    def _save_history(self, *, bases: bool = True) -> None:
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
