"""A `docker load` archive streamed in chunks: the same bytes as the exported file, its size
known before a byte is written, and a reader that stops early stops the writer."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from builds.engine import image as images
from builds.engine.image.export import docker_archive_size
from builds.engine.image.stream import docker_archive_chunks

from .conftest import BASE

DOCKERFILE = f"FROM {BASE}\nRUN head -c 300000 /dev/urandom > /noise && echo hi > /msg\n"


@pytest.fixture
def built(project: Any) -> Any:
    proj = project({"Dockerfile": DOCKERFILE})
    assert proj.build(tag="streamed:1").result.status == "succeeded"
    return proj


def test_the_stream_is_the_exported_archive_byte_for_byte(built: Any, tmp_path: Path) -> None:
    image = built.store.get_image("streamed:1")
    archive = tmp_path / "image.tar"
    images.export_docker_archive(built.store, image, archive, ["streamed:1"])
    chunks = list(docker_archive_chunks(built.store, image, ["streamed:1"], chunk=64 * 1024))
    assert b"".join(chunks) == archive.read_bytes()
    assert all(len(c) == 64 * 1024 for c in chunks[:-1])  # fixed-size pieces, the last shorter
    assert docker_archive_size(built.store, image, ["streamed:1"]) == archive.stat().st_size


def test_a_reader_that_stops_early_stops_the_writer(built: Any) -> None:
    image = built.store.get_image("streamed:1")
    before = {t.ident for t in threading.enumerate()}
    stream = docker_archive_chunks(built.store, image, ["streamed:1"], chunk=4096, depth=2)
    assert len(next(stream)) == 4096
    stream.close()
    deadline = time.monotonic() + 5
    while any(t.name == "docker-archive-writer" and t.ident not in before for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the writer thread is still running"
        time.sleep(0.05)
