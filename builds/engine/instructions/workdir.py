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
        state.workdir = posixpath.normpath(posixpath.join(state.workdir, path))
        if state.workdir.startswith("//"):
            state.workdir = "/" + state.workdir.lstrip("/")

    def writes_files(self, state: StageState) -> bool:
        return state.workdir != "/"

    def plan(self, state: StageState) -> Planned:
        inputs = {"op": "mkdir", "path": state.workdir}
        if state.user:
            inputs["user"] = state.user
        return Planned(inputs)

    def execute(self, state: StageState, upper: Path) -> None:
        rootfs = self.rootfs(state)
        if rootfs.is_dir(state.workdir):
            return
        owner = (0, 0)
        if state.user:
            try:
                owner = resolve_owner(rootfs, state.user)
            except ValueError as exc:
                raise self.error(str(exc)) from None
        ensure_dir(upper, rootfs, state.workdir, owner=owner)
