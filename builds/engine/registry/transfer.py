"""Transfer progress as events, like a build's steps (one schema for the command line, the
worker and the page):

    image.pull  {image, layer, current, total, status}
    image.push  {image, layer, current, total, status}

`layer` is a blob digest, or null for the image as a whole; `current`/`total` are bytes.
Statuses, per layer: pull `waiting` -> `downloading` ... -> `extracting` -> `done`, or `exists`
(already in the store, not fetched); push `uploading` ... -> `pushed`, or `exists` (the registry
has it, skipped) or `mounted` (taken from another repository of the registry). For the image:
`resolved` (its manifest is read: `digest`, `layers`) and `done` (`digest`, and the bytes moved).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..events import ImagePull, ImagePush, TransferEvent

Report = Callable[[TransferEvent], Any]  # an Emitter's emit, or a wrapper of it
PROGRESS_INTERVAL_S = 0.25  # at most this often a layer's byte count goes out while it moves


class Transfer:
    """The events of one image's pull or push."""

    def __init__(self, event: type[ImagePull] | type[ImagePush], image: str, report: Report | None) -> None:
        self.event = event
        self.image = image
        self._report = report
        self._last: dict[str, float] = {}

    def layer(self, digest: str, status: str, current: int, total: int, **extra: Any) -> None:
        self._send(digest, status, current, total, **extra)

    def progress(self, digest: str, status: str, current: int, total: int) -> None:
        """Bytes moved so far: sent at most every PROGRESS_INTERVAL_S, and at the end."""
        now = time.monotonic()
        if current < total and now - self._last.get(digest, 0.0) < PROGRESS_INTERVAL_S:
            return
        self._last[digest] = now
        self._send(digest, status, current, total)

    def whole(self, status: str, current: int, total: int, **extra: Any) -> None:
        self._send(None, status, current, total, **extra)

    def _send(self, layer: str | None, status: str, current: int, total: int, **extra: Any) -> None:
        if self._report is not None:
            self._report(self.event(
                image=self.image, layer=layer, current=current, total=total, status=status, **extra
            ))
