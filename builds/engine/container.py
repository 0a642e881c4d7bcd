"""Containers: an image run in the same sandbox as RUN steps, its writable layer read as a diff,
committed as one more layer (a layer is just a saved diff), or removed.

A container is a directory in the store, containers/<id>/, holding `upper/`: the overlay's upper
directory over the image's layers while it runs, and its writable layer afterwards. It is not in
tmp/, because it outlives the process that ran it (a web page commits or removes it later), and
it is on the store's filesystem, so a commit is a rename into l/ like a RUN step's layer.

The image's layers are the overlay's lower directories, read-only to the container: whatever it
writes, changes or deletes lands in upper/ (deletions as whiteouts, replaced directories as
opaque ones), and the image is the same afterwards, digest for digest.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ImageNotFound, InputError
from .sandbox import DEFAULT_LIMITS, Limits, OutputCallback, RunResult
from .store import FileChange, Image, Store
from .store.tarstream import LayerFormatError, walk_layer

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_LISTED = 500  # changes a diff lists; the counts and sizes cover every one
_ID = re.compile(r"[0-9a-f]{24}")
KILLED_EXIT = 137  # what Docker reports for a container killed (SIGKILL) for a limit
NOT_STARTED_EXIT = 125  # what `docker run` exits with when the container could not start


class ContainerError(InputError):
    """A container that cannot be run, read or committed as asked."""


@dataclass
class Diff:
    """A writable layer as a diff against its image: every change counted and sized, the first
    MAX_LISTED listed (a container can write a hundred thousand files)."""

    changes: list[FileChange]
    added: int = 0
    modified: int = 0
    deleted: int = 0
    size: int = 0  # bytes of file content the layer holds
    total: int = 0  # changes in all, listed or not

    @property
    def truncated(self) -> bool:
        return self.total > len(self.changes)

    def to_json(self) -> dict[str, Any]:
        return {"added": self.added, "modified": self.modified, "deleted": self.deleted, "size": self.size,
                "total": self.total, "truncated": self.truncated,
                "changes": [{"path": c.path, "kind": c.kind, "size": c.size, "change": c.change}
                            for c in self.changes]}


@dataclass
class Ran:
    """What a container run gave: its exit (KILLED_EXIT when a limit stopped it, NOT_STARTED_EXIT
    when the sandbox could not start it), the sandbox's
    result, and its writable layer's diff."""

    container_id: str
    exit_code: int
    result: RunResult
    diff: Diff
    argv: list[str] = field(default_factory=list)


def find_image(store: Store, ref: str) -> Image:
    image = store.get_image(ref) if ref.strip() else None
    if image is None:
        raise ImageNotFound(f"no image {ref!r} in the store (see `manage.py images ls`)")
    return image


def container_argv(config: dict[str, Any], cmd: Sequence[str] | None) -> list[str]:
    """Entrypoint followed by `cmd` when given, else by the image's Cmd, as `docker run` does."""
    section = config.get("config") or {}
    entrypoint = list(section.get("Entrypoint") or [])
    command = list(cmd) if cmd else list(section.get("Cmd") or [])
    argv = entrypoint + command
    if not argv:
        raise ContainerError("the image has no CMD or ENTRYPOINT: give a command to run")
    return argv


def container_env(config: dict[str, Any]) -> dict[str, str]:
    """The image's Env as the process gets it. Refused (ContainerError, naming the variable) when
    an entry has no name or holds a NUL: the kernel passes a process's environment as C strings,
    so no process can be given one, and the sandbox could not start."""
    env: dict[str, str] = {}
    for pair in (config.get("config") or {}).get("Env") or [DEFAULT_PATH]:
        name, _, value = str(pair).partition("=")
        if not name:
            raise ContainerError(f"the image's Env has an entry without a name ({_quoted(str(pair))})")
        if "\x00" in name or "\x00" in value:
            raise ContainerError(f"the image's Env variable {_quoted(name)} holds a NUL character, "
                                 "which no process's environment can carry")
        env[name] = value
    env.setdefault("PATH", DEFAULT_PATH.partition("=")[2])
    return env


def container_check(config: dict[str, Any], cmd: Sequence[str] | None) -> list[str]:
    """The argv the container would run, once its command, Env and WorkingDir are known to be
    ones a process can be given; refused (ContainerError) before anything is made otherwise."""
    argv = container_argv(config, cmd)
    if any("\x00" in word for word in argv):
        raise ContainerError("the container's command holds a NUL character, which no process's "
                             "arguments can carry")
    container_env(config)
    if "\x00" in str((config.get("config") or {}).get("WorkingDir") or ""):
        raise ContainerError("the image's WorkingDir holds a NUL character, which no path can")
    return argv


def _quoted(text: str) -> str:
    """`text` on one line, its control characters escaped (an image's config is anyone's)."""
    return json.dumps(text[:200], ensure_ascii=False)


def container_path(store: Store, container_id: str) -> Path:
    if not _ID.fullmatch(container_id):
        raise ContainerError(f"{container_id!r} is not a container id")
    return store.root / "containers" / container_id


def create(store: Store) -> str:
    """A new container's directory, with an empty writable layer; returns its id."""
    container_id = secrets.token_hex(12)
    upper = container_path(store, container_id) / "upper"
    upper.mkdir(parents=True, mode=0o755)
    upper.chmod(0o755)  # whatever the umask: as an upper directory it is the image's root mode
    return container_id


def run(store: Store, image: Image, cmd: Sequence[str] | None = None, *, container_id: str | None = None,
        limits: Limits = DEFAULT_LIMITS, on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None) -> Ran:
    """Run `image` (its Env, WorkingDir, User, Entrypoint and Cmd, `cmd` replacing the Cmd) in
    the sandbox with `limits` and no network, its output going to `on_output`; then read its
    writable layer. Runs in a new container unless `container_id` names an empty one."""
    from .sandbox.runner import run as sandbox_run  # only a run loads the machinery

    argv = container_check(image.config, cmd)
    section = image.config.get("config") or {}
    container_id = container_id or create(store)
    upper = container_path(store, container_id) / "upper"
    lower = [store.layer_path(layer) for layer in image.layers] or [store.work_dir("scratch")]
    result = sandbox_run(argv, lower=lower, upper=upper, env=container_env(image.config),
                         cwd=str(section.get("WorkingDir") or "/"), user=section.get("User") or None,
                         network=False, limits=limits, on_output=on_output, cancel=cancel,
                         discard=store.discard)
    if result.message.startswith("the step "):  # the sandbox's messages speak of RUN steps
        result.message = "the container " + result.message.removeprefix("the step ")
    exit_code = result.exit_code
    if exit_code is None:
        exit_code = KILLED_EXIT if result.limit is not None else NOT_STARTED_EXIT
    return Ran(container_id, exit_code, result, diff(store, image, container_id), argv)


def diff(store: Store, image: Image, container_id: str, *, listed: int = MAX_LISTED) -> Diff:
    """The container's writable layer against its image: added, modified and deleted paths
    (whiteouts and what opaque directories hide), with sizes. Reads, never changes, the layer."""
    upper = container_path(store, container_id) / "upper"
    if not upper.is_dir():
        raise ContainerError(f"container {container_id} has no writable layer (removed or committed)")
    lowers = [store.layer_path(layer) for layer in reversed(image.layers)]
    try:
        walked = walk_layer(upper, _drop, lowers)
    except LayerFormatError as exc:
        raise ContainerError(f"the writable layer cannot be read: {exc}") from None
    found = Diff(changes=walked.changes[:listed], size=walked.size, total=len(walked.changes))
    for change in walked.changes:
        setattr(found, change.change, getattr(found, change.change) + 1)
    return found


def commit(store: Store, image: Image, container_id: str, *, created_by: str,
           tag: str | None = None) -> Image:
    """Store the container's writable layer as one more layer on top of `image`, with the
    store's own layer code, and make the image of it (tagged `tag` if given). The writable
    layer moves into the store: the container keeps no layer afterwards. A container that
    changed nothing gives an image with an empty history entry and no new layer, as
    `docker commit` does."""
    upper = container_path(store, container_id) / "upper"
    if not upper.is_dir():
        raise ContainerError(f"container {container_id} has no writable layer (removed or committed)")
    layer = store.commit_layer(upper, list(image.layers))
    config = copy.deepcopy(image.config)
    history = list(config.get("history") or [])
    entry: dict[str, Any] = {"created_by": created_by, "comment": "committed container"}
    layers = list(image.layers)
    if layer is None:
        entry["empty_layer"] = True
    else:
        layers.append(layer.id)
        rootfs = dict(config.get("rootfs") or {"type": "layers"})
        rootfs["diff_ids"] = [*(rootfs.get("diff_ids") or []), layer.diff_id]
        config["rootfs"] = rootfs
    config["history"] = [*history, entry]
    new = Image(config=config, layers=layers)
    store.put_image(new)
    if tag:
        store.tag(tag, new.digest)
    remove(store, container_id)
    return new


def remove(store: Store, container_id: str) -> bool:
    """Discard the container and its writable layer. False when there was none."""
    path = container_path(store, container_id)
    if not path.exists():
        return False
    try:
        store.discard(path)  # one rename; the trash is emptied between builds
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
    return True


def exists(store: Store, container_id: str) -> bool:
    return os.path.isdir(container_path(store, container_id) / "upper")


def _drop(data: bytes | memoryview) -> None:
    pass
