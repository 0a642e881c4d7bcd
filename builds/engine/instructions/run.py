"""RUN: keyed by its command line, environment, working directory, user and network, as
BuildKit keys an exec operation; on a miss it runs in the sandbox over the parent layers."""

from __future__ import annotations

from pathlib import Path

from .. import sandbox
from ..errors import StepFailed
from .base import Planned, StageState, Step

NETWORK_MODES = ("default", "none", "host")


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
        if self.ins.flags.get("mount"):
            raise self.error("RUN --mount is not supported by this builder yet")
        env = state.run_env()
        arg_names = sorted(name for name in state.arg_values() if name not in state.env)
        inputs = {
            "op": "run",
            "args": self.argv(state),
            "env": sorted(f"{k}={v}" for k, v in env.items()),
            "cwd": state.workdir,
            "user": state.user,
            "network": self.network(),
        }
        return Planned(inputs, {"arg_names": arg_names})

    def execute(self, state: StageState, upper: Path) -> None:
        env = state.run_env()
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        store = self.build.store
        lower = [store.layer_path(layer) for layer in state.layers] or [store.work_dir("scratch")]
        result = sandbox.run(
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
            cancel=self.build.cancel,
        )
        if result.limit is not None or result.exit_code != 0:
            raise StepFailed(result.message or f"the command exited with code {result.exit_code}",
                             file=self.build.dockerfile_name, line=self.ins.line,
                             ).with_details(exit_code=result.exit_code, limit=result.limit, tail=result.tail)
