"""RUN: keyed by its command line, environment, working directory, user, network and mounts, as
BuildKit keys an exec operation; on a miss it runs in the sandbox over the parent layers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ContextError, StepFailed
from . import mounts
from .base import Planned, StageState, Step
from .copy import context_items, tree_checksum
from .fs import Item, found_items

NETWORK_MODES = ("default", "none", "host")


@dataclass
class _Bound:
    """What a bind mount (or a cache mount's seed) reads: its checksum, and its files."""

    checksum: str
    items: Callable[[], list[Item]]


class Run(Step):
    keyword = "RUN"

    def argv(self, state: StageState) -> list[str]:
        if self.ins.heredocs and not self.ins.json_form:
            return self._heredoc_argv(state)
        if self.ins.json_form:
            return list(self.ins.args)
        return [*state.shell, " ".join(self.ins.args)]

    def _heredoc_argv(self, state: StageState) -> list[str]:
        # `RUN <<EOF` runs the body as a script through the shell. With a command before the
        # heredoc (`RUN python3 <<EOF`) the shell runs the whole text, heredoc included.
        words = " ".join(self.ins.args).split()
        if len(words) == 1 and words[0].startswith("<<"):
            return [*state.shell, self.ins.heredocs[0].body()]
        return [*state.shell, self.ins.with_heredocs()]

    def network(self) -> str:
        mode = self.ins.flag("network", "default") or "default"
        if mode not in NETWORK_MODES:
            raise self.error(f"RUN --network={mode} is not one of {', '.join(NETWORK_MODES)}")
        return mode

    def plan(self, state: StageState) -> Planned:
        env = state.run_env()
        arg_names = sorted(name for name in state.arg_values() if name not in state.env)
        inputs: dict[str, Any] = {
            "op": "run",
            "args": self.argv(state),
            # In the order set, as BuildKit keeps it: the same variables set in another order
            # make another step.
            "env": [f"{k}={v}" for k, v in env.items()],
            "cwd": state.workdir,
            "user": state.user,
            "network": self.network(),
        }
        self._mounts = [(spec, self._bound(spec, state)) for spec in self._mount_specs(state)]
        if self._mounts:
            # Only where there are mounts, so that every other RUN keeps the key it had.
            inputs["mounts"] = [mounts.key_inputs(spec, bound.checksum if bound else None)
                                for spec, bound in self._mounts]
        return Planned(inputs, {"arg_names": arg_names})

    def _mount_specs(self, state: StageState) -> list[mounts.MountSpec]:
        specs = []
        for text in self.ins.flags.get("mount", ()):
            try:
                specs.append(mounts.parse(text, workdir=state.workdir,
                                          expand=lambda word: self.expand(word, state)))
            except mounts.MountError as exc:
                raise self.error(f"RUN --mount={text}: {exc}") from None
        return specs

    def _bound(self, spec: mounts.MountSpec, state: StageState) -> _Bound | None:
        """What the mount reads from the context or an earlier stage or image, if anything."""
        if spec.type in ("tmpfs", "secret", "ssh") or (spec.type == "cache" and spec.from_ is None):
            return None
        if spec.from_ is None:
            context = self.build.context
            entries = context.resolve(spec.source or ".", file=self.build.dockerfile_name, line=self.ins.line,
                                      keyword="RUN --mount")
            if len(entries) != 1:
                raise self.error(f'RUN --mount: source "{spec.source}" names {len(entries)} files; '
                                 "a mount binds one file or directory")
            entry = entries[0]
            return _Bound(context.checksum([entry]), lambda: context_items(context, entry))
        rootfs = self.source_rootfs(spec.from_, state, what="RUN --mount from")
        found = rootfs.resolve(spec.source)
        if found is None:
            raise ContextError(f'RUN --mount: "{spec.source}" not found in {spec.from_}',
                               file=self.build.dockerfile_name, line=self.ins.line)
        return _Bound(tree_checksum(rootfs, [found], {}), lambda: found_items(rootfs, found))

    def execute(self, state: StageState, upper: Path) -> None:
        env = state.run_env()
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        store = self.build.store
        lower = [store.layer_path(layer) for layer in state.layers] or [store.work_dir("scratch")]
        bound = {id(spec): b for spec, b in self._mounts}

        def items(spec: mounts.MountSpec) -> list[Item]:
            found = bound[id(spec)]
            return found.items() if found is not None else []

        from ..sandbox.runner import run  # only a step that runs loads the machinery

        try:
            with mounts.prepared(store, [spec for spec, _ in self._mounts], items,
                                scope=self.build.cache_scope) as mounted:
                result = run(
                    self.argv(state),
                    lower=lower,
                    upper=upper,
                    env=env,
                    cwd=state.workdir,
                    user=state.user or None,
                    # The studio builds offline: "default" means no network, like --network=none.
                    network=False,
                    limits=self.build.limits,
                    on_output=self.build.on_output,
                    on_started=self.build.on_started,
                    cancel=self.build.cancel,
                    mounts=mounted,
                    discard=store.discard,
                )
        except mounts.MountError as exc:
            raise self.error(f"RUN --mount: {exc}") from None
        if result.limit is not None or result.exit_code != 0:
            raise StepFailed(result.message or f"the command exited with code {result.exit_code}",
                             file=self.build.dockerfile_name, line=self.ins.line,
                             ).with_details(exit_code=result.exit_code, limit=result.limit, tail=result.tail)
