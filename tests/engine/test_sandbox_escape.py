"""A RUN step tries to reach the host, for real: kernel control files, mounts, namespaces, raw
devices, modules, keyrings, ptrace, signals to every process. Nothing may work, and the host is
checked from outside as well. Files still get the owners the image means."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from builds.engine import image as images
from builds.engine.sandbox import Limits, runner
from builds.engine.store.unpack import unpack

LIMITS = Limits(timeout_s=60, memory_bytes=256 << 20, pids=64, output_bytes=1 << 20, disk_bytes=64 << 20)
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
PROBE = Path(__file__).with_name("sandbox_probe.c")


@pytest.fixture(scope="module")
def rootfs(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("busybox-rootfs")
    with busybox_tar.open("rb") as tar:
        unpack(tar, str(root))
    return root


@pytest.fixture(scope="module")
def probe_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A layer holding the raw system call probe, built static for the busybox image."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is not installed (make test installs it)")
    layer = tmp_path_factory.mktemp("probe-layer")
    (layer / "bin").mkdir()
    subprocess.run(["gcc", "-static", "-O1", "-o", str(layer / "bin/probe"), str(PROBE)], check=True)
    return layer


def _run(lower: list[Path], upper: Path, script: str, **options: Any) -> tuple[runner.RunResult, str]:
    printed: list[str] = []
    result = runner.run(["/bin/sh", "-c", script], lower=lower, upper=upper, env={"PATH": PATH}, cwd="/",
                        limits=LIMITS, on_output=lambda _stream, text: printed.append(text), **options)
    return result, "".join(printed)


def _upper(tmp_path: Path) -> Path:
    upper = tmp_path / "upper"
    upper.mkdir()
    return upper


def test_raw_system_calls_that_reach_past_the_sandbox_are_refused(
    rootfs: Path, probe_layer: Path, tmp_path: Path
) -> None:
    result, printed = _run([rootfs, probe_layer], _upper(tmp_path), "/bin/probe")

    assert "probe done" in printed, printed
    allowed = [line for line in printed.splitlines() if line.startswith("ALLOWED")]
    assert allowed == [], printed
    for name in ("unshare-user", "mount-proc", "setns", "sethostname", "init_module", "finit_module",
                 "keyctl", "add_key", "bpf", "ptrace-attach-child", "mknod-sda", "clone-newuser"):
        assert f"denied {name} EPERM" in printed, printed
    assert result.exit_code == 0


KERNEL_FILES = """
checked=0
try() { checked=$((checked + 1)); if { echo "$2" > "$1"; } 2>/dev/null; then echo "WRITABLE $1"; fi; }
try /proc/sys/kernel/core_pattern '|/tmp/pwn %p'
try /proc/sys/kernel/hostname pwned
try /proc/sys/vm/drop_caches 1
try /proc/sysrq-trigger h
try /sys/kernel/uevent_helper /tmp/pwn
try /sys/fs/cgroup/cgroup.procs 1
try /sys/fs/cgroup/release_agent /tmp/pwn
try /sys/fs/cgroup/memory/release_agent /tmp/pwn
for f in $(find /proc/sys /proc/irq /proc/bus /proc/fs -type f 2>/dev/null); do
  checked=$((checked + 1))
  if { true > "$f"; } 2>/dev/null; then echo "WRITABLE $f"; fi
done
for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do
  [ -e "$f" ] && [ -n "$(head -c 64 "$f" 2>/dev/null)" ] && echo "READABLE $f"
done
ls /proc/acpi /proc/scsi 2>/dev/null | grep -v '^/proc' | sed 's/^/LISTED /'
mount -t sysfs sysfs /sys 2>/dev/null && echo "MOUNTED sysfs"
mount -t cgroup -o memory cgroup /tmp 2>/dev/null && echo "MOUNTED cgroup"
unshare -U -r true 2>/dev/null && echo "UNSHARED"
hostname pwned 2>/dev/null && echo "SETHOSTNAME"
mknod /disk b 8 0 2>/dev/null && echo "MKNOD"
insmod /bin/busybox 2>/dev/null && echo "INSMOD"
kill -9 -1 2>/dev/null
echo "checked $checked"
"""


def test_no_kernel_control_file_is_writable_and_the_host_is_unchanged(
    rootfs: Path, tmp_path: Path
) -> None:
    core_pattern = Path("/proc/sys/kernel/core_pattern")
    before, hostname = core_pattern.read_text(), socket.gethostname()
    # Host processes a `kill -1` would reach: the host's root's, and one of the very host uid
    # that the step's root is.
    bystanders = [subprocess.Popen(["sleep", "60"]),
                  subprocess.Popen(["sleep", "60"], user=100000, group=100000)]
    try:
        result, printed = _run([rootfs], _upper(tmp_path), KERNEL_FILES)
        after = core_pattern.read_text()
        alive = [p.poll() is None for p in bystanders]
    finally:
        if core_pattern.read_text() != before:  # put the machine back before failing
            core_pattern.write_text(before)
        for p in bystanders:
            p.kill()
            p.wait()

    escapes = [line for line in printed.splitlines() if not line.startswith("checked ")]
    assert escapes == [], printed
    assert int(printed.split("checked ")[1]) > 500  # the whole of /proc/sys was tried
    assert after == before
    assert socket.gethostname() == hostname
    assert alive == [True, True]
    assert result.exit_code == 0


def test_a_device_node_that_a_layer_carries_opens_nothing(rootfs: Path, tmp_path: Path) -> None:
    layer = tmp_path / "devices"
    layer.mkdir()
    disk = os.stat("/").st_dev  # the host's own root disk
    os.mknod(layer / "disk", 0o600 | 0o060000, disk)

    _, printed = _run([rootfs, layer], _upper(tmp_path), "head -c 16 /disk | wc -c")

    assert printed.strip().splitlines()[-1] == "0", printed


def _host_uid_of(marker: str) -> int | None:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if Path(entry.path, "cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", marker.encode()]:
                    return os.stat(entry.path).st_uid
            except OSError:
                continue
    return None


def _host_uid_of_a_step(rootfs: Path, upper: Path, marker: str) -> int | None:
    cancel = threading.Event()
    runs = threading.Thread(target=_run, args=([rootfs], upper, f"exec sleep {marker}"),
                            kwargs={"cancel": cancel})
    runs.start()
    try:
        deadline = time.monotonic() + 10
        while (uid := _host_uid_of(marker)) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return uid
    finally:
        cancel.set()
        runs.join()


def test_the_steps_root_is_an_unprivileged_host_uid(rootfs: Path, tmp_path: Path) -> None:
    assert _host_uid_of_a_step(rootfs, _upper(tmp_path), "31.25") == 100000


def test_the_host_range_is_a_setting(rootfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A new thread gets a new spawner, which reads the setting.
    monkeypatch.setenv("STUDIO_SANDBOX_SUBUIDS", "300000:65536")
    assert _host_uid_of_a_step(rootfs, _upper(tmp_path), "31.5") == 300000

    monkeypatch.setenv("STUDIO_SANDBOX_SUBUIDS", "0:65536")
    found: list[runner.RunResult] = []
    upper = tmp_path / "upper2"
    upper.mkdir()
    worker = threading.Thread(target=lambda: found.append(_run([rootfs], upper, "true")[0]))
    worker.start()
    worker.join()
    assert found[0].exit_code is None
    assert "STUDIO_SANDBOX_SUBUIDS=0:65536 is not a usable range" in found[0].message


def test_a_spawner_started_ahead_gives_way_to_the_range_the_step_is_run_under(
    rootfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The warm engine's spare starts its spawner before a caller comes, under its own
    # environment; the caller's setting is the one its steps must run under.
    started, go, cancel = threading.Event(), threading.Event(), threading.Event()

    def build() -> None:
        assert runner.start_ahead().wait() is not None  # made under the default range
        started.set()
        go.wait()
        _run([rootfs], _upper(tmp_path), "exec sleep 31.75", cancel=cancel)

    thread = threading.Thread(target=build)
    thread.start()
    try:
        assert started.wait(30)
        monkeypatch.setenv("STUDIO_SANDBOX_SUBUIDS", "300000:65536")
        go.set()
        deadline = time.monotonic() + 10
        while (uid := _host_uid_of("31.75")) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert uid == 300000
    finally:
        go.set()
        cancel.set()
        thread.join()


def _owners(archive: Path) -> dict[str, tuple[int, int]]:
    owners: dict[str, tuple[int, int]] = {}
    with tarfile.open(archive) as outer:
        for member in outer.getmembers():
            if not member.isfile() or member.name.endswith((".json", "oci-layout")):
                continue
            blob = outer.extractfile(member)
            assert blob is not None
            try:
                with tarfile.open(fileobj=blob) as layer:
                    owners.update({m.name: (m.uid, m.gid) for m in layer.getmembers()})
            except tarfile.ReadError:
                continue  # a config blob
    return owners


def test_files_keep_the_owners_the_image_means_in_the_layer_and_the_export(
    project: Any, tmp_path: Path
) -> None:
    proj = project({"Dockerfile": (
        "FROM studio/busybox:test\n"
        "RUN touch /by-root && touch /for-user && chown 1000:1000 /for-user && mkdir /home && "
        "mkdir /home/u && chown 1000:1000 /home/u\n"
        "USER 1000:1000\n"
        "RUN id -u > /home/u/id && touch /home/u/by-user && (touch /not-mine 2>/dev/null || true)\n"
    )})
    built = proj.build(tag="owners:1")
    assert built.result.status == "succeeded", built.events[-1]
    image = proj.store.get_image("owners:1")
    first, second = (proj.store.layer_path(layer) for layer in image.layers[-2:])
    assert (os.lstat(first / "by-root").st_uid, os.lstat(first / "by-root").st_gid) == (0, 0)
    assert (os.lstat(first / "for-user").st_uid, os.lstat(first / "for-user").st_gid) == (1000, 1000)
    assert (second / "home/u/id").read_text() == "1000\n"
    assert not (second / "not-mine").exists()

    archive = tmp_path / "owners.tar"
    images.export_docker_archive(proj.store, image, archive, ["owners:1"])
    owners = _owners(archive)
    assert owners["by-root"] == (0, 0)
    assert owners["for-user"] == (1000, 1000)
    assert owners["home/u/by-user"] == (1000, 1000)
    assert owners["bin/busybox"] == (0, 0)
