"""What a sandboxed run is given and gives back, and the sandbox's fixed settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 600.0  # wall clock
    memory_bytes: int = 1 << 30
    pids: int = 256  # processes and threads at once
    output_bytes: int = 8 << 20  # stdout + stderr together; the step fails past it
    disk_bytes: int = 4 << 30  # bytes written into the layer (the upper directory)
    # Bounds on what a build is given rather than what it runs (see builds/engine/limits.py).
    files: int = 100_000  # entries one COPY/ADD may write into its layer
    dockerfile_bytes: int = 256 << 10
    steps: int = 500  # instructions in the Dockerfile, FROMs included
    word_bytes: int = 128 << 10  # one expanded ARG/ENV value or word


DEFAULT_LIMITS = Limits()


@dataclass
class RunResult:
    exit_code: int | None  # None when killed for a limit or a cancel
    limit: str | None  # None | "timeout" | "memory" | "pids" | "output" | "disk" | "cancelled"
    message: str  # "" on success; else a sentence a student understands, naming the limit
    tail: list[str]  # the last lines of output (at most 20)
    duration_ms: int


OutputCallback = Callable[[str, str], object]  # (stream "stdout"|"stderr", text); what it returns is ignored

HOSTNAME = "buildkitsandbox"  # what `hostname` prints in a BuildKit RUN
TAIL_LINES = 20
TAIL_LINE_CHARS = 500
PARTIAL_FLUSH_CHARS = 8192  # hand on a chunk with no newline once it is this long
IDLE_FLUSH_S = 0.1  # ... or once its stream has been quiet this long
POLL_S = 0.1  # how often the disk and process limits are checked
CANCEL_POLL_S = 0.05
DRAIN_S = 5.0  # after the sandbox is gone, how long to wait for its pipes to close

# Docker's default capabilities for a container's root (and so for RUN).
DOCKER_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
# Docker's default device rules: device nodes may be made (mknod) but only harmless ones
# opened. The overlay is not mounted nodev, so this is what keeps a layer holding a block
# device away from the host's disks.
DEVICE_RULES = (
    "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
)
NSENTER_IN_SANDBOX = "/dev/.studio-nsenter"  # on bwrap's /dev tmpfs, so never in the layer
SHORT_DIR = "/tmp/.sl"  # where a deep stack's layers are bind-mounted under short names
MOUNTPOINTS = ("dev", "proc")  # bwrap mounts on these, making them when missing
MOUNTPOINTS_LAYER = "studio-sandbox-mountpoints"
SECCOMP_FD = 3  # where bwrap finds the seccomp filter (the spawner puts it there)
STEP_ROOT = "studio-sandbox-root"  # in the temporary directory: where each step's root is mounted
# The host ids a step's ids 0, 1, ... are (see README, Security).
SUBIDS_SETTING = "STUDIO_SANDBOX_SUBUIDS"
DEFAULT_SUBIDS = "100000:65536"
# What Docker masks in a container's /proc and /sys: files read as empty, directories empty,
# and the kernel's controls read-only. A path the kernel lacks is left out.
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


@dataclass(frozen=True)
class Overlay:
    """A step's root, for the spawner to make in the step's own mount namespace: `layers`
    (bottom first) stacked under `upper`, with `work` beside it, and `mounts` over them."""

    layers: tuple[str, ...]
    upper: str
    work: str
    mounts: tuple[Mount, ...] = ()
    network: bool = False  # the host's network; otherwise the spawner's own, offline one


class SandboxError(Exception):
    """The sandbox itself could not run the step (not the command's failure)."""


@dataclass(frozen=True)
class Mount:
    """A RUN --mount as the sandbox makes it: a host directory or file bound at `target`, or a
    tmpfs there. Made over the overlay, so nothing written to it reaches the layer."""

    kind: str  # "bind" | "tmpfs"
    target: str  # absolute, inside the sandbox
    source: Path | None = None  # bind: the host path
    readonly: bool = False
    size: int | None = None  # tmpfs: bytes

