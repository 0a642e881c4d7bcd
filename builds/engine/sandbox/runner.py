"""Run one RUN step: `run` puts the sandbox's parts together (see the package's docstring),
and `available` says whether it can run on this machine."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from . import syscalls
from .bwrap import (
    bwrap_args,
    bwrap_path,
    inside_path,
    mount_stubs,
    mountpoints_layer,
    options_too_long,
    overlay_problem,
    step_root,
)
from .cgroups import cgroup_base
from .model import DEFAULT_LIMITS, Limits, Mount, OutputCallback, Overlay, RunResult, SandboxError
from .spawner import Ahead, check_spawner, step_rlimits, thread_worker, worker_ahead
from .upper import remove_work, tidy_upper
from .users import nsenter, resolve_user
from .watch import Output, classify, execute, ms_since, outcome

__all__ = ["available", "make_overlay_work_dir", "overlay_work_dir", "run", "start_ahead"]

# Processes in a step's cgroups that are not the step's: the spawner, its launcher and bwrap
# (or, without a launcher, an outer bwrap for a deep stack), with room for one more.
SANDBOX_PROCESSES = 4


def start_ahead(limits: Limits = DEFAULT_LIMITS) -> Ahead:
    """Start making a spawner and its cgroups now, in a thread of their own, for this process's
    first RUN to take (about 50 ms it then does not wait for): the warm engine's spare does while
    it waits for a caller. Where the sandbox cannot start, that first RUN says why."""
    return worker_ahead(limits, sandbox_processes=SANDBOX_PROCESSES)


def run(
    argv: list[str],
    *,
    lower: list[Path],
    upper: Path,
    env: Mapping[str, str],
    cwd: str,
    user: str | None = None,
    network: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    on_output: OutputCallback | None = None,
    cancel: threading.Event | None = None,
    mounts: Sequence[Mount] = (),
    discard: Callable[[Path], None] | None = None,
    on_started: Callable[[], object] | None = None,
) -> RunResult:
    """Run `argv` as the step's process. `lower` are the parent layers' directories, bottom
    first (the base image's first); `upper` an empty directory that receives the writes; `cwd`
    the working directory inside (created when missing, as BuildKit does); `user` the USER
    ("name", "uid", "uid:gid", "name:group", resolved against the image's /etc/passwd and
    /etc/group). Own PID, IPC, UTS, network (unless `network`) and mount namespaces; the
    process dies with its parent. Output streams to `on_output` as it arrives, line-buffered
    where possible. `mounts` go over the overlay, in order. Never raises for the command's own
    failure: the result says what happened. `discard` takes what is left to delete (into the
    store's trash, emptied between builds) instead of deleting it now. `on_started` is called
    once the step's processes are started."""
    started = time.monotonic()
    out = Output(limits.output_bytes, on_output)
    work = overlay_work_dir(upper)
    with contextlib.suppress(FileExistsError):  # made ahead (make_overlay_work_dir)
        work.mkdir(0o700)
    stubs: Path | None = None
    try:
        ids = resolve_user(user, lower)
        layers = [str(mountpoints_layer()), *(str(p) for p in lower)]
        if mounts:
            stubs = Path(tempfile.mkdtemp(prefix=f".sandbox-stubs-{upper.name}-", dir=upper.parent))
            if mount_stubs(mounts, lower, stubs):
                layers.append(str(stubs))
        worker = thread_worker(limits, sandbox_processes=SANDBOX_PROCESSES)
        devices = "devices" in worker.cgroups.dirs
        overlay: Overlay | None = None
        root: str | None = None
        deep = False
        if worker.spawner.isolated:
            # Layers are handed to overlayfs as descriptors: no options to outgrow, however deep.
            root = str(step_root())
            overlay = Overlay(tuple(os.path.abspath(layer) for layer in layers), os.path.abspath(upper),
                              os.path.abspath(work), tuple(mounts), network)
        else:
            deep = options_too_long(layers, upper, work)
        args = bwrap_args(argv, layers, deep, upper, work, env, inside_path(cwd), ids, network, devices,
                          mounts, root)
        exit_code, reason = execute(worker, args, step_rlimits(limits, worker.cgroups), limits, out,
                                    upper, cancel, started, overlay, on_started)
        reason = classify(exit_code, reason, worker.cgroups, upper, limits)
    except SandboxError as e:
        return RunResult(None, None, str(e), out.tail(), ms_since(started))
    finally:
        remove_work(work, discard)
        if stubs is not None:
            shutil.rmtree(stubs, ignore_errors=True)  # a few empty entries
        tidy_upper(upper, lower)
    return outcome(exit_code, reason, limits, out, started)


def overlay_work_dir(upper: Path) -> Path:
    """The overlay's work directory for the step whose upper directory is `upper`: on the same
    filesystem, as overlayfs requires, beside it and named after it (upper names are never
    used twice), so whoever reclaims a dead build's upper (see Store.reclaim) takes it too."""
    return upper.parent / f".sandbox-work-{upper.name}"


def make_overlay_work_dir(upper: Path) -> Path:
    """Make the work directory `run` will use for `upper` now, ahead of the step."""
    work = overlay_work_dir(upper)
    work.mkdir(0o700)
    return work


def _isolation_problem() -> str | None:
    """Whether the seccomp filter compiles and, as root, a spawner makes its user namespace."""
    try:
        syscalls.bpf()
        if os.getuid() == 0:
            check_spawner()
    except (RuntimeError, SandboxError) as e:
        return str(e)
    return None


@functools.cache
def available() -> tuple[bool, str]:
    """Whether the sandbox can run here, and if not, why (for /healthz)."""
    try:
        version = subprocess.run([bwrap_path(), "--version"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return False, f"bubblewrap does not run: {e}"
    problem = overlay_problem() or _isolation_problem()
    if problem:
        return False, problem
    notes = [f"{version} with overlayfs"]
    if os.getuid() != 0:
        notes.append("not root: steps run as this user, and their files are all owned by it")
    missing = [c for c in ("memory", "pids", "devices") if cgroup_base(c) is None]
    if missing:
        notes.append(f"no usable {'/'.join(missing)} cgroup: those limits fall back to rlimits, "
                     "which are weaker (a fork bomb as root is only stopped by the timeout)")
    if nsenter() is None:
        notes.append("no static busybox: steps after a non-root USER cannot run")
    return True, "; ".join(notes)

