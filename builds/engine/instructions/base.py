"""What every instruction module builds on: the stage's state and the Step base class.

A step is either metadata-only (ENV, LABEL, CMD, ...: it changes the image config and, where
BuildKit lets it, the inputs of later steps) or a filesystem step (RUN, COPY, ADD, WORKDIR:
it has a cache key and, on a miss, writes a new layer into an empty upper directory).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .. import registry
from ..dockerfile import Instruction, expand
from ..errors import DockerfileError, ImageNotFound
from ..rootfs import RootFS
from ..sandbox import Limits

if TYPE_CHECKING:
    from ..context import BuildContext
    from ..store import Image, Store

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ("/bin/sh", "-c")


@dataclass
class StageState:
    """Where a stage stands after the steps so far: its filesystem (layers and the key that
    names them) and its image config (env, workdir, user, ...)."""

    label: str
    key: str  # cache key of the filesystem so far
    layers: list[str]  # layer ids, bottom first
    env: dict[str, str]  # ENV, in order of definition (the base image's first)
    args: dict[str, str | None]  # ARGs declared in this stage -> value (None: declared, no value)
    workdir: str = "/"
    user: str = ""
    shell: tuple[str, ...] = DEFAULT_SHELL
    config: dict[str, Any] = field(default_factory=dict)  # the OCI "config" section, besides the above
    history: list[dict[str, Any]] = field(default_factory=list)
    # The step that made the current filesystem, and the first step of this chain that this
    # build rebuilt (what every later miss in the chain is a consequence of).
    last_step: int | None = None
    rebuilt_from: int | None = None
    cmd_set: bool = False  # CMD given in this stage (ENTRYPOINT then keeps it)

    def clone(self) -> StageState:
        return copy.deepcopy(self)

    def arg_values(self) -> dict[str, str]:
        return {k: v for k, v in self.args.items() if v is not None}

    def expansion_env(self) -> dict[str, str]:
        """What `$VAR` sees in ADD/COPY/ENV/WORKDIR/...: ARGs with values, ENV winning."""
        return {**self.arg_values(), **self.env}

    def run_env(self) -> dict[str, str]:
        """A RUN's environment: ENV, then the stage's ARGs with values that ENV does not set."""
        env = dict(self.env)
        for name, value in self.arg_values().items():
            env.setdefault(name, value)
        return env


@dataclass
class BuildEnv:
    """What steps share across one build."""

    store: Store
    context: BuildContext
    dockerfile_name: str
    escape: str
    build_args: Mapping[str, str]
    meta_args: Mapping[str, str | None]  # ARGs before the first FROM, with their values
    stage_states: dict[str, StageState]  # finished stages by label and by index string
    limits: Limits
    cancel: threading.Event | None = None
    on_output: Callable[[str, str], object] | None = None
    # Called once a RUN step's processes have started, while the build waits for them.
    on_started: Callable[[], object] | None = None
    # The context is the build's own (written for it, deleted after, changed by nobody):
    # COPY may take its files over as store blobs instead of copying them.
    context_owned: bool = False
    # An image a `--from` names, by reference: a build's pulls one the store lacks (reporting
    # on the current step) and raises ImageNotFound saying why it could not; None (a
    # prediction) looks in the store alone.
    find_image: Callable[[str], Image] | None = None
    # The cache scope the build reads and writes: its RUN --mount=type=cache directories are its own.
    cache_scope: str = ""


@dataclass
class Planned:
    """A filesystem step's cache inputs, and notes kept beside them to explain a later miss
    (not hashed)."""

    inputs: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)
    # COPY/ADD: path -> digest of every file read, computed only when the step misses (it is
    # what a later build compares against to name the files that changed).
    manifest: Callable[[], dict[str, str]] | None = None


class Step:
    keyword: ClassVar[str] = ""
    metadata_only: ClassVar[bool] = False

    def __init__(self, ins: Instruction, build: BuildEnv) -> None:
        self.ins = ins
        self.build = build

    # -- helpers shared by instructions --------------------------------------------------------
    def error(self, message: str) -> DockerfileError:
        return DockerfileError(message, file=self.build.dockerfile_name, line=self.ins.line)

    def expand(self, word: str, state: StageState) -> str:
        return expand(word, state.expansion_env(), escape=self.build.escape)

    def rootfs(self, state: StageState) -> RootFS:
        return RootFS([self.build.store.layer_path(layer) for layer in state.layers])

    def source_rootfs(self, name: str, state: StageState, *, what: str) -> RootFS:
        """The files of an earlier stage or an image named by `--from=name` (`what` names the
        flag in the error)."""
        store = self.build.store
        ref = self.expand(name, state)
        stage = self.build.stage_states.get(ref.lower())
        if stage is not None:
            return RootFS([store.layer_path(layer) for layer in stage.layers])
        if self.build.find_image is not None:
            try:
                image = self.build.find_image(ref)
            except ImageNotFound as exc:
                raise ImageNotFound(f"{what}={ref}: no earlier stage or stored image of that name, and "
                                    f"{exc.message}",
                                    file=self.build.dockerfile_name, line=self.ins.line) from None
        else:
            found = registry.local_image(store, ref)
            if found is None:
                raise ImageNotFound(f"{what}={ref}: no earlier stage or image of that name in the store "
                                    "(a build pulls a missing image)",
                                    file=self.build.dockerfile_name, line=self.ins.line)
            image = found
        return RootFS([store.layer_path(layer) for layer in image.layers])

    def history(self, state: StageState, created_by: str, *, empty_layer: bool) -> None:
        entry: dict[str, Any] = {"created_by": created_by, "comment": "dockerfile-studio"}
        if empty_layer:
            entry["empty_layer"] = True
        state.history.append(entry)

    # -- what each instruction implements ------------------------------------------------------
    def writes_files(self, state: StageState) -> bool:
        """Whether this step is a filesystem step (asked after `apply`)."""
        return not self.metadata_only

    def apply(self, state: StageState) -> None:
        """Metadata effect on the stage (both kinds may have one: WORKDIR sets the workdir)."""

    def plan(self, state: StageState) -> Planned:
        """A filesystem step's cache inputs. May read the context or earlier stages; runs nothing."""
        raise NotImplementedError

    def execute(self, state: StageState, upper: Path) -> None:
        """On a miss: write the step's changes into `upper` (an empty directory). Raise
        StepFailed or an InputError when it cannot."""
        raise NotImplementedError
