"""Fixtures for the engine's tests: a store with a real busybox base image, and a helper that
builds a Dockerfile in a context directory and returns its events."""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from builds.engine import image as images
from builds.engine.builder import BuildOptions, BuildResult, build
from builds.engine.sandbox import Limits
from builds.engine.seed import busybox_rootfs
from builds.engine.store import Store

BASE = "studio/busybox:test"


@functools.cache
def busybox_tarball() -> Path:
    """A busybox rootfs tarball made once per test run from the machine's busybox-static."""
    if shutil.which("busybox") is None:
        pytest.fail("busybox-static is not installed (make test installs it)")
    return busybox_rootfs(Path(tempfile.mkdtemp(prefix="studio-base-")) / "busybox.tar")


@pytest.fixture(scope="session")
def busybox_tar() -> Path:
    return busybox_tarball()


@pytest.fixture
def store(tmp_path: Path, busybox_tar: Path) -> Store:
    store = Store(tmp_path / "store")
    images.import_any(store, busybox_tar, BASE)
    return store


@dataclass
class Built:
    result: BuildResult
    events: list[dict[str, Any]]

    @property
    def steps(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == "step.finished"]

    def step(self, instruction_start: str) -> dict[str, Any]:
        """The step.finished event of the first step whose instruction starts with this text."""
        for event in self.steps:
            if event["instruction"].startswith(instruction_start):
                return event
        raise AssertionError(
            f"no step starting with {instruction_start!r} in {[e['instruction'] for e in self.steps]}"
        )

    def verdicts(self) -> list[tuple[str, str]]:
        return [
            (e["instruction"], e["status"])
            for e in self.steps
            if e["keyword"] in ("RUN", "COPY", "ADD", "WORKDIR")
        ]

    @property
    def finished(self) -> dict[str, Any]:
        return self.events[-1]


@dataclass
class Project:
    """A build context on disk, and a way to build it again and again into one store."""

    root: Path
    store: Store

    def write(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def build(self, **options: Any) -> Built:
        events: list[dict[str, Any]] = []
        options.setdefault(
            "limits",
            Limits(timeout_s=20, memory_bytes=256 << 20, pids=64, output_bytes=1 << 20, disk_bytes=64 << 20),
        )
        result = build(self.store, BuildOptions(context=self.root, **options), events.append)
        return Built(result, events)


@pytest.fixture
def project(tmp_path: Path, store: Store) -> Callable[..., Project]:
    def make(files: dict[str, str]) -> Project:
        root = tmp_path / "ctx"
        root.mkdir(exist_ok=True)
        proj = Project(root, store)
        proj.write(files)
        return proj

    return make
