"""A prediction of what a build would do now, running nothing.

`predict` walks the plan (walk.PlanWalk) with the `Predictor` plugged in: where the builder's
executor runs a miss, the predictor only writes down the verdict, for every step `cached`,
`rebuild` (with the reason the build would give) or `skipped`.

A key can be computed without running anything, because it is made from the step's inputs and
its parent's key, not from what a RUN wrote. The one exception is `COPY --from=<stage>`, keyed by
the content of files another stage makes: when that stage will be rebuilt, the prediction is a
rebuild marked `certain: false` (the files may come out the same), and so is every step above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from . import reasons
from .context import HashCache
from .dockerfile import Stage
from .errors import EngineError
from .instructions import Planned, StageState, Step
from .planner import BuildOptions, BuildPlan, PlannedStep, read_sources
from .store import Store
from .walk import PlanWalk

# A prediction's verdict for a step: the word the build's step.finished will say.
CACHED = "cached"
BUILT = "built"
SKIPPED = "skipped"
METADATA = "metadata"  # changes only the configuration: no layer, nothing to look up
# The key of a state whose files depend on a step that has not run yet.
UNKNOWN_KEY = "unknown"


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
        plan = BuildPlan(store, options, hash_cache if hash_cache is not None else HashCache())
    except EngineError as exc:
        return Prediction([], _error_json(exc))
    return Predictor(plan).run()


def _error_json(exc: EngineError) -> dict[str, Any]:
    return {
        "message": exc.message,
        "line": exc.line,
        **({"file": exc.file} if exc.file else {}),
        **{k: v for k, v in exc.details.items() if k == "step"},
    }


class Predictor:
    """The walk's runner that runs nothing: a miss's key is remembered as built (by the walk),
    so the steps after it are keyed and explained as the build would."""

    def __init__(self, plan: BuildPlan) -> None:
        self.plan = plan
        self.rows: dict[int, dict[str, Any]] = {}

    def run(self) -> Prediction:
        error = None
        try:
            PlanWalk(self.plan, self).run()
        except EngineError as exc:
            error = _error_json(exc)
        finally:
            self.plan.hash_cache.save()
        return Prediction([self.rows[n] for n in sorted(self.rows)], error)

    def _row(
        self, planned: PlannedStep, prediction: str, reason: reasons.Reason | None, **extra: Any
    ) -> None:
        self.rows[planned.number] = {
            **planned.describe(),
            "end_line": planned.end_line,
            "keyword": planned.instruction.keyword if planned.instruction else "FROM",
            "prediction": prediction,
            "reason": msgspec.to_builtins(reason),  # as in step.finished
            "certain": True,
            **extra,
        }

    # -- the walk's runner ---------------------------------------------------------------------
    def skip(self, planned: PlannedStep, reason: reasons.Reason) -> None:
        self._row(planned, SKIPPED, reason)

    def start_stage(self, stage: Stage, planned: PlannedStep) -> StageState:
        state, base = self.plan.base_state(stage, planned, self.plan.local_base_image)
        self._row(planned, CACHED, None, cache_key=state.key, base=base)
        return state

    def start_step(self, planned: PlannedStep) -> None:
        pass

    def metadata(self, planned: PlannedStep, t0: float) -> None:
        self._row(planned, METADATA, None, metadata=True)

    def unknown_key(self, planned: PlannedStep, step: Step, state: StageState) -> bool:
        if state.key == UNKNOWN_KEY or self._unknown_source(step, state) is not None:
            self._unknown(planned, step, state)
            return True
        return False

    def cached(self, planned: PlannedStep, t0: float, key: str, record: dict[str, Any]) -> None:
        self._row(planned, CACHED, None, cache_key=key)

    def miss(self, planned: PlannedStep, step: Step, plan: Planned, state: StageState, key: str,
             reason: reasons.Reason) -> dict[str, Any]:
        return {}  # nothing runs: the step makes no layer here

    def rebuilt(self, planned: PlannedStep, t0: float, key: str, reason: reasons.Reason,
                record: dict[str, Any]) -> None:
        self._row(planned, BUILT, reason, cache_key=key)

    def failed(self, planned: PlannedStep, t0: float, exc: EngineError) -> None:
        pass  # the walk stops; run() turns the error into the prediction's

    # -- keys that cannot be known yet ---------------------------------------------------------
    def _unknown_source(self, step: Step, state: StageState) -> StageState | None:
        """The stage a COPY --from (or RUN --mount from=) reads whose files depend on a step
        this build will run, if any."""
        for source in read_sources(step.ins):
            found = self.plan.env.stage_states.get(step.expand(source, state).lower())
            if found is not None and (found.rebuilt_from is not None or found.key == UNKNOWN_KEY):
                return found
        return None

    def _unknown(self, planned: PlannedStep, step: Step, state: StageState) -> None:
        """A step whose key cannot be known before the build runs: a rebuild, certain only when
        --no-cache or a rebuilt parent with a known key decides it whatever the files are."""
        reason = self.plan.cascade_reason(state)
        certain = reason is not None and (self.plan.options.no_cache or state.key != UNKNOWN_KEY)
        if reason is None:
            cause = self._unknown_source(step, state)
            assert cause is not None
            reason = reasons.source_rebuilt(
                keyword=step.keyword, stage=cause.label, cause_step=cause.rebuilt_from
            )
        self.plan.advance(state, planned, UNKNOWN_KEY, {}, rebuilt=True)
        self._row(planned, BUILT, reason, cache_key=None, certain=certain)
