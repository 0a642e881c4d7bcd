"""WORKDIR: sets the working directory and, as BuildKit does, makes sure it exists (a step
with its own cache key, except `WORKDIR /`, which is no step)."""

from __future__ import annotations

import posixpath
from pathlib import Path

from .base import Planned, StageState, Step
from .fs import ensure_dir, resolve_owner


class Workdir(Step):
    keyword = "WORKDIR"

    def apply(self, state: StageState) -> None:
        path = self.expand(self.ins.args[0], state)
        # An absolute path is kept as written, trailing slash and all, as BuildKit keeps it in the
        # image's config and the steps' working directory (so `/app/` after `/app` rebuilds a
        # RUN); a relative one is joined and cleaned. The directory made is the same either way.
        workdir = path if posixpath.isabs(path) else posixpath.normpath(posixpath.join(state.workdir, path))
        if workdir.startswith("//"):
            workdir = "/" + workdir.lstrip("/")
        state.workdir = workdir

    def directory(self, state: StageState) -> str:
        return posixpath.normpath(state.workdir)

    def writes_files(self, state: StageState) -> bool:
        return self.directory(state) != "/"

    def plan(self, state: StageState) -> Planned:
        inputs = {"op": "mkdir", "path": self.directory(state)}
        if state.user:
            inputs["user"] = state.user
        return Planned(inputs)

    def execute(self, state: StageState, upper: Path) -> None:
        rootfs = self.rootfs(state)
        if rootfs.is_dir(self.directory(state)):
            return
        owner = (0, 0)
        if state.user:
            try:
                owner = resolve_owner(rootfs, state.user)
            except ValueError as exc:
                raise self.error(str(exc)) from None
        ensure_dir(upper, rootfs, self.directory(state), owner=owner)
