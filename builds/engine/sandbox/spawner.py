"""The per-thread spawner process that starts bwrap inside the thread's cgroups."""

from __future__ import annotations

import array
import contextlib
import errno
import json
import os
import resource
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field

from .cgroups import Cgroups
from .model import Limits, Overlay, SandboxError

# -- the spawner ------------------------------------------------------------------------------
#
# A small Python process per thread (started once, about 25 ms), living in the thread's
# cgroups. It spawns bwrap with the step's pipes (posix_spawn: no fork of itself), reaps it and
# sends back one message, its status. If the thread's end of the socket closes (this process
# died), it kills the step and exits. The rlimits are its own, inherited by what it spawns:
# it only ever lowers them (raising needs CAP_SYS_RESOURCE, which root may lack), and a step
# that needs higher ones gets a new spawner. Should the memory cgroup's OOM killer pick the
# spawner over the step's processes, the step dies with it and is reported as out of memory.
#
# Where it may (as root), the spawner keeps a mount namespace of its own and mounts each step's
# overlay there itself, `volatile`, for bwrap to bind as its root. Overlayfs syncs its upper
# filesystem when it is unmounted unless it is volatile, and bwrap's own overlay mounts are not:
# every step would then wait, on leaving, for all the data written anywhere on the store's disk
# to reach it (after a 200 MB COPY, a `RUN find` took three times as long). A layer needs no
# more durability than the rest of the store, which leaves flushing to the kernel.

_SPAWNER = r"""
import array, ctypes, json, os, resource, select, signal, socket, sys

sock = socket.socket(fileno=int(sys.argv[2]))
sock.set_inheritable(False)
libc = ctypes.CDLL(None, use_errno=True)
# PR_SET_CHILD_SUBREAPER: when a step is killed, bwrap's orphaned init comes here to be reaped
# (a zombie still counts against the pids cgroup).
libc.prctl(36, 1, 0, 0, 0)


def own_mounts():
    # CLONE_NEWNS, then MS_REC | MS_SLAVE on /: mounts made here never reach the host, and they
    # all go when this process and its steps have.
    return libc.unshare(0x20000) == 0 and libc.mount(None, b"/", None, 0x4000 | 0x80000, None) == 0


def mount_overlay(target, options):
    for extra in (",volatile", ""):  # volatile is Linux 5.10's
        if libc.mount(b"overlay", target.encode(), b"overlay", 0, (options + extra).encode()) == 0:
            return
        error = ctypes.get_errno()
    raise OSError(error, f"cannot mount the overlay: {os.strerror(error)}")


def unmount(overlay):
    if overlay:
        libc.umount2(overlay["target"].encode(), 2)  # MNT_DETACH


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
    overlay = request.get("overlay")
    try:
        if overlay:
            mount_overlay(overlay["target"], overlay["options"])
        for which, value in request["rlimits"]:
            if resource.getrlimit(which) != (value, value):
                resource.setrlimit(which, (value, value))
        actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, fds[0], 1), (os.POSIX_SPAWN_DUP2, fds[1], 2)]
        # Python ignores SIGPIPE and SIGXFSZ; a step must get the defaults back, or `yes | head`
        # never ends (yes is no longer killed when head closes the pipe).
        return os.posix_spawn(request["argv"][0], request["argv"], {}, file_actions=actions,
                              setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
    except BaseException:
        unmount(overlay)
        raise
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


mounts = os.getuid() == 0 and own_mounts()
sock.send(b"ready mounts" if mounts else b"ready")
while True:
    msg, fds = receive()
    if not msg:
        break
    if msg == b"kill":  # meant for a step that had ended already
        continue
    reap()
    try:
        request = json.loads(msg)
        pid = spawn(request, fds)
    except (OSError, ValueError) as e:
        sock.send(json.dumps({"error": str(e)}).encode())
        continue
    status = wait(pid)
    kill_orphans()
    unmount(request.get("overlay"))
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
        # Whether it mounts steps' overlays itself (see above), or leaves that to bwrap.
        self.mounts = ready == b"ready mounts"
        if ready not in (b"ready", b"ready mounts"):
            self.close()
            raise SandboxError("the sandbox's spawner did not start")

    def spawn(self, argv: list[str], rlimits: list[tuple[int, int]], stdout: int, stderr: int,
              overlay: Overlay | None = None) -> None:
        """Ask for bwrap to be started, after mounting `overlay` when given (only if `mounts`);
        its status (or why it could not start) comes later."""
        fields: dict[str, object] = {"argv": argv, "rlimits": rlimits}
        if overlay is not None:
            fields["overlay"] = {"target": overlay.target, "options": overlay.options}
        request = json.dumps(fields).encode()
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
class Worker:
    """A thread's cgroups and the spawner that lives in them."""

    cgroups: Cgroups
    spawner: _Spawner
    pid: int = field(default_factory=os.getpid)  # a forked child (a prefork pool) must not share it

    def usable(self, limits: Limits, sandbox_processes: int) -> bool:
        """Whether it can run a step with these limits (preparing its cgroups for it)."""
        return (self.pid == os.getpid() and self.spawner.alive()
                and self.spawner.can_lower_to(step_rlimits(limits, self.cgroups))
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


def thread_worker(limits: Limits, *, sandbox_processes: int) -> Worker:
    worker: Worker | None = getattr(_local, "worker", None)
    if worker is not None and not worker.usable(limits, sandbox_processes):
        worker.close()
        worker = None
    if worker is None:
        cgroups = Cgroups.create()
        try:
            spawner = _Spawner()
        except BaseException:
            cgroups.remove()
            raise
        cgroups.add(spawner.proc.pid)
        worker = Worker(cgroups, spawner)
        if not cgroups.prepare(limits, sandbox_processes):
            worker.close()
            raise SandboxError("the sandbox could not set its limits")
        _local.worker = worker
    return worker


def forget_worker() -> None:
    """Drop this thread's worker, whose spawner was killed mid-step: the next step makes another."""
    _local.worker = None


def step_rlimits(limits: Limits, cgroups: Cgroups) -> list[tuple[int, int]]:
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

