"""OCI image configs: made from a base config and the engine's stage state.

Field names are the OCI ones (which Docker's are too): Env as "K=V" strings, Cmd, Entrypoint,
WorkingDir, User, Labels, ExposedPorts {"80/tcp": {}}, Volumes {"/data": {}}, StopSignal,
Healthcheck, Shell. No `created` timestamps are written: the same build then gives the same
config, and so the same image digest, every time (which a cached rebuild should).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..store import Image, Store

if TYPE_CHECKING:
    from ..instructions.base import StageState

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ("/bin/sh", "-c")
ARCHITECTURE, OS = "amd64", "linux"


def _env_list(env: Mapping[str, str] | Iterable[str]) -> list[str]:
    if isinstance(env, Mapping):
        return [f"{k}={v}" for k, v in env.items()]
    return list(env)


def _set_of(values: Mapping[str, Any] | Iterable[str], *, port: bool = False) -> dict[str, dict[str, Any]]:
    """{"80/tcp": {}} from ["80", "53/udp"] (ports get /tcp by default) or from such a map."""
    names = values.keys() if isinstance(values, Mapping) else values
    return {(n if "/" in n or not port else f"{n}/tcp"): {} for n in names}


def make_config(
    base: Mapping[str, Any],
    *,
    env: Mapping[str, str] | Iterable[str] | None = None,
    cmd: Sequence[str] | None = None,
    entrypoint: Sequence[str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    labels: Mapping[str, str] | None = None,
    exposed_ports: Mapping[str, Any] | Iterable[str] | None = None,
    volumes: Mapping[str, Any] | Iterable[str] | None = None,
    stop_signal: str | None = None,
    healthcheck: Mapping[str, Any] | None = None,
    shell: Sequence[str] | None = None,
    diff_ids: list[str],
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    """An image config: `base` (a whole config; its `config` section is the starting point)
    with each field given here set. None keeps the base's value; an empty value removes it."""
    config: dict[str, Any] = copy.deepcopy(dict(base))
    config.setdefault("architecture", ARCHITECTURE)
    config.setdefault("os", OS)
    section: dict[str, Any] = dict(config.get("config") or {})
    given: dict[str, Any] = {
        "Env": None if env is None else _env_list(env),
        "Cmd": None if cmd is None else list(cmd),
        "Entrypoint": None if entrypoint is None else list(entrypoint),
        "WorkingDir": workdir,
        "User": user,
        "Labels": None if labels is None else dict(labels),
        "ExposedPorts": None if exposed_ports is None else _set_of(exposed_ports, port=True),
        "Volumes": None if volumes is None else _set_of(volumes),
        "StopSignal": stop_signal,
        "Healthcheck": None if healthcheck is None else dict(healthcheck),
        "Shell": None if shell is None else list(shell),
    }
    for name, value in given.items():
        if value is None:
            continue
        if value in ("", [], {}):
            section.pop(name, None)
        else:
            section[name] = value
    config["config"] = section
    config["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    config["history"] = copy.deepcopy(history)
    return config


def rootfs_config(diff_id: str, created_by: str) -> dict[str, Any]:
    """The config of a one-layer image made from a root filesystem (as `docker import` does)."""
    return make_config({}, env=[DEFAULT_PATH], diff_ids=[diff_id],
                       history=[{"created_by": created_by, "comment": "imported root filesystem"}])


def image_from_state(store: Store, state: StageState) -> Image:
    """The image a stage has built: its layers and its config (env, workdir, user, shell and
    the rest of the config section the stage carries, with the base image's values in it)."""
    section = dict(state.config)
    author = section.pop("author", None)  # MAINTAINER: top level in OCI, not in `config`
    base: dict[str, Any] = {"config": section}
    if author:
        base["author"] = author
    config = make_config(
        base,
        env=state.env,
        # "/" is where a container starts anyway; leaving it out keeps a base's config as it was.
        workdir="" if state.workdir in ("", "/") else state.workdir,
        user=state.user,
        shell=[] if tuple(state.shell) == DEFAULT_SHELL else list(state.shell),
        diff_ids=[store.layer(layer).diff_id for layer in state.layers],
        history=state.history,
    )
    return Image(config=config, layers=list(state.layers))
