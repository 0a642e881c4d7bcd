"""A worker's heartbeat beside long work (a container's run or commit, a push): a thread that
calls `beat` every STUDIO_BUILD_HEARTBEAT_S, so that a reaper can tell work whose worker died
(its heartbeat silent for STUDIO_BUILD_STALE_AFTER_S) from work still going."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connections

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    """Calls `beat` every STUDIO_BUILD_HEARTBEAT_S until stopped; sets `lost` when it answers
    False (the work was given up on meanwhile: reaped). `what` names the work in the log."""

    def __init__(self, what: str, beat: Callable[[], bool], lost: threading.Event) -> None:
        super().__init__(name=f"{what}-beat", daemon=True)
        self.what = what
        self.beat = beat
        self.lost = lost
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.wait(settings.BUILD_HEARTBEAT_S):
                try:
                    if not self.beat():
                        self.lost.set()
                except DatabaseError as exc:
                    log.warning("%s: heartbeat failed: %r", self.what, exc)
        finally:
            connections.close_all()


@contextmanager
def beating(what: str, beat: Callable[[], bool], lost: threading.Event | None = None) -> Iterator[None]:
    """A Heartbeat for the body's length."""
    heart = Heartbeat(what, beat, lost if lost is not None else threading.Event())
    heart.start()
    try:
        yield
    finally:
        heart.stopping.set()
        heart.join()
