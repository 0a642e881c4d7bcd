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

from . import syscalls
from .bwrap import mountpoints_layer, step_root
from .cgroups import Cgroups
from .model import DEFAULT_SUBIDS, SUBIDS_SETTING, Limits, Overlay, SandboxError

# -- the spawner ------------------------------------------------------------------------------
#
# A small Python process per thread (started once, about 25 ms), living in the thread's
# cgroups. For each step it forks a child that makes the step's root and execs bwrap with the
# step's pipes and the seccomp filter (fd 3), reaps it and sends back one message, its status;
# as root, a step without the network goes to its launcher instead, a second process that
# starts bwrap without forking an interpreter (see "the launcher" in the program below).
# If the thread's end of the socket closes (this process died), it kills the step and exits.
# The rlimits are its own, inherited by what it spawns: it only ever lowers them (raising needs
# CAP_SYS_RESOURCE, which root may lack), and a step that needs higher ones gets a new spawner.
# Should the memory cgroup's OOM killer pick the spawner over the step's processes, the step
# dies with it and is reported as out of memory.
#
# As root, the spawner also moves into a network namespace of its own, with only its loopback
# up, that the steps it spawns one after another run in: a namespace made and torn down for
# each step cost about 1.3 ms of it. It belongs to the host's user namespace, so a step (root
# only in its own user namespace, without CAP_NET_ADMIN anyway) can change nothing in it: no
# address, route, firewall rule or sysctl. What a step opens there (a listening port, an
# abstract unix socket) is its processes', and none outlives the step: its first process is
# the PID namespace's init, whose end kills the rest, and the spawner runs one step at a time.
# A step given the network is spawned back in the host's namespace.
#
# As root, the spawner makes a user namespace mapping the subordinate range and a mount
# namespace owned by it, and lives in that mount namespace (still as the host's root, so that
# the trees it clones belong to the user namespace). It clones the step's layers as idmapped
# mounts; the child (or the launcher), root in the user namespace, unshares a mount namespace
# of the step's own and mounts the overlay there from the clones, `volatile`, for bwrap to bind
# as its root.
# Nothing is mounted on the host, and all of it goes with the step. Overlayfs syncs its upper
# filesystem when it is unmounted unless it is volatile: every step would then wait, on
# leaving, for all the data written anywhere on the store's disk to reach it (after a 200 MB
# COPY, a `RUN find` took three times as long). A layer needs no more durability than the rest
# of the store, which leaves flushing to the kernel.

_SPAWNER = r"""
import array, contextlib, ctypes, fcntl, json, os, resource, select, signal, socket, struct, sys

sock = socket.socket(fileno=int(sys.argv[2]))
sock.set_inheritable(False)
SUBIDS = tuple(int(n) for n in sys.argv[3].split(":"))  # (first host id, how many)
SECCOMP = bytes.fromhex(sys.argv[4])
ROOT = sys.argv[5]  # the mount point of each step's root, inside the step's own mount namespace
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
# PR_SET_CHILD_SUBREAPER: when a step is killed, bwrap's orphaned init comes here to be reaped
# (a zombie still counts against the pids cgroup).
libc.prctl(36, 1, 0, 0, 0)

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x20000, 0x10000000, 0x40000000
MS_REC, MS_SLAVE, MNT_DETACH = 0x4000, 0x80000, 0x2
O_CLOEXEC, AT_FDCWD, AT_EMPTY_PATH = 0o2000000, -100, 0x1000
OPEN_TREE_CLONE, MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH = 1, 0x4, 0x40
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_IDMAP = 0x1, 0x2, 0x4, 0x100000
FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING, FSCONFIG_SET_FD, FSCONFIG_CMD_CREATE = 0, 1, 5, 6
RESOLVE_NO_MAGICLINKS, RESOLVE_IN_ROOT = 0x2, 0x10
SYS = {"open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
       "openat2": 437, "mount_setattr": 442}


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def sys_(name, *args):
    result = libc.syscall(SYS[name], *args)
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{name}: {os.strerror(error)}")
    return result


def checked(result, what):
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


# Host mounts that no step and nothing starting one uses: a step gets a /dev of its own and no
# /sys. Each mount in the namespace a step starts in costs it time: bwrap reads the whole mount
# table back after each of its binds (about 20 a step), and the kernel renders every line of it
# each time; leaving out /sys's cgroup trees took a step's bwrap from 5.7 to 4.4 ms here.
UNUSED_MOUNTS = ("/sys", "/dev/shm", "/dev/pts", "/dev/mqueue", "/dev/hugepages")


def without_unused_mounts():
    # In a mount namespace of our own, still the host user namespace's, whose mounts are slaves
    # first: an unmount here must never travel back to the host's (a shared mount's would).
    if libc.unshare(CLONE_NEWNS) != 0 or libc.mount(None, b"/", None, MS_REC | MS_SLAVE, None) != 0:
        return False
    for path in UNUSED_MOUNTS:
        while libc.umount2(path.encode(), MNT_DETACH) == 0:  # mounts stacked on one path too
            pass
    return True


def isolate():
    # A user namespace mapping the subordinate range (its uid 0 is an unprivileged host uid), and
    # a mount namespace it owns, which this process (still the host's root) then joins: a tree
    # cloned here belongs to the user namespace, so the step's root there can stack it.
    # Mounts from the host keep reaching it (they come in as slaves) and none go back.
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(go_w)
        ok = without_unused_mounts() and libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0
        os.write(ready_w, b"1" if ok else b"0")
        os.read(go_r, 1)
        os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError("cannot make a user namespace")
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(f"0 {SUBIDS[0]} {SUBIDS[1]}\n")
        userns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | O_CLOEXEC)
        mntns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | O_CLOEXEC)
    finally:
        os.close(go_w)
        os.close(ready_r)
        os.waitpid(pid, 0)
    checked(libc.setns(mntns, CLONE_NEWNS), "setns")
    os.close(mntns)
    return userns


def offline():
    # The network namespace the steps share (see above): made by the host's root, so owned by
    # the host's user namespace, with its loopback up. Returns the host's, for a step given
    # the network.
    host = os.open("/proc/self/ns/net", os.O_RDONLY | O_CLOEXEC)
    checked(libc.unshare(CLONE_NEWNET), "unshare")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        IFF_UP, IFF_LOOPBACK, IFF_RUNNING, SIOCSIFFLAGS = 0x1, 0x8, 0x40, 0x8914
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", IFF_UP | IFF_LOOPBACK | IFF_RUNNING, b""))
    return host


def idmapped(path, userns, readonly=False, optional=False):
    # A private copy of the tree at `path` whose on-disk ids 0..n show as the range's: the
    # step's root (host uid first+0) writes files that are owned by 0 on disk.
    fd = sys_("open_tree", AT_FDCWD, path.encode(), ctypes.c_uint(OPEN_TREE_CLONE | O_CLOEXEC))
    attr = MountAttr(MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
                     | (MOUNT_ATTR_RDONLY if readonly else 0), 0, 0, userns)
    try:
        sys_("mount_setattr", fd, b"", ctypes.c_uint(AT_EMPTY_PATH), ctypes.byref(attr), ctypes.c_size_t(32))
    except OSError as e:
        if e.errno != 22:
            raise
        if optional:  # only mount points: their owner does not matter
            return fd
        raise OSError(22, f"{path} is on a filesystem without idmapped mounts (overlayfs has none): "
                          "put the store on ext4, xfs, btrfs or tmpfs") from None
    return fd


def fsconfig(fs, command, key=None, value=None, aux=0):
    sys_("fsconfig", fs, command, key and key.encode(), value, aux)


def new_mount(fs):
    fsconfig(fs, FSCONFIG_CMD_CREATE)
    return sys_("fsmount", fs, 1, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)


def attach(tree, where, path=""):
    sys_("move_mount", tree, b"", where, path.encode(),
         MOVE_MOUNT_F_EMPTY_PATH | (MOVE_MOUNT_T_EMPTY_PATH if not path else 0))


def inside(root, target):
    # The target as the step would see it: symlinks resolve within the root, never onto the host.
    how = OpenHow(os.O_PATH | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    return sys_("openat2", root, target.encode(), ctypes.byref(how), ctypes.c_size_t(24))


# Idmapped clones of the layers (and of the directory holding the uppers), by path, kept
# from step to step: a build's steps stack the same layers again and again, and cloning each
# one, then letting the kernel tear it down when the step ends, cost every step time in
# proportion to the image's depth. Layers never change once stored; one that is deleted (its
# clone's directory has no link left) or stored again under its path is cloned afresh. The
# clones are this process's descriptors, closed on exec: a step never holds one.
CLONES = {}
MAX_CLONES = 256


def clone(path, optional=False):
    fd = CLONES.pop(path, None)
    if fd is not None:
        try:
            held, now = os.fstat(fd), os.stat(path)
            if held.st_nlink > 0 and (held.st_ino, held.st_dev) == (now.st_ino, now.st_dev):
                CLONES[path] = fd  # the most recently used last
                return fd
        except OSError:
            pass
        os.close(fd)
    fd = idmapped(path, userns, optional=optional)
    CLONES[path] = fd
    return fd


def step_clones(overlay):
    # In this process, before the fork: what the child stacks. The least recently used clones
    # go beyond MAX_CLONES, once the step's own are all made (never one of those: its
    # descriptor's number could be reused by the next clone).
    step = {}  # each path once: a clone found stale is closed, and must not be one in use
    for layer in overlay["layers"]:
        if layer not in step:
            step[layer] = clone(layer, optional=layer in overlay["optional"])
    lowers = [step[layer] for layer in overlay["layers"]]
    above = os.path.dirname(overlay["upper"])  # upper and work share it
    parent = step[above] if above in step else clone(above)
    used = set(lowers) | {parent}
    for path in [path for path, fd in CLONES.items() if fd not in used][:max(0, len(CLONES) - MAX_CLONES)]:
        os.close(CLONES.pop(path))
    return lowers, parent


def bind_clones(overlay):
    # As the host's root: idmapped copies of what the step binds (None for a tmpfs).
    return [idmapped(m["source"], userns, m["readonly"]) if m["kind"] == "bind" else None
            for m in overlay["mounts"]]


def enter_userns():
    checked(libc.setns(userns, CLONE_NEWUSER), "setns")
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def mount_root(overlay, clones, binds):
    # As the user namespace's root, in a mount namespace of the step's own (gone when it is):
    # the step's layers stacked on their idmapped copies, then the step's own mounts over them.
    # Every descriptor it opens is closed again: the launcher lives on after the step.
    lowers, parent = clones
    checked(libc.unshare(CLONE_NEWNS), "unshare")
    flags = os.O_PATH | os.O_DIRECTORY | O_CLOEXEC
    with opened(os.open(os.path.basename(overlay["upper"]), flags, dir_fd=parent)) as upper, \
            opened(os.open(os.path.basename(overlay["work"]), flags, dir_fd=parent)) as work, \
            opened(sys_("fsopen", b"overlay", 1)) as fs:
        fsconfig(fs, FSCONFIG_SET_STRING, "source", b"overlay")
        for lower in reversed(lowers):  # topmost first
            fsconfig(fs, FSCONFIG_SET_FD, "lowerdir+", None, lower)
        fsconfig(fs, FSCONFIG_SET_FD, "upperdir", None, upper)
        fsconfig(fs, FSCONFIG_SET_FD, "workdir", None, work)
        fsconfig(fs, FSCONFIG_SET_FLAG, "userxattr")
        # Without volatile, leaving the step would sync the whole store's disk (see above).
        fsconfig(fs, FSCONFIG_SET_FLAG, "volatile")
        with opened(new_mount(fs)) as tree:
            attach(tree, AT_FDCWD, ROOT)
    with opened(os.open(ROOT, os.O_PATH | os.O_DIRECTORY | O_CLOEXEC)) as root:
        for mount, tree in zip(overlay["mounts"], binds):
            if tree is None:  # a tmpfs, made here so that the step's root owns it
                with opened(sys_("fsopen", b"tmpfs", 1)) as fs:
                    fsconfig(fs, FSCONFIG_SET_STRING, "mode", b"0755")
                    if mount.get("size"):
                        fsconfig(fs, FSCONFIG_SET_STRING, "size", str(mount["size"]).encode())
                    with opened(new_mount(fs)) as tmpfs, opened(inside(root, mount["target"])) as target:
                        attach(tmpfs, target)
            else:  # the caller's to close
                with opened(inside(root, mount["target"])) as target:
                    attach(tree, target)


@contextlib.contextmanager
def opened(fd):
    try:
        yield fd
    finally:
        os.close(fd)


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
    # Nothing of a step may outlive it, so whatever child is left once bwrap has gone is killed
    # (not the launcher, which is this process's child too).
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            orphans = [int(pid) for pid in f.read().split()]
    except OSError:
        return
    for pid in orphans:
        if launcher and pid == launcher[0]:
            continue
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def receive(conn, most=2):
    fds = array.array("i")
    msg, ancillary, _, _ = conn.recvmsg(1 << 21, socket.CMSG_SPACE(most * fds.itemsize),
                                        socket.MSG_CMSG_CLOEXEC)
    for _, _, data in ancillary:
        fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    return msg, list(fds)


def child(request, fds, errors, clones):
    overlay = request.get("overlay")
    if overlay:
        if overlay.get("network"):
            checked(libc.setns(hostnet, CLONE_NEWNET), "setns")
        binds = bind_clones(overlay)
        enter_userns()
        mount_root(overlay, clones, binds)
    seccomp = os.memfd_create("seccomp")  # bwrap reads the filter from fd 3
    os.write(seccomp, SECCOMP)
    os.lseek(seccomp, 0, os.SEEK_SET)
    null = os.open("/dev/null", os.O_RDONLY)
    for fd, target in ((null, 0), (fds[0], 1), (fds[1], 2), (seccomp, 3)):
        os.dup2(fd, target)
    # Python ignores SIGPIPE and SIGXFSZ; a step must get the defaults back, or `yes | head`
    # never ends (yes is no longer killed when head closes the pipe).
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    os.execv(request["argv"][0], request["argv"])


def spawn(msg, request, fds):
    # Start the step: by the launcher (None: its status comes from there, see relay) or by a
    # forked child (its pid).
    try:
        for which, value in request["rlimits"]:
            if resource.getrlimit(which) != (value, value):
                resource.setrlimit(which, (value, value))
        overlay = request.get("overlay")
        clones = step_clones(overlay) if overlay else None
        if overlay and not overlay.get("network") and hand_over(msg, overlay, fds, clones):
            return None
        read, write = os.pipe()
        errors = fcntl.fcntl(write, fcntl.F_DUPFD_CLOEXEC, 10)  # clear of the fds 0-3 it sets up
        os.close(write)
        pid = os.fork()
        if pid == 0:  # one thread here, so the child may do anything before exec
            os.close(read)
            try:
                child(request, fds, errors, clones)
            except BaseException as e:
                os.write(errors, str(e).encode()[:4096] or b"failed")
            os._exit(127)
        os.close(errors)
        failure = os.read(read, 4096)
        os.close(read)
        if failure:  # the child never reached bwrap
            os.waitpid(pid, 0)
            raise OSError(failure.decode("utf-8", "replace"))
        return pid
    finally:
        for fd in fds:
            os.close(fd)


def wait(pid, control):
    # bwrap's exit status; a message on `control` kills it first, and its end ends us too.
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(control, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == pidfd:
                os.close(pidfd)
                return os.waitpid(pid, 0)[1]
            message = control.recv(64)
            os.kill(pid, 9)  # b"kill", or the owner is gone
            if not message:
                os.waitpid(pid, 0)
                kill_orphans()
                sys.exit()


def serve(conn, most, start):
    # One step at a time, until `conn` closes: each request on it is started by `start` (which
    # gives the pid of the bwrap to wait for, or None when the launcher has it: see relay) and
    # answered with bwrap's status, or with why it could not start.
    while True:
        msg, fds = receive(conn, most)
        if not msg:
            return
        if msg == b"kill":  # meant for a step that had ended already
            continue
        reap()
        try:
            pid = start(msg, json.loads(msg), fds)
        except (OSError, ValueError) as e:
            conn.send(json.dumps({"error": str(e)}).encode())
            continue
        if pid is None:
            conn.send(relay())
            continue
        status = wait(pid, conn)
        kill_orphans()
        conn.send(json.dumps({"status": status}).encode())


# -- the launcher -------------------------------------------------------------------------------
#
# As root, a step without the network is started by a second process, forked from this one as
# it starts (and again at the next step after one died): it enters the user namespace once, as
# its root, and for each step unshares a mount namespace, mounts the step's root there from the
# trees this process cloned and sent it, starts bwrap with posix_spawn and goes back to its
# first mount namespace. So bwrap starts from a vfork, where a forked interpreter that entered
# the namespace and then exec'd it cost every step about 1.5 ms more (its pages copied on write,
# then torn down by the exec). It waits for bwrap and sends its status here, to be passed on,
# and dies with this process. A step given the network still starts from a forked child, which
# can enter the host's network namespace (the launcher, root only in its own, cannot).

MAX_SENT = 250  # descriptors in one message (the kernel takes at most 253)
launcher = None  # (pid, pidfd, socket) while one runs; False where it cannot


def hand_over(msg, overlay, fds, clones):
    global launcher
    lowers, parent = clones
    too_many = len(fds) + len(lowers) + 1 + len(overlay["mounts"]) > MAX_SENT
    if userns is None or launcher is False or too_many:
        return False
    if launcher is None:
        launcher = start_launcher()
        if not launcher:
            return False
    binds = bind_clones(overlay)
    try:
        sent = array.array("i", [*fds, *lowers, parent, *(tree for tree in binds if tree is not None)])
        launcher[2].sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, sent)])
    except OSError:  # it died between two steps: this one takes the other way, the next a new one
        stop_launcher()
        return False
    finally:
        for tree in binds:
            if tree is not None:
                os.close(tree)
    return True


def start_launcher():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            sock.detach()  # the owner's socket stays the spawner's: closed below with the rest
            launch_steps(theirs, os.getppid())
        except Exception as e:
            with contextlib.suppress(OSError):
                theirs.send(b"failed " + str(e).encode()[:1000])
        finally:
            os._exit(0)
    theirs.close()
    if ours.recv(2048) != b"ready":
        ours.close()
        os.waitpid(pid, 0)
        return False
    # Signalled through a pidfd: once reap() has taken it, its pid may be another process's.
    return pid, os.pidfd_open(pid), ours


def stop_launcher():
    global launcher
    if launcher:
        _, pidfd, conn = launcher
        conn.close()
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
        os.close(pidfd)
    launcher = None


def relay():
    # The launcher's answer for the step handed over; a kill from the owner is passed on.
    conn = launcher[2]
    poller = select.poll()
    poller.register(conn, select.POLLIN)
    poller.register(sock, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == conn.fileno():
                reply = conn.recv(1 << 16)
                if reply:
                    return reply
                # It died (the OOM killer may pick it), and its bwrap with it (--die-with-parent).
                stop_launcher()
                kill_orphans()
                return json.dumps({"status": 9}).encode()  # as killed by SIGKILL
            message = sock.recv(64)
            if not message:  # the owner is gone
                stop_launcher()
                kill_orphans()
                sys.exit()
            conn.send(b"kill")


def launch_steps(conn, parent):
    enter_userns()
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG, after the id changes that clear it
    if os.getppid() != parent:
        return
    libc.prctl(36, 1, 0, 0, 0)  # the subreaper of its steps' orphans, as the spawner is (not inherited)
    # Nothing the spawner held is this process's: not the clones, not the namespaces, and not
    # the pipes of the step it was forked during, which would never see their end otherwise.
    CLONES.clear()
    os.closerange(3, conn.fileno())
    os.closerange(conn.fileno() + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    first = os.open("/proc/self/ns/mnt", os.O_RDONLY | O_CLOEXEC)
    # One filter for every step, so sealed: bwrap reads and closes it before the command runs,
    # and were a step ever to get hold of it, the next step's filter still could not change.
    memfd = os.memfd_create("seccomp", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    seccomp = fcntl.fcntl(memfd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(memfd)
    os.write(seccomp, SECCOMP)
    fcntl.fcntl(seccomp, fcntl.F_ADD_SEALS,
                fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    null = fcntl.fcntl(devnull := os.open("/dev/null", os.O_RDONLY), fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(devnull)
    conn.send(b"ready")
    serve(conn, MAX_SENT, lambda msg, request, fds: launch(request, fds, first, seccomp, null))


def launch(request, fds, first, seccomp, null):
    # In the launcher: the step's root mounted in a mount namespace that bwrap takes with it.
    try:
        out, err, *trees = fds
        for which, value in request["rlimits"]:  # as the spawner set its own
            if resource.getrlimit(which) != (value, value):
                resource.setrlimit(which, (value, value))
        overlay = request["overlay"]
        count = len(overlay["layers"])
        given = iter(trees[count + 1:])
        binds = [next(given) if mount["kind"] == "bind" else None for mount in overlay["mounts"]]
        try:
            mount_root(overlay, (trees[:count], trees[count]), binds)
            os.lseek(seccomp, 0, os.SEEK_SET)  # bwrap reads the filter from fd 3
            actions = [(os.POSIX_SPAWN_DUP2, fd, target)
                       for fd, target in ((null, 0), (out, 1), (err, 2), (seccomp, 3))]
            # SIGPIPE and SIGXFSZ back to their defaults, as for the forked child.
            return os.posix_spawn(request["argv"][0], request["argv"], os.environ, file_actions=actions,
                                  setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
        finally:
            checked(libc.setns(first, CLONE_NEWNS), "setns")  # the step's stays bwrap's alone
    finally:
        for fd in fds:
            os.close(fd)


userns = hostnet = None
if os.getuid() == 0:
    try:
        userns = isolate()
        hostnet = offline()
    except OSError as e:
        sock.send(b"failed " + str(e).encode()[:1000])
        sys.exit()
if userns is not None:
    # Started now, with the spawner (ahead of a build, in the warm engine's spare): its owner
    # puts it in the thread's cgroups beside this process. One started again later is forked
    # from here, inside them.
    launcher = start_launcher()
    sock.send(b"ready isolated" + (b" %d" % launcher[0] if launcher else b""))
else:
    sock.send(b"ready")
serve(sock, 2, spawn)
stop_launcher()
kill_orphans()
reap()
"""


class _Spawner:
    def __init__(self) -> None:
        self.subids = subids = subordinate_ids()
        program = syscalls.bpf().hex()
        root = str(step_root())
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # The program comes on stdin, so `ps` shows a short line naming it.
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", "import sys; exec(sys.stdin.read())",
                 "studio-sandbox-spawner", str(theirs.fileno()), f"{subids[0]}:{subids[1]}", program, root],
                pass_fds=(theirs.fileno(),), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            assert self.proc.stdin is not None
            self.proc.stdin.write(_SPAWNER.encode())
            self.proc.stdin.close()
        finally:
            theirs.close()
        self.sock = ours
        self.rlimits: dict[int, int] = {}  # what the spawner has set on itself
        self.sock.settimeout(30)
        try:
            ready = self.sock.recv(2048)
        except OSError:
            ready = b""
        self.sock.settimeout(None)
        # Whether it makes steps' roots in a user namespace (as root), or leaves that to bwrap;
        # and its launcher, which must join the thread's cgroups too.
        words = ready.split()
        self.isolated = words[:2] == [b"ready", b"isolated"]
        self.launcher = int(words[2]) if self.isolated and len(words) == 3 and words[2].isdigit() else None
        if not (words == [b"ready"] or self.isolated):
            self.close()
            detail = ready.decode("utf-8", "replace").removeprefix("failed ") or "it did not start"
            raise SandboxError(f"the sandbox cannot isolate steps here: {detail}")

    def spawn(self, argv: list[str], rlimits: list[tuple[int, int]], stdout: int, stderr: int,
              overlay: Overlay | None = None) -> None:
        """Ask for bwrap to be started, after making the step's root from `overlay` when given
        (only if `isolated`); its status (or why it could not start) comes later."""
        fields: dict[str, object] = {"argv": argv, "rlimits": rlimits}
        if overlay is not None:
            fields["overlay"] = {
                "layers": list(overlay.layers), "upper": overlay.upper, "work": overlay.work,
                "network": overlay.network,
                "optional": [str(mountpoints_layer())],  # in the temporary directory, wherever that is
                "mounts": [{"kind": m.kind, "target": m.target, "readonly": m.readonly, "size": m.size,
                            "source": str(m.source) if m.source is not None else None}
                           for m in overlay.mounts],
            }
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
        # RLIM_INFINITY is -1: no number compares with it as "no limit" does.
        infinity = resource.RLIM_INFINITY
        for which, value in rlimits:
            current = self.rlimits.get(which, infinity)
            if current != infinity and (value == infinity or value > current):
                return False
        return True

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
        # The host ids are the setting's now: a spawner started ahead (see runner.start_ahead)
        # may have been made under another environment than the build's.
        return (self.pid == os.getpid() and self.spawner.alive()
                and self.spawner.subids == subordinate_ids()
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


class Ahead:
    """A worker being made in a thread of its own, for this process's next `thread_worker` call
    (from any thread) to take: the warm engine's spare starts one while it waits for a caller,
    without making a build that needs none wait for it."""

    def __init__(self, limits: Limits, sandbox_processes: int) -> None:
        self.pid = os.getpid()
        self.made: list[Worker] = []
        self.thread = threading.Thread(target=self._make, args=(limits, sandbox_processes),
                                       name="studio-sandbox-ahead", daemon=True)
        self.thread.start()

    def _make(self, limits: Limits, sandbox_processes: int) -> None:
        with contextlib.suppress(SandboxError, OSError):  # the step that needs one will say why
            self.made.append(_new_worker(limits, sandbox_processes))

    def wait(self) -> Worker | None:
        """The worker once made (None where the sandbox cannot start, or in a forked child)."""
        if self.pid != os.getpid():
            return None
        self.thread.join()
        return self.made[0] if self.made else None


_ahead: Ahead | None = None
_ahead_lock = threading.Lock()


def worker_ahead(limits: Limits, *, sandbox_processes: int) -> Ahead:
    global _ahead
    with _ahead_lock:
        _ahead = Ahead(limits, sandbox_processes)
        return _ahead


def _take_ahead() -> Worker | None:
    global _ahead
    with _ahead_lock:
        ahead, _ahead = _ahead, None
    return ahead.wait() if ahead is not None else None


def thread_worker(limits: Limits, *, sandbox_processes: int) -> Worker:
    worker: Worker | None = getattr(_local, "worker", None)
    if worker is None:
        worker = _take_ahead()
    if worker is not None and not worker.usable(limits, sandbox_processes):
        worker.close()
        worker = None
    if worker is None:
        worker = _new_worker(limits, sandbox_processes)
    _local.worker = worker
    return worker


def _new_worker(limits: Limits, sandbox_processes: int) -> Worker:
    cgroups = Cgroups.create()
    try:
        spawner = _Spawner()
    except BaseException:
        cgroups.remove()
        raise
    cgroups.add(spawner.proc.pid)
    if spawner.launcher is not None:
        cgroups.add(spawner.launcher)
    worker = Worker(cgroups, spawner)
    if not cgroups.prepare(limits, sandbox_processes):
        worker.close()
        raise SandboxError("the sandbox could not set its limits")
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



def subordinate_ids() -> tuple[int, int]:
    """(first host id, how many) that a step's ids 0, 1, ... are on the host, for uids and gids
    alike: STUDIO_SANDBOX_SUBUIDS as "FIRST:COUNT", else 100000:65536."""
    value = os.environ.get(SUBIDS_SETTING, "").strip() or DEFAULT_SUBIDS
    first, _, count = value.partition(":")
    if not (first.isdigit() and count.isdigit()):
        raise SandboxError(f"{SUBIDS_SETTING} must be FIRST:COUNT (for example {DEFAULT_SUBIDS}), "
                           f"not {value!r}")
    start, size = int(first), int(count)
    # Never the host's root, and inside the 32-bit id space (whose last id means "none").
    if start < 1 or size < 1 or start + size > 0xFFFFFFFF:
        raise SandboxError(f"{SUBIDS_SETTING}={value} is not a usable range of host ids "
                           "(FIRST at least 1, COUNT at least 1, and below 4294967295 together)")
    return start, size


def check_spawner() -> None:
    """Start a spawner and stop it: as root, that proves it can make its user namespace."""
    _Spawner().close()
