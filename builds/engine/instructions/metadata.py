"""Instructions that change only the image config: no layer, no cache key of their own.

BuildKit makes no step of these; their effect reaches later steps only through what those
steps are keyed by (ENV and valued ARGs: a RUN's environment; USER: a RUN's user; SHELL: a
RUN's command line).
"""

from __future__ import annotations

import json
from typing import Any

from ..dockerfile import expand_words, parse_arg, parse_key_values
from .base import StageState, Step


class Env(Step):
    keyword = "ENV"
    metadata_only = True

    def apply(self, state: StageState) -> None:
        pairs = parse_key_values(self.ins, state.expansion_env(), escape=self.build.escape)
        for name, value in pairs:
            state.env.pop(name, None)  # re-defining moves it last, as the image's Env list does
            state.env[name] = value
        self.history(state, "ENV " + " ".join(f"{k}={v}" for k, v in pairs), empty_layer=True)

# Values BuildKit gives its automatic platform ARGs on this machine.
PLATFORM_ARGS = {
    "TARGETPLATFORM": "linux/amd64",
    "TARGETOS": "linux",
    "TARGETARCH": "amd64",
    "TARGETVARIANT": "",
    "BUILDPLATFORM": "linux/amd64",
    "BUILDOS": "linux",
    "BUILDARCH": "amd64",
    "BUILDVARIANT": "",
}


class Arg(Step):
    keyword = "ARG"
    metadata_only = True

    def apply(self, state: StageState) -> None:
        for name, default in parse_arg(self.ins, state.expansion_env(), escape=self.build.escape):
            if name in self.build.build_args:
                value: str | None = self.build.build_args[name]
            elif default is not None:
                value = default
            else:
                value = self.build.meta_args.get(name)  # the automatic platform ARGs among them
            state.args[name] = value
        self.history(state, "ARG " + " ".join(self.ins.args), empty_layer=True)


class Label(Step):
    keyword = "LABEL"
    metadata_only = True

    def apply(self, state: StageState) -> None:
        labels = state.config.setdefault("Labels", {})
        pairs = parse_key_values(self.ins, state.expansion_env(), escape=self.build.escape)
        labels.update(pairs)
        self.history(state, "LABEL " + " ".join(f"{k}={v}" for k, v in pairs), empty_layer=True)


class Maintainer(Step):
    keyword = "MAINTAINER"
    metadata_only = True

    def apply(self, state: StageState) -> None:
        state.config["author"] = self.expand(" ".join(self.ins.args), state)
        self.history(state, self.ins.original, empty_layer=True)


class User(Step):
    keyword = "USER"
    metadata_only = True

    def apply(self, state: StageState) -> None:
        state.user = self.expand(self.ins.args[0], state)
        self.history(state, f"USER {state.user}", empty_layer=True)


class Shell(Step):
    keyword = "SHELL"
    metadata_only = True

    def apply(self, state: StageState) -> None:
        if not self.ins.json_form:
            raise self.error('SHELL requires the arguments to be in JSON form, e.g. SHELL ["/bin/sh", "-c"]')
        state.shell = tuple(self.ins.args)
        self.history(state, "SHELL " + json.dumps(list(state.shell)), empty_layer=True)


def command_line(step: Step, state: StageState) -> list[str]:
    """CMD/ENTRYPOINT/HEALTHCHECK arguments: exec form as given, shell form through the shell."""
    if step.ins.json_form:
        return list(step.ins.args)
    return [*state.shell, " ".join(step.ins.args)]


class Cmd(Step):
    keyword = "CMD"
    metadata_only = True

    def apply(self, state: StageState) -> None:
        state.config["Cmd"] = command_line(self, state)
        state.cmd_set = True
        self.history(state, "CMD " + json.dumps(state.config["Cmd"]), empty_layer=True)


class Entrypoint(Step):
    keyword = "ENTRYPOINT"
    metadata_only = True

    def apply(self, state: StageState) -> None:
        state.config["Entrypoint"] = command_line(self, state)
        if not state.cmd_set:
            # A base image's CMD makes no sense for a new entrypoint; Docker drops it.
            state.config.pop("Cmd", None)
        self.history(state, "ENTRYPOINT " + json.dumps(state.config["Entrypoint"]), empty_layer=True)


class Expose(Step):
    keyword = "EXPOSE"
    metadata_only = True

    def apply(self, state: StageState) -> None:
        ports = state.config.setdefault("ExposedPorts", {})
        for word in expand_words(" ".join(self.ins.args), state.expansion_env(), escape=self.build.escape):
            port = word if "/" in word else f"{word}/tcp"
            number = port.split("/", 1)[0]
            if not number.replace("-", "").isdigit():
                raise self.error(f"invalid port in EXPOSE: {word!r}")
            ports[port.lower()] = {}
        self.history(state, self.ins.original, empty_layer=True)


class Volume(Step):
    keyword = "VOLUME"
    metadata_only = True

    def apply(self, state: StageState) -> None:
        volumes = state.config.setdefault("Volumes", {})
        words = (
            self.ins.args
            if self.ins.json_form
            else expand_words(" ".join(self.ins.args), state.expansion_env(), escape=self.build.escape)
        )
        for word in words:
            if not word.strip():
                raise self.error("VOLUME specified can not be an empty string")
            volumes[word] = {}
        self.history(state, self.ins.original, empty_layer=True)


class StopSignal(Step):
    keyword = "STOPSIGNAL"
    metadata_only = True

    def apply(self, state: StageState) -> None:
        state.config["StopSignal"] = self.expand(self.ins.args[0], state)
        self.history(state, self.ins.original, empty_layer=True)


class Healthcheck(Step):
    keyword = "HEALTHCHECK"
    metadata_only = True

    def apply(self, state: StageState) -> None:
        if self.ins.args and self.ins.args[0].upper() == "NONE":
            state.config["Healthcheck"] = {"Test": ["NONE"]}
        else:
            rest = (
                list(self.ins.args[1:])
                if self.ins.args and self.ins.args[0].upper() == "CMD"
                else list(self.ins.args)
            )
            test = ["CMD", *rest] if self.ins.json_form else ["CMD-SHELL", " ".join(rest)]
            check: dict[str, Any] = {"Test": test}
            for flag, field in (
                ("interval", "Interval"),
                ("timeout", "Timeout"),
                ("start-period", "StartPeriod"),
                ("retries", "Retries"),
            ):
                value = self.ins.flag(flag)
                if value is not None:
                    check[field] = value
            state.config["Healthcheck"] = check
        self.history(state, self.ins.original, empty_layer=True)


class Onbuild(Step):
    keyword = "ONBUILD"
    metadata_only = True

    def apply(self, state: StageState) -> None:
        state.config.setdefault("OnBuild", []).append(" ".join(self.ins.args))
        self.history(state, self.ins.original, empty_layer=True)


METADATA_STEPS: list[type[Step]] = [
    Env,
    Arg,
    Label,
    Maintainer,
    User,
    Shell,
    Cmd,
    Entrypoint,
    Expose,
    Volume,
    StopSignal,
    Healthcheck,
    Onbuild,
]
