"""Work split over a few threads, for the loops of a build that wait on the kernel or on C:
hashing files (sha256 and read() let go of the GIL), placing them (copy_file_range, link),
and hashing a layer's tar while it is made."""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

# On this project's 2-core machines two threads hash a 10,000-file context in 60% of the time
# one takes, and copy it in 55%; more threads than cores only add switching.
THREADS = min(4, os.cpu_count() or 1)
# Below this many jobs a thread costs more than it saves: a small context stays on one thread.
MINIMUM_JOBS = 64


def in_threads(work: Callable[..., Any], jobs: Sequence[tuple[Any, ...]]) -> None:
    """Run `work(*job)` for every job, in THREADS threads (the calling one included) when there
    are MINIMUM_JOBS or more, each taking one contiguous share (neighbouring jobs, such as files
    of one directory, stay together). At the first failure anywhere every thread stops taking
    jobs, and that failure is raised."""
    threads = THREADS
    if len(jobs) < MINIMUM_JOBS or threads < 2:
        for job in jobs:
            work(*job)
        return
    failed: list[BaseException] = []

    def share(part: Sequence[tuple[Any, ...]]) -> None:
        try:
            for job in part:
                if failed:
                    return
                work(*job)
        except BaseException as exc:
            failed.append(exc)

    size = -(-len(jobs) // threads)
    helpers = [threading.Thread(target=share, args=(jobs[start:start + size],), name="studio-engine-share")
               for start in range(size, len(jobs), size)]
    for helper in helpers:
        helper.start()
    share(jobs[:size])
    for helper in helpers:
        helper.join()
    if failed:
        raise failed[0]


class Sha256Behind:
    """sha256 of a stream, computed by a second thread while the caller makes the stream (a
    layer's tar: walking the tree is Python's work, hashing is C's, and they overlap on two
    cores). Pieces are handed over in batches of BATCH bytes; a stream shorter than one batch
    never starts the thread. The caller must not change a piece it has passed in."""

    BATCH = 4 << 20

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._pending: list[bytes] = []
        self._size = 0
        self._queue: queue.SimpleQueue[list[bytes] | None] | None = None
        self._thread: threading.Thread | None = None

    def update(self, data: bytes | memoryview) -> None:
        if isinstance(data, memoryview):
            data = bytes(data)  # a view of a buffer the caller reuses
        self._pending.append(data)
        self._size += len(data)
        if self._size >= self.BATCH:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._queue is None:
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._work, name="studio-engine-sha256", daemon=True)
            self._thread.start()
        self._queue.put(self._pending)
        self._pending, self._size = [], 0

    def _work(self) -> None:
        assert self._queue is not None
        while (batch := self._queue.get()) is not None:
            for piece in batch:
                self._digest.update(piece)

    def hexdigest(self) -> str:
        """The digest of everything passed in (waits for the thread to finish)."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(self._pending)
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        else:
            for piece in self._pending:
                self._digest.update(piece)
        self._pending = []
        return self._digest.hexdigest()
