"""Build: walk the plan (walk.PlanWalk) with the `Executor` plugged in, which pulls missing
base images, executes the misses in the sandbox, keeps their layers and cache records, and
reports every happening as an event.

The entry point is `build(store, options, sink)`; the CLI, the Celery task and the tests each
pass their own sink.
"""

from __future__ import annotations

import functools
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from . import image as images
from . import reasons, registry
from .context import HashCache
from .context.hashcache import HASH_CACHE_FILE
from .dockerfile import Stage
from .errors import EngineError, ImageNotFound, InputError, StepFailed
from .events import (
    BUILT,
    CACHED,
    CANCELLED,
    FAILED,
    METADATA,
    SKIPPED,
    BaseFacts,
    BuildFinished,
    BuildStarted,
    Emitter,
    ImageFacts,
    Sink,
    StepFinished,
    StepLog,
    StepRef,
    StepStarted,
    TransferEvent,
)
from .instructions import Planned, StageState, Step
from .planner import BuildOptions, BuildPlan, PlannedStep
from .printable import printable
from .store import Image, Store
from .store.cacheindex import WriteBehind
from .verdicts import Outcome, VerdictCounts, cache_counts, tally
from .walk import PlanWalk

__all__ = ["BuildOptions", "BuildResult", "build"]


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
        run = Executor(BuildPlan(store, options, HashCache(store.root / HASH_CACHE_FILE)), emitter)
    except EngineError as exc:
        emitter.emit(BuildFinished(
            status="failed",
            counts=cast(VerdictCounts, tally([])),  # tally has one key per verdict
            duration_ms=_ms(started),
            error=exc.to_json(),
        ))
        return BuildResult("failed", error=exc, events=1)
    return run.run(started)


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


class Executor:
    """The walk's runner that builds: it pulls missing base images, runs the misses in the
    sandbox, keeps what they made, and reports every happening as an event."""

    def __init__(self, plan: BuildPlan, emitter: Emitter) -> None:
        self.plan = plan
        self.store = plan.store
        self.options = plan.options
        self.emitter = emitter
        self.finished_steps: set[int] = set()
        self.reported: list[dict[str, Any]] = []  # every step.finished, for the counts
        # The records of the steps it runs are written while the next steps run.
        self.records = plan.cache = WriteBehind(plan.cache)
        # The next step's upper directory and its overlay work directory, made while a step runs.
        self._upper_ahead: Path | None = None
        self._work_ahead: Path | None = None

    # -- running -------------------------------------------------------------------------------
    def run(self, started: float) -> BuildResult:
        self.emitter.emit(BuildStarted(
            steps=[StepRef(**s.describe()) for s in self.plan.steps],
            target=self.plan.target.label,
            dockerfile=self.plan.dockerfile_name,
        ))
        try:
            final = PlanWalk(self.plan, self).run()
            self.records.flush()  # an image is tagged once the records of its steps are kept
            image = self._finish_image(final)
        except EngineError as exc:
            return self._failed(exc, started)
        finally:
            for unused in (self._upper_ahead, self._work_ahead):  # empty: made for no step
                if unused is not None:
                    shutil.rmtree(unused, ignore_errors=True)
            try:
                self.records.flush()  # after a failed step too: what the steps before it made
            finally:
                self.plan.hash_cache.save()
        self.plan.save_history()
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
        for planned in self.plan.steps:
            if planned.number not in self.finished_steps:
                self.skip(planned, reasons.not_run(stopped))
        self.plan.save_history(bases=False)
        status: Outcome = "cancelled" if cancelled else "failed"
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

    def skip(self, planned: PlannedStep, reason: reasons.Reason) -> None:
        self.finished_steps.add(planned.number)
        self.reported.append(self.emitter.emit(StepFinished(
            **planned.describe(),
            keyword=self._keyword(planned),
            status=SKIPPED,
            cached=False,
            reason=reason,
            duration_ms=0,
        )))

    @staticmethod
    def _keyword(planned: PlannedStep) -> str:
        return planned.instruction.keyword if planned.instruction else "FROM"

    def start_stage(self, stage: Stage, planned: PlannedStep) -> StageState:
        t0 = time.monotonic()
        self.emitter.emit(StepStarted(step=planned.number))
        state, base = self.plan.base_state(stage, planned, self._base_image)
        self.finished_steps.add(planned.number)
        self.reported.append(self.emitter.emit(StepFinished(
            **planned.describe(),
            keyword="FROM",
            status=CACHED,
            cached=True,
            cache_key=state.key,
            base=self._base_summary(base, state),
            duration_ms=_ms(t0),
        )))
        return state

    def _base_image(self, ref: str, stage: Stage, planned: PlannedStep) -> Image:
        """The stage's base image from the store, pulled from its registry when missing."""
        try:
            return self._find_or_pull(ref, planned, stage.line)
        except ImageNotFound as exc:
            raise ImageNotFound(
                f"base image {ref!r} is not in the store, and {exc.message}", file=self.plan.dockerfile_name,
                line=stage.line,
            ).with_details(step=planned.number) from None

    def _find_or_pull(self, ref: str, planned: PlannedStep, line: int) -> Image:
        """The image `ref` from the store, pulled from its registry when missing: for a FROM,
        and for a `--from` that names no stage. The pull's progress goes out as image.pull
        events of the step `planned`."""
        def report(event: TransferEvent) -> None:
            # A cancel stops a pull at its next report: nothing is stored until it is all checked.
            self._check_cancel(planned, line)
            event.step = planned.number
            self.emitter.emit(event)

        try:
            return registry.find_or_pull(self.store, ref, report=report,
                                         private_ok=self.options.private_registries)
        except InputError as exc:
            raise ImageNotFound(f"pulling it failed: {exc.message}", file=self.plan.dockerfile_name,
                                line=line).with_details(step=planned.number) from None

    def _check_cancel(self, planned: PlannedStep, line: int) -> None:
        if self.options.cancel is not None and self.options.cancel.is_set():
            raise StepFailed(
                "the build was cancelled", file=self.plan.dockerfile_name, line=line
            ).with_details(limit="cancelled", step=planned.number)

    def _base_summary(self, base: dict[str, str], state: StageState) -> BaseFacts:
        size = sum(self.store.layer(layer).size for layer in state.layers)
        return BaseFacts(ref=base["ref"], digest=base["digest"], size=size, layers=len(state.layers))

    def start_step(self, planned: PlannedStep) -> None:
        ins = planned.instruction
        assert ins is not None
        self._check_cancel(planned, planned.line)
        self.emitter.emit(StepStarted(step=planned.number))
        self.plan.env.find_image = functools.partial(self._find_or_pull, planned=planned, line=ins.line)

    def metadata(self, planned: PlannedStep, t0: float) -> None:
        self._finished(planned, t0, status=METADATA, cached=False, metadata=True)

    def unknown_key(self, planned: PlannedStep, step: Step, state: StageState) -> bool:
        return False  # a build runs every step under a step before it: every key is known

    def cached(self, planned: PlannedStep, t0: float, key: str, record: dict[str, Any]) -> None:
        self._finished(planned, t0, status=CACHED, cached=True, cache_key=key, layer=record.get("layer_info"))

    def rebuilt(self, planned: PlannedStep, t0: float, key: str, reason: reasons.Reason,
                record: dict[str, Any]) -> None:
        self._finished(
            planned,
            t0,
            status=BUILT,
            cached=False,
            cache_key=key,
            reason=reason,
            layer=record.get("layer_info"),
        )

    def failed(self, planned: PlannedStep, t0: float, exc: EngineError) -> None:
        self._finished(
            planned,
            t0,
            status=CANCELLED if exc.details.get("limit") == "cancelled" else FAILED,
            cached=False,
            error=exc.to_json(),
            reason=exc.details.pop("reason", None),
        )

    def _finished(self, planned: PlannedStep, t0: float, **verdict: Any) -> None:
        self.finished_steps.add(planned.number)
        self.reported.append(self.emitter.emit(StepFinished(
            **planned.describe(), keyword=self._keyword(planned), duration_ms=_ms(t0), **verdict
        )))

    def miss(
        self,
        planned: PlannedStep,
        step: Step,
        plan: Planned,
        state: StageState,
        key: str,
        reason: reasons.Reason,
    ) -> dict[str, Any]:
        """Run the step in a fresh upper directory, keep its layer, and record it in the cache."""
        upper, self._upper_ahead = self._upper_ahead or self.store.work_dir("step"), None
        if self._work_ahead is not None and step.keyword != "RUN":
            self._work_ahead.rmdir()  # only a RUN mounts an overlay
        self._work_ahead = None
        env = self.plan.env
        env.on_output = lambda stream, text: self.emitter.emit(
            StepLog(step=planned.number, stream=stream, text=text)
        )
        env.on_started = self._while_a_step_runs
        if step.keyword != "RUN":
            self.records.start_writing()
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
            env.on_output = env.on_started = None
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
            "history": self.plan.history_id,  # whose build made it: reasons compare within one history
        }
        self.plan.cache.record(key, record, parent=state.key)
        return record

    def _while_a_step_runs(self) -> None:
        """Work for the steps after a RUN, done while its processes run (the build waits for
        them meanwhile): the records so far handed to their writer, the context's digests taken
        so far saved (the warm engine's spare reads them for the next build while this one goes
        on), and the next layer's facts file and the next step's upper directory made."""
        self.records.start_writing()
        self.plan.hash_cache.save()
        self.store.layer_store.open_facts_file()
        if self._upper_ahead is None:
            from .sandbox.runner import make_overlay_work_dir  # loaded: a RUN is running

            self._upper_ahead = self.store.work_dir("step")
            self._work_ahead = make_overlay_work_dir(self._upper_ahead)

    # -- the image -----------------------------------------------------------------------------
    def _finish_image(self, state: StageState) -> Image:
        image = images.image_from_state(self.store, state)
        self.store.put_image(image)
        if self.options.tag:
            self.store.tag(self.options.tag, image.digest)
        return image

    def _image_summary(self, image: Image) -> ImageFacts:
        size = sum(self.store.layer(layer).size for layer in image.layers)
        return ImageFacts(digest=image.digest, size=size, layers=len(image.layers), tag=self.options.tag)
