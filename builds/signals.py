"""What the build domain tells the rest of the studio, without knowing who listens (the
classrooms judge and show their students' builds this way).

- `build_changed(build_id)`: a build was queued, started or ended (sent before its project's page
  hears of it, so whatever a listener records is there when the page asks).
- `build_progressed(build_id, event)`: a `build.started`, `step.started` or `step.finished` event
  of the build was stored.

A listener that fails is logged and never stops a build.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

log = logging.getLogger(__name__)

build_changed = Signal()
build_progressed = Signal()
PROGRESS_EVENTS = frozenset({"build.started", "step.started", "step.finished"})


def notify(signal: Signal, **kwargs: Any) -> None:
    for receiver, outcome in signal.send_robust(sender=None, **kwargs):
        if isinstance(outcome, Exception):
            log.error(
                "%s failed on %s", getattr(receiver, "__qualname__", receiver), kwargs, exc_info=outcome
            )
