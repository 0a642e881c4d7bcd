"""What a page asks for while someone types (a prediction, a lint) is asked often and costs a web
process real work. Each kind has a token bucket per person in each process (EDITOR_RATE_PER_MINUTE,
in bursts of a tenth of that), and one person has one of each kind running at a time, so typing
fast, or a script, cannot keep a process busy."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings

from studio.errors import Rejected


@dataclass
class _Bucket:
    tokens: float
    at: float
    busy: bool = False


class Throttle:
    def __init__(self, noun: str, limit: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.noun = noun  # "prediction": for the messages
        self.limit = limit  # the `limit` a 429 names
        self.clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._lock = threading.Lock()

    @contextmanager
    def turn(self, user_id: int) -> Iterator[None]:
        """Run the body as one of the person's requests, or raise Rejected (429) with
        `retry_after` when they are asking too fast or their previous one still runs."""
        rate = settings.EDITOR_RATE_PER_MINUTE
        burst = max(1, rate // 10)
        now = self.clock()
        with self._lock:
            bucket = self._buckets.setdefault(user_id, _Bucket(tokens=burst, at=now))
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate / 60)
            bucket.at = now
            if bucket.busy:
                raise self._refuse(
                    f"your previous {self.noun} is still running; ask again when it is done", 1
                )
            if bucket.tokens < 1:
                wait = math.ceil((1 - bucket.tokens) * 60 / rate)
                raise self._refuse(
                    f"you asked for more than {rate} {self.noun}s a minute (STUDIO_EDITOR_RATE_PER_MINUTE); "
                    f"try again in {wait} s",
                    wait,
                )
            bucket.tokens -= 1
            bucket.busy = True
        try:
            yield
        finally:
            with self._lock:
                bucket.busy = False

    def _refuse(self, message: str, retry_after: int) -> Rejected:
        return Rejected(
            message,
            kind="too_many",
            limit=self.limit,
            max=settings.EDITOR_RATE_PER_MINUTE,
            retry_after=retry_after,
        )


PREDICTIONS = Throttle("prediction", "predictions_per_minute")
LINTS = Throttle("lint", "lints_per_minute")
