"""A `docker load` archive as a stream of chunks, for a download that never holds the image.

The store writes a layer's tar by pushing bytes into a writer (tarstream walks the layer's
files), while a web response pulls chunks from an iterator. A thread writes the archive into a
small bounded queue and the iterator takes from it, so at most `depth` chunks of `chunk` bytes
are held at once whatever the image's size; a consumer that stops early (the client went away)
stops the writer at its next write.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import IO, cast

from ..store import Image, Store
from .export import write_docker_archive

CHUNK = 1 << 20
DEPTH = 4
_PUT_WAIT_S = 0.5  # how often a blocked writer looks whether its reader has gone


class _Stopped(Exception):
    """The reader went away: the writer stops where it is."""


class _Done:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class _Pipe:
    """A write-only file whose bytes come out of `chunks()` in pieces of `size` bytes."""

    def __init__(self, size: int, depth: int) -> None:
        self.size = size
        self.pending = bytearray()
        self.queue: queue.Queue[bytes | _Done] = queue.Queue(maxsize=depth)
        self.stopped = threading.Event()

    def write(self, data: bytes | memoryview) -> int:
        # The walker reuses its buffer: the bytes are copied here, before it is refilled.
        self.pending += data
        while len(self.pending) >= self.size:
            self._put(bytes(self.pending[: self.size]))
            del self.pending[: self.size]
        return len(data)

    def flush(self) -> None:
        if self.pending:
            self._put(bytes(self.pending))
            self.pending.clear()

    def _put(self, item: bytes | _Done) -> None:
        while True:
            if self.stopped.is_set():
                raise _Stopped
            try:
                self.queue.put(item, timeout=_PUT_WAIT_S)
                return
            except queue.Full:
                continue


def docker_archive_chunks(store: Store, image: Image, repo_tags: list[str], *, chunk: int = CHUNK,
                          depth: int = DEPTH) -> Iterator[bytes]:
    """The bytes `export_docker_archive` would write, in chunks of `chunk` bytes (the last may
    be shorter). An error while writing (a layer that no longer matches its digest) is raised
    here, after the chunks before it."""
    pipe = _Pipe(chunk, depth)

    def write() -> None:
        try:
            write_docker_archive(store, image, cast(IO[bytes], pipe), repo_tags)
            pipe.flush()
            pipe._put(_Done())
        except _Stopped:
            return
        except BaseException as exc:  # handed to the reader, who raises it
            try:
                pipe._put(_Done(exc))
            except _Stopped:
                return

    writer = threading.Thread(target=write, name="docker-archive-writer", daemon=True)
    writer.start()
    try:
        while True:
            item = pipe.queue.get()
            if isinstance(item, _Done):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        pipe.stopped.set()
        writer.join(timeout=_PUT_WAIT_S * 4)
