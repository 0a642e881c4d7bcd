"""The one walk of a plan, for a build and for a prediction alike.

The walk goes through the stages the target needs, in order: each stage's FROM, then every
step, asked of the cache first. What happens at each point is the plugged-in `Runner`'s: the
builder's executor runs a miss in the sandbox and reports events; the predictor runs nothing
and writes down the verdict. Both see the same keys, the same lookups and the same reasons,
because those are decided here and in the plan, once.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from .dockerfile import Stage, expansion_budget
from .errors import EngineError
from .instructions import STEPS, Planned, StageState, Step
from .planner import BuildPlan, PlannedStep, check_environment, same_step_reason
from .reasons import Reason


class Runner(Protocol):
    """What a walk does at each point of the plan. `t0` is when the step began."""

    def skip(self, planned: PlannedStep, reason: Reason) -> None:
        """A step of a stage the target does not need."""

    def start_stage(self, stage: Stage, planned: PlannedStep) -> StageState:
        """The state `stage` starts from; `planned` is its FROM step."""

    def start_step(self, planned: PlannedStep) -> None:
        """A step of a needed stage begins (a build may stop here, cancelled)."""

    def metadata(self, planned: PlannedStep, t0: float) -> None:
        """A step that changed only the image's config: no layer, nothing to look up."""

    def unknown_key(self, planned: PlannedStep, step: Step, state: StageState) -> bool:
        """Whether the step's key cannot be known before the steps under it have run (then
        the runner has dealt with it, and the walk looks nothing up)."""

    def cached(self, planned: PlannedStep, t0: float, key: str, record: dict[str, Any]) -> None:
        """A step served from the cache."""

    def miss(self, planned: PlannedStep, step: Step, plan: Planned, state: StageState, key: str,
             reason: Reason) -> dict[str, Any]:
        """A step the cache cannot serve: returns the record of what it made (or {} if it
        made nothing: a prediction)."""

    def rebuilt(self, planned: PlannedStep, t0: float, key: str, reason: Reason,
                record: dict[str, Any]) -> None:
        """A step that was (or would be) rebuilt, for `reason`."""

    def failed(self, planned: PlannedStep, t0: float, exc: EngineError) -> None:
        """A step that raised `exc` (which then ends the walk)."""


class PlanWalk:
    """Walks `plan` with `runner` plugged in."""

    def __init__(self, plan: BuildPlan, runner: Runner) -> None:
        self.plan = plan
        self.runner = runner

    def run(self) -> StageState:
        """Walk the plan; returns the target stage's final state. Raises the EngineError of
        the step that failed."""
        plan = self.plan
        for planned in plan.steps:
            if planned.stage.index not in plan.needed:
                self.runner.skip(planned, plan.not_needed(planned))
        final: StageState | None = None
        for stage in plan.df.stages:
            if stage.index in plan.needed:
                final = self._stage(stage)
            if stage is plan.target:
                break
        assert final is not None
        return final

    def _stage(self, stage: Stage) -> StageState:
        steps = self.plan.steps
        from_step = next(p for p in steps if p.stage is stage and p.instruction is None)
        state = self.runner.start_stage(stage, from_step)
        for planned in steps:
            if planned.stage is stage and planned.instruction is not None:
                self._step(planned, state)
        self.plan.finish_stage(stage, state)
        return state

    def _step(self, planned: PlannedStep, state: StageState) -> None:
        ins = planned.instruction
        assert ins is not None
        t0 = time.monotonic()
        self.runner.start_step(planned)
        step = STEPS[ins.keyword](ins, self.plan.env)
        word_bytes = self.plan.options.limits.word_bytes
        try:
            with expansion_budget(word_bytes):
                step.apply(state)
                check_environment(state, word_bytes)
                if not step.writes_files(state):
                    if not step.metadata_only:
                        step.history(state, ins.original, empty_layer=True)
                    # No layer and nothing to look up: BuildKit neither counts nor caches it.
                    self.runner.metadata(planned, t0)
                    return
                self._filesystem_step(planned, step, state, t0)
        except EngineError as exc:
            exc.details.setdefault("step", planned.number)
            if exc.line is None:
                exc.line = planned.line
            self.runner.failed(planned, t0, exc)
            raise

    def _filesystem_step(self, planned: PlannedStep, step: Step, state: StageState, t0: float) -> None:
        plan = self.plan
        if self.runner.unknown_key(planned, step, state):
            return
        inputs, key, record = plan.lookup(step, state)
        plan.used_keys.append(key)
        if key in plan.built_keys and not plan.options.no_cache:
            # The same step on the same parent already ran earlier in this build (two stages
            # share it); BuildKit runs it once and reports both as one rebuilt vertex.
            reason = same_step_reason(plan.built_keys[key])
            record = record or {}
        elif record is not None:
            plan.advance(state, planned, key, record, rebuilt=False)
            self.runner.cached(planned, t0, key, record)
            return
        else:
            reason = plan.reason(planned, step, inputs, state)
            record = self.runner.miss(planned, step, inputs, state, key, reason)
            plan.built_keys[key] = planned.number
        plan.advance(state, planned, key, record, rebuilt=True)
        self.runner.rebuilt(planned, t0, key, reason, record)
