"""A RUN step tries, as an attacker would, every way out of the sandbox onto the host: kernel
control files, mounts, namespaces, the host name, raw devices, kernel modules, signals to every
process. Each attempt that works prints ESCAPED; none may. What the host sees is checked too.

Nothing here can harm the host when it works: files are opened for writing without a byte
written (`: >>`), the device is only read, and the module is not a module."""

from __future__ import annotations

import json
import socket
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

from builds.engine.image.export import export_docker_archive

from .conftest import BASE, Built, Project

CONTROL_FILES = (
    "/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", "/proc/sys/kernel/hostname",
    "/proc/sys/vm/drop_caches", "/proc/sys/net/ipv4/ip_forward", "/proc/sysrq-trigger",
    "/proc/kcore", "/proc/kmsg", "/proc/keys", "/proc/timer_list", "/proc/irq/default_smp_affinity",
    "/proc/bus/pci/devices", "/proc/fs/nfsd/threads", "/proc/acpi/wakeup",
    "/sys/kernel/uevent_helper", "/sys/kernel/mm/transparent_hugepage/enabled", "/sys/power/state",
    "/sys/fs/cgroup/cgroup.procs", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    "/sys/firmware/acpi/tables/DSDT", "/dev/kmsg", "/dev/mem", "/dev/port",
)

ATTEMPTS = "\n".join([
    "for f in " + " ".join(CONTROL_FILES) + "; do",
    # A file that is not there, or is /dev/null masking it, is no way out (and `>>` would make one).
    '  [ -e "$f" ] && ! [ "$f" -ef /dev/null ] || continue',
    '  if (: >> "$f") 2>/dev/null; then echo "ESCAPED opened $f for writing"; fi',
    "done",
    "for f in /proc/kcore /proc/kmsg /dev/mem; do",
    '  [ -e "$f" ] && ! [ "$f" -ef /dev/null ] || continue',
    '  if head -c 1 "$f" >/dev/null 2>&1; then echo "ESCAPED read $f"; fi',
    "done",
    "mount -t tmpfs none /mnt 2>/dev/null && echo 'ESCAPED mount'",
    "mount -o remount,rw /proc/sys 2>/dev/null && echo 'ESCAPED remount /proc/sys'",
    "for ns in -m -n -p -u -i -U -C; do unshare $ns true 2>/dev/null && echo \"ESCAPED unshare $ns\"; done",
    "hostname escaped-host 2>/dev/null && echo 'ESCAPED sethostname'",
    "mknod /tmp/disk b 8 0 2>/dev/null && head -c 1 /tmp/disk >/dev/null 2>&1 && echo 'ESCAPED raw disk'",
    "mknod /tmp/mem c 1 1 2>/dev/null && head -c 1 /tmp/mem >/dev/null 2>&1 && echo 'ESCAPED /dev/mem'",
    "echo 'not a module' > /tmp/m.ko; insmod /tmp/m.ko 2>&1 | sed 's/^/insmod: /'",
    "swapon /tmp/m.ko 2>/dev/null && echo 'ESCAPED swapon'",
    "reboot -f 2>/dev/null; echo 'after reboot'",
    "kill -9 -1 2>/dev/null",
    "head -n 1 /proc/self/uid_map | sed 's/^/uid_map: /'",
    "echo finished",
])


def _printed(built: Built) -> str:
    return "".join(e["text"] for e in built.events if e["type"] == "step.log")


def test_no_way_out_of_a_run_step_onto_the_host_works(project: Callable[..., Project]) -> None:
    host_name = socket.gethostname()
    core_pattern = Path("/proc/sys/kernel/core_pattern").read_text()
    bystander = subprocess.Popen(["sleep", "120"])
    try:
        built = project({
            "Dockerfile": f"FROM {BASE}\nCOPY attempts.sh /\nRUN sh /attempts.sh\n",
            "attempts.sh": ATTEMPTS + "\n",
        }).build()
        printed = _printed(built)
        assert "finished" in printed and "after reboot" in printed, printed
        assert "ESCAPED" not in printed, [line for line in printed.splitlines() if "ESCAPED" in line]
        assert "Operation not permitted" in printed.split("insmod: ", 1)[1].splitlines()[0], printed
        # The step's root is an unprivileged uid on the host: its user namespace maps 0 elsewhere.
        inside, outside, _count = printed.split("uid_map: ", 1)[1].split()[:3]
        assert inside == "0" and int(outside) >= 1 << 16, printed
        assert bystander.poll() is None, "kill -1 in a step reached a process of the host"
    finally:
        bystander.kill()
        bystander.wait()
    assert socket.gethostname() == host_name
    assert Path("/proc/sys/kernel/core_pattern").read_text() == core_pattern


def test_a_step_cannot_see_the_host_s_processes_or_network(project: Callable[..., Project]) -> None:
    script = ("ls /proc | grep -c '^[0-9]' | sed 's/^/pids: /'; "
              "ip -o link 2>/dev/null | grep -vc ': lo:' | sed 's/^/links: /'")
    printed = _printed(project({"Dockerfile": f"FROM {BASE}\nRUN {script}\n"}).build())
    assert int(printed.split("pids: ")[1].split()[0]) < 10, printed
    assert printed.split("links: ")[1].split()[0] == "0", printed


def _owners(archive: Path) -> dict[str, tuple[int, int]]:
    """Each path's (uid, gid) in the image `docker load` would make of the archive."""
    owners: dict[str, tuple[int, int]] = {}
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer_name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer_name)) as layer:
                for entry in layer.getmembers():
                    owners[entry.name.removeprefix("./").rstrip("/")] = (entry.uid, entry.gid)
    return owners


def test_files_a_step_makes_keep_the_owners_the_image_means(
    project: Callable[..., Project], tmp_path: Path
) -> None:
    """The step's root is an unprivileged host uid, yet what it writes is root's in the layer and
    in the exported image, and a chown to 1000 stays 1000, as in Docker."""
    proj = project({"Dockerfile": (
        f"FROM {BASE}\n"
        "RUN touch /by-root && mkdir -p /home/app && touch /home/app/f && chown -R 1000:1000 /home/app\n"
        "USER 1000:1000\n"
        "RUN touch /tmp/by-user && id -u && id -g\n"
    )})
    built = proj.build()
    assert built.finished["status"] == "succeeded", (built.finished, _printed(built))
    assert _printed(built).split()[-2:] == ["1000", "1000"]
    assert built.result.image is not None
    archive = tmp_path / "image.tar"
    export_docker_archive(proj.store, built.result.image, archive, ["owners:1"])
    owners = _owners(archive)
    assert owners["by-root"] == (0, 0)
    assert owners["home/app/f"] == (1000, 1000) and owners["home/app"] == (1000, 1000)
    assert owners["tmp/by-user"] == (1000, 1000)
