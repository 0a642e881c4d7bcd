"""WORKDIR: sets the working directory and, as BuildKit does, makes sure it exists (a step
with its own cache key, except `WORKDIR /`, which is no step)."""

from __future__ import annotations

import posixpath
from pathlib import Path

from .base import Planned, StageState, Step
from .fs import ensure_dir, owner_key, resolve_owner


class Workdir(Step):
    keyword = "WORKDIR"

    def apply(self, state: StageState) -> None:
        path = self.expand(self.ins.args[0], state)
        workdir = _clean(posixpath.join(state.workdir, path))
        # BuildKit keeps an absolute WORKDIR as written for the steps' working directory, so
        # `WORKDIR /app/` runs the next RUN in "/app/", another RUN than in "/app"; a relative
        # one is joined and cleaned. The directory it makes is the same.
        if posixpath.isabs(path) and path.endswith("/") and workdir != "/":
            workdir += "/"
        state.workdir = workdir

    def writes_files(self, state: StageState) -> bool:
        return _clean(state.workdir) != "/"

    def plan(self, state: StageState) -> Planned:
        inputs = {"op": "mkdir", "path": _clean(state.workdir)}
        if state.user:
            inputs["user"] = owner_key(state.user)
        return Planned(inputs)

    def execute(self, state: StageState, upper: Path) -> None:
        rootfs = self.rootfs(state)
        workdir = _clean(state.workdir)
        if rootfs.is_dir(workdir):
            return
        owner = (0, 0)
        if state.user:
            try:
                owner = resolve_owner(rootfs, state.user)
            except ValueError:
                # BuildKit makes the directory root's when the image does not know the USER;
                # the RUN that then runs as that user is what fails.
                owner = (0, 0)
        ensure_dir(upper, rootfs, workdir, owner=owner)


def _clean(path: str) -> str:
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned
