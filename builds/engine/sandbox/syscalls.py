"""The seccomp filter every RUN step runs under, and how its BPF is made.

An allow-list, denying with EPERM whatever is not on it, as Docker's default profile does, and
stricter than it in places: no ptrace or process_vm_*, no time adjusting, no NUMA policy calls,
and sockets only of the families a build uses. Nothing that mounts, makes namespaces, loads
modules, reboots, swaps, touches keyrings, BPF, perf or io_uring is allowed. `clone` is allowed
only without namespace flags, and `clone3` (whose flags a filter cannot see) answers ENOSYS, so
that C libraries fall back to `clone`.

The BPF is compiled by libseccomp's own Python binding (Debian's python3-seccomp), never by hand.
That binding is built for the system's Python, not the project's virtual environment, so this
file is also a script: the engine runs it once per process with the system's python3, which
prints the BPF, and keeps the bytes (see `bpf`). It imports nothing of the project's.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

# Each allowed on every architecture the filter covers (x86-64, and the 32-bit x86 and x32 ABIs
# that an x86-64 kernel also runs); a name an architecture lacks is skipped there.
ALLOWED = """
    accept accept4 access alarm arch_prctl bind brk cachestat capget capset chdir chmod chown
    chown32 chroot clock_getres clock_getres_time64 clock_gettime clock_gettime64
    clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup
    dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_pwait epoll_pwait2 epoll_wait eventfd
    eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64
    fallocate fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync
    fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs
    fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv
    futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32
    getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid
    getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list
    getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32
    getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl
    io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup
    io_submit ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
    lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek
    lsetxattr lstat lstat64 madvise membarrier memfd_create mincore mkdir mkdirat mknod mknodat
    mlock mlock2 mlockall mmap mmap2 modify_ldt mprotect mq_getsetattr mq_notify mq_open
    mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap
    msgctl msgget msgrcv msgsnd msync munlock munlockall munmap nanosleep newfstatat _newselect
    open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 poll ppoll ppoll_time64
    prctl pread64 preadv preadv2 prlimit64 pselect6 pselect6_time64 pwrite64 pwritev pwritev2
    read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
    remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
    rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
    rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
    sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
    sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
    sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
    semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
    setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
    setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
    setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
    setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask
    sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat
    sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
    timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create
    timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate
    truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes
    vfork vmsplice wait4 waitid waitpid write writev
""".split()  # noqa: SIM905 - names read best as words

# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID and NEWNET: clone may set none of them.
CLONE_NAMESPACE_FLAGS = 0x7E020000
# AF_UNIX, AF_INET, AF_INET6, AF_NETLINK (ip, ss), AF_PACKET (ping, dhcp clients).
SOCKET_FAMILIES = (1, 2, 10, 16, 17)
# PER_LINUX, PER_LINUX32, UNAME26 alone and with PER_LINUX32, and the query (0xffffffff).
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
ENOSYS = 38


def compile_filter() -> None:  # pragma: no cover - runs under the system's python3
    import errno

    import seccomp  # Debian's python3-seccomp: libseccomp's own binding

    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
    # A binary tree of system call numbers instead of a list: the same decisions, in at most 26
    # instructions instead of up to 585. Every step loads the filter, and the kernel then runs it
    # once per system call number to cache the plain allows: 0.3 ms a step instead of 1.1 ms.
    f.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    for arch in (seccomp.Arch.X86, seccomp.Arch.X32):
        if arch != seccomp.Arch.NATIVE:
            f.add_arch(arch)
    for name in ALLOWED:
        _add(f, seccomp.ALLOW, name)
    _add(f, seccomp.ALLOW, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NAMESPACE_FLAGS, 0))
    _add(f, seccomp.ERRNO(ENOSYS), "clone3")
    for family in SOCKET_FAMILIES:
        _add(f, seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, family))
    for persona in PERSONALITIES:
        _add(f, seccomp.ALLOW, "personality", seccomp.Arg(0, seccomp.EQ, persona))
    sys.stdout.flush()
    f.export_bpf(sys.stdout)  # libseccomp writes to the file's descriptor


def _add(f: object, action: object, name: str, *args: object) -> None:  # pragma: no cover
    # A name that is no system call of these architectures has nothing to allow.
    with contextlib.suppress(RuntimeError, ValueError, OSError):
        f.add_rule(action, name, *args)  # type: ignore[attr-defined]


SYSTEM_PYTHON = "/usr/bin/python3"


@functools.cache
def bpf() -> bytes:
    """The filter's BPF program. Compiling takes a few tens of milliseconds, so it is kept in
    the temporary directory, named after this file's content and libseccomp's version, and
    used from there only while it is ours and no one else may write it."""
    cached = _cache_path()
    try:
        fd = os.open(cached, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid == os.getuid() and not st.st_mode & 0o022 and stat.S_ISREG(st.st_mode):
                program = f.read()
                if program and len(program) % 8 == 0:
                    return program
    except OSError:
        pass
    program = _compile()
    with contextlib.suppress(OSError):
        fd, fresh = tempfile.mkstemp(prefix=cached.name + "-", dir=cached.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(program)
        os.chmod(fresh, 0o644)
        os.replace(fresh, cached)
    return program


def _cache_path() -> Path:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for library in sorted(Path("/usr/lib/x86_64-linux-gnu").glob("libseccomp.so.*")):
        digest.update(library.name.encode())  # its full version is in the name
    return Path(tempfile.gettempdir()) / f"studio-sandbox-seccomp-{digest.hexdigest()[:16]}.bpf"


def _compile() -> bytes:
    try:
        done = subprocess.run([SYSTEM_PYTHON, "-I", __file__], capture_output=True, timeout=60,
                              env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.SubprocessError) as e:
        raise RuntimeError(f"cannot compile the sandbox's seccomp filter with {SYSTEM_PYTHON}: {e}") from e
    program = done.stdout
    if done.returncode != 0 or not program or len(program) % 8:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"cannot compile the sandbox's seccomp filter (Debian's python3-seccomp "
                           f"is needed): {detail[0]}")
    return program


if __name__ == "__main__":  # pragma: no cover
    compile_filter()
