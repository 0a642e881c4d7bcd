"""GET /builds/<id>/image.tar: a finished build's image as an archive `docker load` takes,
streamed from the store a chunk at a time (the image is never held in memory), for whoever may
see the build (its owner, or a share link's holder); anyone else gets the same 404 as for a
build that does not exist."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator

from django.conf import settings
from django.http import (
    HttpRequest,
    HttpResponseNotModified,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from builds import selectors
from builds.engine.image.export import docker_archive_size
from builds.engine.image.stream import docker_archive_chunks
from builds.models import Build
from builds.stores import image_here, web_store

from .names import archive_names


class _Streaming:
    """How many downloads each person (or share link) has streaming from this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: dict[str, int] = {}

    def take(self, who: str) -> bool:
        with self._lock:
            if self._count.get(who, 0) >= settings.DOWNLOADS_PER_PERSON:
                return False
            self._count[who] = self._count.get(who, 0) + 1
            return True

    def give_back(self, who: str) -> None:
        with self._lock:
            left = self._count.pop(who, 1) - 1
            if left > 0:
                self._count[who] = left


_streaming = _Streaming()


@require_GET
def build_image_download(request: HttpRequest, build_id: int) -> HttpResponseBase:
    token = request.GET.get("token") or None
    build = selectors.build_get(user=request.user, build_id=build_id, token=token)
    if build.status != Build.Status.SUCCEEDED or not build.image_digest:
        return JsonResponse({"error": "only a build that succeeded has an image to download"}, status=409)
    store = web_store()
    image = image_here(store, build.image_digest)
    if image is None:
        gone = "this build's image is no longer in the store; build again"
        return JsonResponse({"error": gone}, status=410)
    repo_tag, filename = archive_names(build.project.name, build.project_id, build.number)
    # The archive's bytes follow from the image and the name it loads as (the export is
    # deterministic), so those two make a strong validator.
    etag = '"' + hashlib.sha256(f"{image.digest}\n{repo_tag}".encode()).hexdigest() + '"'
    if etag in _etags(request.headers.get("If-None-Match", "")):
        response: HttpResponseBase = HttpResponseNotModified()
    else:
        who = f"user:{request.user.pk}" if request.user.is_authenticated else f"link:{token}"
        if not _streaming.take(who):
            busy = JsonResponse({
                "error": f"you are downloading {settings.DOWNLOADS_PER_PERSON} images already; "
                         "start this one when one of them is done",
                "limit": "downloads_per_person"}, status=429)
            busy["Retry-After"] = "5"
            return busy
        # Given back when the body ends, however it ends; or, should the client go before the
        # body began (its generator then never runs), when the generator is dropped.
        give_back = functools.cache(lambda: _streaming.give_back(who))
        body = _async_chunks(docker_archive_chunks(store, image, [repo_tag]), give_back)
        weakref.finalize(body, give_back)
        response = StreamingHttpResponse(body, content_type="application/x-tar")
        response["Content-Length"] = str(docker_archive_size(store, image, [repo_tag]))
        response["Content-Disposition"] = content_disposition_header(True, filename)
    response["ETag"] = etag
    # Someone's own image, and a share link can be revoked: kept only by this browser, and
    # asked again (cheaply, by ETag) each time.
    response["Cache-Control"] = "private, no-cache"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _etags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}


async def _async_chunks(chunks: Iterator[bytes], done: Callable[[], None]) -> AsyncIterator[bytes]:
    """The chunks for the ASGI server, each taken in a worker thread: Django would read a plain
    iterator whole into a list before sending a byte. `done` is called once it ends, however
    (sent whole, or the client went away)."""
    try:
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            yield chunk
    finally:
        try:
            await asyncio.to_thread(_close, chunks)
        finally:
            done()


def _close(chunks: Iterator[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
