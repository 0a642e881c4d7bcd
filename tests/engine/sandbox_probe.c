/* What a hostile RUN step would try with raw system calls, for the sandbox's escape tests.
 * Built static, so it runs on the busybox base image. Each attempt prints one line,
 * "ALLOWED <name>" when the kernel let it through, "denied <name> <errno name>" otherwise.
 * Every attempt is harmless had it succeeded on a test machine (read-only queries, no-op values),
 * except that its success alone is the escape the tests look for. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <linux/reboot.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, long result) {
    if (result >= 0)
        printf("ALLOWED %s\n", name);
    else
        printf("denied %s %s\n", name, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    report("unshare-user", unshare(CLONE_NEWUSER));
    report("unshare-mount", unshare(CLONE_NEWNS));
    report("unshare-net", unshare(CLONE_NEWNET));
    report("mount-tmpfs", mount("none", "/tmp", "tmpfs", 0, NULL));
    report("mount-proc", mount("proc", "/tmp", "proc", 0, NULL));
    report("mount-sysfs", mount("sysfs", "/tmp", "sysfs", 0, NULL));
    report("umount-proc", umount2("/proc", MNT_DETACH));
    int ns = open("/proc/1/ns/mnt", O_RDONLY);
    report("setns", ns < 0 ? -1 : setns(ns, 0));
    report("sethostname", sethostname("pwned", 5));
    report("setdomainname", setdomainname("pwned", 5));
    /* Module loading: an empty image, refused as malformed only if the call got that far. */
    report("init_module", syscall(SYS_init_module, "", 0, ""));
    int self = open("/proc/self/exe", O_RDONLY);
    report("finit_module", syscall(SYS_finit_module, self, "", 0));
    report("delete_module", syscall(SYS_delete_module, "nonexistent_module", O_NONBLOCK));
    report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    report("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
    report("add_key", syscall(SYS_add_key, "user", "studio-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING));
    report("bpf", syscall(SYS_bpf, 0, NULL, 0));
    report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    report("userfaultfd", syscall(SYS_userfaultfd, 0));
    report("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL));
    report("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0));
    report("swapon", syscall(SYS_swapon, "/nonexistent", 0));
    report("acct", syscall(SYS_acct, NULL));
    report("syslog-size", syscall(SYS_syslog, 10, NULL, 0)); /* SYSLOG_ACTION_SIZE_BUFFER */
    report("reboot-cad-off", syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, RB_DISABLE_CAD, NULL));
    report("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
    report("iopl", syscall(SYS_iopl, 3));
    report("mknod-sda", mknod("/probe-sda", S_IFBLK | 0600, makedev(8, 0)));
    int disk = open("/probe-sda", O_RDWR);
    report("open-sda", disk);
    report("mknod-mem", mknod("/probe-mem", S_IFCHR | 0600, makedev(1, 1)));
    report("open-mem", open("/probe-mem", O_RDWR));
    /* ptrace: its own child, the most a step could ever need; and its parent. */
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    report("ptrace-attach-child", ptrace(PTRACE_ATTACH, child, NULL, NULL));
    report("ptrace-attach-parent", ptrace(PTRACE_ATTACH, getppid(), NULL, NULL));
    report("process_vm_readv", syscall(SYS_process_vm_readv, child, NULL, 0, NULL, 0, 0));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    long cloned = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
    if (cloned == 0)
        _exit(0);
    if (cloned > 0)
        waitpid(cloned, NULL, 0);
    report("clone-newuser", cloned);
    printf("probe done\n");
    return 0;
}
