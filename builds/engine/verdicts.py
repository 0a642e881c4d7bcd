"""The verdicts a build's steps end with, and the counts every page shows, from the events alone.

One vocabulary everywhere (the command line, the events, the bands, the summary, the history,
the comparison and the class grid):

    built      the step missed the cache and ran, making its layer
    cached     the step's layer came from the cache
    metadata   the step changes only the image's configuration (ENV, CMD, ...): no layer, and,
               as in BuildKit, not counted as a step that could be cached
    skipped    the step did not run: its stage is not needed, or the build stopped before it
    cancelled  the step was running when the build was cancelled
    failed     the step ran and failed

A stage's FROM is its base, not a step with a verdict: it is left out of the counts. The
frontend's `verdicts.ts` is the same function; both are tested against the same recorded events.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, TypedDict, get_args

# The wire's words: step.finished's `status` (the events' schema enumerates them from here).
Verdict = Literal["built", "cached", "metadata", "skipped", "cancelled", "failed"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
# build.finished's `status`.
Outcome = Literal["succeeded", "failed", "cancelled"]
# A step as a page shows it before, or without, a verdict: still to come, running, or never
# reached by a build that ended (the frontend's verdicts.ts says these with the same words).
PENDING = "pending"
RUNNING = "running"
NOT_RUN = "not_run"


def verdict(step: dict[str, Any]) -> str | None:
    """A step.finished event's verdict; None for a FROM (a base) or an unknown status."""
    if step.get("keyword") == "FROM":
        return None
    status = step.get("status")
    if status == "cached" and step.get("metadata"):
        return "metadata"  # events recorded before metadata steps had a status of their own
    return status if status in VERDICTS else None


class VerdictCounts(TypedDict):
    """How many steps ended with each verdict (verdicts.tally)."""

    built: int
    cached: int
    metadata: int
    skipped: int
    cancelled: int
    failed: int


def tally(events: Iterable[dict[str, Any]]) -> dict[str, int]:
    """How many steps of a build ended with each verdict, from its events (step.finished ones
    count; a step reported twice counts once, as it was last reported)."""
    last: dict[Any, str | None] = {}
    for event in events:
        if event.get("type", "step.finished") == "step.finished" and "step" in event:
            last[event["step"]] = verdict(event)
    counts: dict[str, int] = dict.fromkeys(VERDICTS, 0)
    for found in last.values():
        if found is not None:
            counts[found] += 1
    return counts


def cache_counts(counts: dict[str, int]) -> dict[str, int]:
    """The cache's share of it: hits are the cached steps, misses the built ones."""
    return {"hits": counts.get("cached", 0), "misses": counts.get("built", 0)}

# How each verdict is said in a count ("4 built, 1 cached, 2 metadata only").
VERDICT_WORDS = {
    "built": "built",
    "cached": "cached",
    "metadata": "metadata only",
    "skipped": "skipped",
    "cancelled": "cancelled",
    "failed": "failed",
}
