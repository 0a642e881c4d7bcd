"""cgroup v1 controllers for a thread's steps: memory, pids and devices limits."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .model import DEVICE_RULES, Limits

_cgroup_names = itertools.count(1)


@dataclass
class Cgroups:
    """A thread's cgroups (v1), one per controller that could be set up. Reused from step to
    step: the counters are cumulative, so each step compares them with its start."""

    dirs: dict[str, Path]
    limits: Limits | None = None
    pids_max: int = 0
    pids_before: int = 0
    ooms_before: int = 0
    settled: bool = False  # the last step's end readings are the baselines

    @classmethod
    def create(cls) -> Cgroups:
        name = f"{os.getpid()}-{next(_cgroup_names)}"
        dirs: dict[str, Path] = {}
        for controller in ("memory", "pids", "devices"):
            base = cgroup_base(controller)
            if base is None:
                continue
            path = base / name
            try:
                path.mkdir()
                if controller == "devices":
                    _write(path / "devices.deny", "a")
                    for rule in DEVICE_RULES:
                        _write(path / "devices.allow", rule)
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()
                continue
            dirs[controller] = path
        return cls(dirs)

    def prepare(self, limits: Limits, sandbox_processes: int) -> bool:
        """Set the limits for the next step and note the counters; False if that failed."""
        try:
            if self.limits is None or self.limits.memory_bytes != limits.memory_bytes:
                self._set_memory(limits.memory_bytes)
            # The spawner and bwrap's own processes are not the step's.
            pids_max = limits.pids + sandbox_processes
            if pids_max != self.pids_max and "pids" in self.dirs:
                _write(self.dirs["pids"] / "pids.max", str(pids_max))
        except OSError:
            return False
        self.limits, self.pids_max = limits, pids_max
        if not self.settled:
            self.pids_before, self.ooms_before = self._pids_events(), self._oom_kills()
        self.settled = False
        return True

    def _set_memory(self, value: int) -> None:
        path = self.dirs.get("memory")
        if path is None:
            return
        # memsw (memory + swap, present with swap accounting) may never be below memory.
        files = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        if self.limits is not None and value > self.limits.memory_bytes:
            files.reverse()
        for filename in files:
            with contextlib.suppress(FileNotFoundError):
                _write(path / filename, str(value))

    def add(self, pid: int) -> None:
        for path in self.dirs.values():
            with contextlib.suppress(OSError):
                _write(path / "cgroup.procs", str(pid))

    def pids_hit(self) -> bool:
        return self._pids_events() > self.pids_before

    def settle(self) -> tuple[bool, bool]:
        """After a step: whether it hit the process limit, and whether the OOM killer struck.
        Nothing runs here between steps, so these readings are the next step's baselines."""
        pids, ooms = self._pids_events(), self._oom_kills()
        hits = (pids > self.pids_before, ooms > self.ooms_before)
        self.pids_before, self.ooms_before, self.settled = pids, ooms, True
        return hits

    def _pids_events(self) -> int:
        return _counter(self.dirs.get("pids"), "pids.events", "max")

    def _oom_kills(self) -> int:
        return _counter(self.dirs.get("memory"), "memory.oom_control", "oom_kill")

    def remove(self) -> None:
        for path in self.dirs.values():
            for delay in (0.0, 0.01, 0.1):  # a process may still be on its way out
                time.sleep(delay)
                with contextlib.suppress(OSError):
                    path.rmdir()
                    break
        self.dirs = {}


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _counter(path: Path | None, filename: str, key: str) -> int:
    if path is None:
        return 0
    try:
        fd = os.open(os.path.join(path, filename), os.O_RDONLY)
        try:
            text = os.read(fd, 4096).decode()
        finally:
            os.close(fd)
    except OSError:
        return 0
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return 0


_cgroup_lock = threading.Lock()


@functools.cache
def cgroup_base(controller: str) -> Path | None:
    """<controller's v1 mount>/<this process's cgroup>/studio, created; None when there is no
    such hierarchy or it is not writable. Nesting under our own cgroup keeps the sandboxes
    inside whatever limits this process already lives under."""
    mount = _v1_mounts().get(controller)
    own = _own_cgroups().get(controller)
    if mount is None or own is None:
        return None
    base = mount / own.lstrip("/") / "studio"
    with _cgroup_lock:
        try:
            base.mkdir(exist_ok=True)
        except OSError:
            return None
        _remove_stale(base)
    return base


def _v1_mounts() -> dict[str, Path]:
    mounts: dict[str, Path] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup":
                for option in fields[sep + 3].split(","):
                    mounts.setdefault(option, Path(fields[4]))
    return mounts


def _own_cgroups() -> dict[str, str]:
    own: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(","):
                own[controller] = path
    return own


def _remove_stale(base: Path) -> None:
    """Cgroups left by processes that died without removing theirs."""
    for path in base.iterdir():
        pid = path.name.split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):
                path.rmdir()
