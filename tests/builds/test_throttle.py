"""What one person may ask of a web process while typing: a bucket that refills with time, and one
request of a kind at a time."""

from __future__ import annotations

from typing import Any

import pytest

from builds import throttle
from studio.errors import Rejected


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(settings: Any) -> Clock:
    settings.EDITOR_RATE_PER_MINUTE = 60  # one a second, in bursts of six
    return Clock()


def ask(gate: throttle.Throttle, user: int) -> Rejected | None:
    try:
        with gate.turn(user):
            return None
    except Rejected as refused:
        return refused


def test_a_burst_is_allowed_then_refused_until_the_bucket_refills(clock: Clock) -> None:
    gate = throttle.Throttle("prediction", "predictions_per_minute", clock)
    assert [ask(gate, 1) for _ in range(6)] == [None] * 6
    refused = ask(gate, 1)
    assert refused is not None and refused.status == 429
    assert refused.details["limit"] == "predictions_per_minute" and refused.details["retry_after"] == 1
    assert ask(gate, 2) is None  # someone else is not held up
    clock.now += 1.0
    assert ask(gate, 1) is None and ask(gate, 1) is not None


def test_a_second_request_while_the_first_runs_is_refused(clock: Clock) -> None:
    gate = throttle.Throttle("lint", "lints_per_minute", clock)
    with gate.turn(1):
        refused = ask(gate, 1)
        assert refused is not None and "still running" in refused.message
    assert ask(gate, 1) is None


def test_a_failing_request_frees_its_turn(clock: Clock) -> None:
    gate = throttle.Throttle("lint", "lints_per_minute", clock)
    with pytest.raises(ValueError), gate.turn(1):
        raise ValueError("the work failed")
    assert ask(gate, 1) is None
