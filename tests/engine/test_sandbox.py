"""The sandbox for RUN steps, for real: bubblewrap over an overlay of a busybox rootfs, with real
cgroups. Each step costs milliseconds, so the limits are small and the module stays quick."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from builds.engine.sandbox import SHORT_DIR, Limits, RunResult, runner
from builds.engine.sandbox.users import nsenter
from builds.engine.store.unpack import unpack

LIMITS = Limits(timeout_s=20, memory_bytes=128 << 20, pids=64, output_bytes=1 << 20, disk_bytes=64 << 20)
SMALL_DISK = Limits(timeout_s=20, disk_bytes=8 << 20)
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture(scope="module")
def busybox_rootfs(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("busybox-rootfs")
    with busybox_tar.open("rb") as tar:
        unpack(tar, str(root))  # the store's own unpacking: modes such as /tmp's 1777 kept
    return root


@pytest.fixture(autouse=True)
def _sandbox_available() -> None:
    ok, why = runner.available()
    if not ok:
        pytest.fail(f"the sandbox cannot run here: {why}")


class Step:
    """One RUN step on the busybox rootfs, with what it printed."""

    def __init__(self, lower: list[Path], upper: Path) -> None:
        self.lower, self.upper = lower, upper
        self.output: list[tuple[str, str]] = []
        self.result: RunResult | None = None

    def run(self, script: str, **options: object) -> RunResult:
        options.setdefault("env", {"PATH": PATH})
        options.setdefault("cwd", "/")
        options.setdefault("limits", LIMITS)
        self.result = runner.run(["/bin/sh", "-c", script], lower=self.lower, upper=self.upper,
                                  on_output=lambda stream, text: self.output.append((stream, text)),
                                  **options)  # type: ignore[arg-type]
        return self.result

    def printed(self, stream: str) -> str:
        return "".join(text for s, text in self.output if s == stream)

    def layer(self) -> set[str]:
        return {str(p.relative_to(self.upper)) for p in self.upper.rglob("*")}


@pytest.fixture
def step(busybox_rootfs: Path, tmp_path: Path) -> Step:
    upper = tmp_path / "upper"
    upper.mkdir()
    return Step([busybox_rootfs], upper)


def _layer(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    layer = tmp_path / name
    for path, text in files.items():
        (layer / path).parent.mkdir(parents=True, exist_ok=True)
        (layer / path).write_text(text)
    layer.mkdir(exist_ok=True)
    return layer


def _our_sandboxed_processes() -> list[int]:
    """Live processes in this test process's sandbox cgroups, other than the spawners."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cgroups = Path(entry.path, "cgroup").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes()
            state = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"/studio/{os.getpid()}-" in cgroups and b"studio-sandbox-spawner" not in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _eventually(check: Callable[[], bool], seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if marker.encode() in Path(entry.path, "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


# -- output and results -------------------------------------------------------------------------


def test_output_streams_as_it_comes_on_both_streams(step: Step) -> None:
    result = step.run("echo out1; echo err1 >&2; sleep 0.2; echo out2")

    assert (result.exit_code, result.limit, result.message) == (0, None, "")
    assert step.printed("stdout") == "out1\nout2\n"
    assert step.printed("stderr") == "err1\n"
    chunks = [text for _, text in step.output]
    assert chunks.index("err1\n") < chunks.index("out2\n")


def test_output_is_handed_on_in_whole_lines_and_decoded_leniently(step: Step) -> None:
    step.run(r"printf 'a\nb'; sleep 0.2; printf 'c\n\377\n'")

    assert step.printed("stdout") == "a\nbc\n\ufffd\n"
    assert next(text for _, text in step.output) == "a\n"


def test_a_failing_command_gives_its_exit_code_and_the_last_twenty_lines(step: Step) -> None:
    result = step.run("for i in $(seq 1 30); do echo line$i; done; exit 7")

    assert (result.exit_code, result.limit) == (7, None)
    assert result.message == "the command exited with code 7"
    assert result.tail == [f"line{i}" for i in range(11, 31)]
    assert result.duration_ms >= 0


def test_a_missing_program_is_the_commands_failure(busybox_rootfs: Path, tmp_path: Path) -> None:
    result = runner.run(["/no/such/program"], lower=[busybox_rootfs], upper=tmp_path, env={}, cwd="/")

    assert result.exit_code not in (0, None)
    assert result.message == "the command could not be started: /no/such/program: No such file or directory"


# -- the layer ----------------------------------------------------------------------------------


def test_writes_land_in_the_upper_and_deletions_are_whiteouts(step: Step) -> None:
    result = step.run("echo hi > /f; mkdir -p /tmp/t; echo x > /tmp/t/y; rm /bin/ls")

    assert result.exit_code == 0
    assert (step.upper / "f").read_text() == "hi\n"
    assert (step.upper / "tmp/t/y").read_text() == "x\n"
    ls = os.lstat(step.upper / "bin/ls")
    assert stat.S_ISCHR(ls.st_mode) and ls.st_rdev == 0
    assert step.layer() == {"f", "tmp", "tmp/t", "tmp/t/y", "bin", "bin/ls"}


def test_a_replaced_directory_is_opaque_by_the_user_xattr(step: Step) -> None:
    # bwrap mounts overlayfs with userxattr: this, not trusted.overlay.opaque, marks the layer.
    result = step.run("rm -rf /etc && mkdir /etc && echo x > /etc/new && ls /etc")

    assert result.exit_code == 0
    assert step.printed("stdout") == "new\n"
    assert os.getxattr(step.upper / "etc", "user.overlay.opaque") == b"y"


def test_the_mount_points_are_not_left_in_the_layer(step: Step, busybox_rootfs: Path) -> None:
    assert not (busybox_rootfs / "dev").exists() and not (busybox_rootfs / "proc").exists()

    result = step.run("ls -d /dev /proc && echo hi > /dev/null")

    assert result.exit_code == 0
    assert step.layer() == set()


def test_no_mount_outlives_the_step(step: Step, tmp_path: Path) -> None:
    step.run("echo hi > /f")

    assert str(tmp_path) not in Path("/proc/mounts").read_text()
    spawners = _processes_with("studio-sandbox-spawner")  # which mount steps' overlays
    assert spawners and all(str(tmp_path) not in Path(f"/proc/{pid}/mounts").read_text() for pid in spawners)
    assert list(tmp_path.iterdir()) == [step.upper]  # the overlay's work directory is gone


def _mount_points(mountinfo: str) -> list[str]:
    return [line.split()[4] for line in Path(mountinfo).read_text().splitlines()]


def test_steps_start_among_fewer_mounts_and_the_host_keeps_every_one_of_its_own(step: Step) -> None:
    from builds.engine.sandbox import spawner

    before = _mount_points("/proc/self/mountinfo")
    assert step.run("test -c /dev/null && test -d /proc/self && echo ok").exit_code == 0
    assert step.printed("stdout") == "ok\n"

    # The namespace steps are started in has no /sys (no step sees one) and no host /dev/shm.
    theirs = _mount_points(f"/proc/{spawner._local.worker.spawner.proc.pid}/mountinfo")
    assert not [p for p in theirs if p == "/sys" or p.startswith(("/sys/", "/dev/shm", "/dev/pts"))]
    assert "/proc" in theirs and "/dev" in theirs
    # Taking them out there took none from the host.
    assert _mount_points("/proc/self/mountinfo") == before


def test_the_topmost_layer_wins(tmp_path: Path, busybox_rootfs: Path) -> None:
    middle = _layer(tmp_path, "middle", {"which": "middle\n", "only-middle": "m\n"})
    top = _layer(tmp_path, "top", {"which": "top\n"})
    step = Step([busybox_rootfs, middle, top], _layer(tmp_path, "upper", {}))

    step.run("cat /which /only-middle")

    assert step.printed("stdout") == "top\nm\n"


def test_layers_whose_paths_hold_commas_and_colons_stack(tmp_path: Path, busybox_rootfs: Path) -> None:
    odd = tmp_path / "a,b:c\\d"
    odd.mkdir()
    step = Step([busybox_rootfs, _layer(odd, "top", {"which": "top\n"})], _layer(odd, "upper:e,f", {}))

    result = step.run("cat /which; echo new > /new")

    assert result.exit_code == 0, result
    assert step.printed("stdout") == "top\n"
    assert step.layer() == {"new"}


def test_the_overlay_is_volatile_so_leaving_a_step_waits_for_no_disk_flush(step: Step) -> None:
    # Unmounting an overlay that is not volatile syncs the whole disk under it: each step then
    # waited for every byte the build had written so far (a big COPY's) to reach the disk.
    step.run("grep '^overlay / ' /proc/mounts")

    options = step.printed("stdout").split()[3].split(",")
    assert {"volatile", "fsync=volatile"} & set(options), options  # Linux 6.6 renamed it
    assert "userxattr" in options


def test_a_stack_of_a_hundred_layers_with_long_paths_runs(tmp_path: Path, busybox_rootfs: Path) -> None:
    # 100 paths of ~150 bytes are far past the page that overlayfs takes its options in.
    deep = tmp_path / ("d" * 100)
    layers = [busybox_rootfs] + [_layer(deep, f"layer-{i:03}-{'x' * 40}", {f"l{i}": "", "which": f"{i}\n"})
                                 for i in range(100)]
    step = Step(layers, _layer(tmp_path, "upper", {}))

    result = step.run("cat /which; ls / | grep -c '^l'; echo new > /new")

    assert result.exit_code == 0, result
    assert step.printed("stdout") == "99\n100\n"
    assert step.layer() == {"new"}
    mounts = Path("/proc/mounts").read_text()
    assert str(tmp_path) not in mounts and SHORT_DIR not in mounts


def _spawner_holds() -> list[int]:
    """The inodes this thread's spawner holds open (a detached mount's descriptor reads as
    "/", so it is told by its inode)."""
    from builds.engine.sandbox import spawner

    pid = spawner._local.worker.spawner.proc.pid
    held = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split()
            held.append(int(fields[fields.index("ino:") + 1]))
    return held


def test_a_layer_is_stacked_from_the_clone_of_the_step_before(tmp_path: Path, busybox_rootfs: Path) -> None:
    # Cloning every layer for every step, and tearing the clones down after it, cost each step
    # time in proportion to the image's depth: the spawner keeps the clones from step to step.
    layer = _layer(tmp_path, "layer", {"which": "one\n"})
    Step([busybox_rootfs, layer], _layer(tmp_path, "upper-1", {})).run("cat /which")

    assert _spawner_holds().count(layer.stat().st_ino) == 1
    step = Step([busybox_rootfs, layer], _layer(tmp_path, "upper-2", {}))
    step.run("cat /which")
    assert step.printed("stdout") == "one\n"
    assert _spawner_holds().count(layer.stat().st_ino) == 1  # the same clone, not a second


def test_a_layer_stored_again_under_its_path_is_seen_anew(tmp_path: Path, busybox_rootfs: Path) -> None:
    layer = _layer(tmp_path, "layer", {"which": "one\n"})
    first = Step([busybox_rootfs, layer], _layer(tmp_path, "upper-1", {}))
    first.run("cat /which")
    assert first.printed("stdout") == "one\n"

    old = layer.stat().st_ino
    shutil.rmtree(layer)  # deleted, then stored again with other content
    _layer(tmp_path, "layer", {"which": "two\n"})
    second = Step([busybox_rootfs, layer], _layer(tmp_path, "upper-2", {}))
    second.run("cat /which")
    assert second.printed("stdout") == "two\n"
    if layer.stat().st_ino != old:  # (a file system may give the new one the old number)
        assert old not in _spawner_holds()  # the deleted directory is let go

    os.rename(layer, tmp_path / "moved")  # still there, under another name, and replaced
    _layer(tmp_path, "layer", {"which": "three\n"})
    third = Step([busybox_rootfs, layer], _layer(tmp_path, "upper-3", {}))
    third.run("cat /which")
    assert third.printed("stdout") == "three\n"


def test_stacks_deeper_than_the_kept_clones_take_turns_and_each_sees_its_own_layers(
    tmp_path: Path, busybox_rootfs: Path
) -> None:
    # The spawner keeps 256 clones: a deeper stack, then another, then the deep one again makes
    # it let some go and clone them anew, whose descriptors may take the numbers of others.
    deep = [busybox_rootfs] + [_layer(tmp_path / "deep", f"{i:03}", {f"l{i}": "", "which": f"{i}\n"})
                               for i in range(300)]
    other = [busybox_rootfs, _layer(tmp_path, "other", {"which": "other\n"})]
    turns = [(deep, "299\n300\n"), (other, "other\n0\n"), (deep, "299\n300\n")]
    for n, (layers, expected) in enumerate(turns):
        step = Step(layers, _layer(tmp_path, f"upper-{n}", {}))
        result = step.run("cat /which; ls / | grep -c '^l[0-9]' || true")
        assert result.exit_code == 0, result
        assert step.printed("stdout") == expected


def test_the_working_directory_is_created_when_missing(step: Step) -> None:
    result = step.run("pwd", cwd="/app/src")

    assert result.exit_code == 0
    assert step.printed("stdout") == "/app/src\n"
    assert step.layer() == {"app", "app/src"}


def test_an_existing_working_directory_is_not_copied_into_the_layer(step: Step) -> None:
    step.run("pwd", cwd="/tmp")

    assert step.printed("stdout") == "/tmp\n"
    assert step.layer() == set()


# -- isolation ----------------------------------------------------------------------------------


def test_the_environment_is_exactly_the_one_given(step: Step, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_HOST_SECRET", "leak")
    env = {"PATH": PATH, "FOO": "bar baz", "EMPTY": "", "MULTI": "one\ntwo"}

    step.run("env -0", env=env)

    seen = dict(item.split("=", 1) for item in step.printed("stdout").split("\0") if item)
    shell_adds = {"PWD", "SHLVL"}
    assert {k: v for k, v in seen.items() if k not in shell_adds} == env


def test_there_is_no_network_but_loopback(step: Step) -> None:
    step.run("ip -o link | cut -d: -f2; hostname")

    assert step.printed("stdout") == " lo\nbuildkitsandbox\n"


def test_a_step_can_change_nothing_in_the_network_the_next_step_runs_in(step: Step, tmp_path: Path) -> None:
    step.run(
        "nc -l -p 7777 & sleep 0.2; netstat -ltn | grep -q 7777 && echo listening; "
        "ip link set lo down; ip addr add 10.9.9.9/8 dev lo; ip route add default dev lo; "
        "echo 0 > /proc/sys/net/ipv4/ip_forward"
    )
    assert step.printed("stdout") == "listening\n"
    refusals = step.printed("stderr")
    assert refusals.count("Operation not permitted") == 3 and "Read-only file system" in refusals

    after = Step(step.lower, _layer(tmp_path, "after", {}))
    after.run("ip -o addr | awk '{print $2, $3, $4}'; ip route; netstat -ltn | grep 7777 || echo closed")
    assert after.printed("stdout") == "lo inet 127.0.0.1/8\nlo inet6 ::1/128\nclosed\n"


def test_a_step_given_the_network_runs_in_the_workers_and_one_without_does_not(
    step: Step, tmp_path: Path
) -> None:
    host = os.readlink("/proc/self/ns/net")
    step.run("readlink /proc/self/ns/net", network=True)
    assert step.printed("stdout") == f"{host}\n"

    offline = Step(step.lower, _layer(tmp_path, "offline", {}))
    offline.run("readlink /proc/self/ns/net")
    assert offline.printed("stdout").startswith("net:[") and offline.printed("stdout") != f"{host}\n"


def _launcher() -> int:
    """This thread's launcher: between steps, the one child its spawner has."""
    from builds.engine.sandbox import spawner

    pid = spawner._local.worker.spawner.proc.pid
    (child,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(child)


def test_a_step_whose_launcher_dies_fails_at_once_and_the_next_step_runs(step: Step, tmp_path: Path) -> None:
    from builds.engine.sandbox import spawner

    step.run("true")
    launcher = _launcher()
    cgroups = Path(f"/proc/{spawner._local.worker.spawner.proc.pid}/cgroup").read_text()
    assert "/studio/" in cgroups and Path(f"/proc/{launcher}/cgroup").read_text() == cgroups
    threading.Timer(0.3, os.kill, (launcher, signal.SIGKILL)).start()
    started = time.monotonic()

    result = step.run("sleep 987649")

    assert (result.exit_code, result.message) == (-9, "the command exited with code -9")
    assert time.monotonic() - started < 5
    assert _eventually(lambda: not _processes_with("987649"))
    after = Step(step.lower, _layer(tmp_path, "after", {}))
    assert after.run("echo again").exit_code == 0 and after.printed("stdout") == "again\n"
    assert _launcher() != launcher and Path(f"/proc/{_launcher()}/cgroup").read_text() == cgroups


def test_the_seccomp_filter_every_step_is_given_cannot_be_changed(step: Step) -> None:
    assert step.run("true").exit_code == 0
    launcher = _launcher()
    (held,) = [fd for fd in os.listdir(f"/proc/{launcher}/fd")
               if os.readlink(f"/proc/{launcher}/fd/{fd}").startswith("/memfd:seccomp")]
    # Opened again through /proc, writable as far as its mode goes: the seals still refuse.
    fd = os.open(f"/proc/{launcher}/fd/{held}", os.O_RDWR)
    try:
        with pytest.raises(PermissionError):
            os.pwrite(fd, b"\x06\x00\x00\x00\x00\x00\xff\x7f", 0)  # "allow everything"
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)
    assert step.run("true").exit_code == 0


def test_the_command_is_the_first_process_as_in_a_container(step: Step) -> None:
    step.run("echo $$; ps -o pid,comm; true")  # not the last command: sh would exec it
    pid, _header, first, *_ = step.printed("stdout").split("\n")
    assert pid == "1"
    assert first.split() == ["1", "sh"]


def test_the_command_does_not_have_all_of_roots_capabilities(step: Step) -> None:
    result = step.run("mount -t tmpfs none /tmp 2>&1; grep CapEff /proc/self/status")

    assert "Operation not permitted" in step.printed("stdout") or "denied" in step.printed("stdout")
    cap_eff = int(step.printed("stdout").split("CapEff:")[1].split()[0], 16)
    cap_sys_admin = 1 << 21
    assert cap_eff and not cap_eff & cap_sys_admin
    assert result.exit_code == 0


def test_it_runs_as_the_images_user(step: Step) -> None:
    if nsenter() is None:
        pytest.skip("no static busybox to switch users with")

    result = step.run("id -u; id -g; touch /tmp/mine; touch /root/theirs 2>/dev/null || echo denied",
                      user="nobody")

    assert result.exit_code == 0
    assert step.printed("stdout") == "65534\n65534\ndenied\n"
    mine = os.lstat(step.upper / "tmp/mine")
    assert (mine.st_uid, mine.st_gid) == (65534, 65534)


def test_a_numeric_user_and_group_need_no_entry(step: Step) -> None:
    if nsenter() is None:
        pytest.skip("no static busybox to switch users with")

    step.run("id -u; id -g", user="1234:nogroup")

    assert step.printed("stdout") == "1234\n65534\n"


def test_an_unknown_user_is_a_clear_failure(step: Step) -> None:
    result = step.run("true", user="ghost")

    assert (result.exit_code, result.limit) == (None, None)
    assert result.message == "unable to find user ghost: no matching entries in passwd file"


# -- limits -------------------------------------------------------------------------------------


def test_the_time_limit_kills_the_command_and_its_background_children(step: Step) -> None:
    started = time.monotonic()
    result = step.run("sleep 987654 & sleep 987653", limits=Limits(timeout_s=0.5))

    assert (result.exit_code, result.limit) == (None, "timeout")
    assert result.message == "the step ran longer than its time limit of 0.5 seconds and was stopped"
    assert time.monotonic() - started < 3
    assert _eventually(lambda: not _processes_with("98765"))


def test_the_memory_limit_kills_a_step_that_needs_more(step: Step) -> None:
    result = step.run("dd if=/dev/zero of=/dev/null bs=64M count=1",
                      limits=Limits(timeout_s=20, memory_bytes=32 << 20))

    assert (result.exit_code, result.limit) == (None, "memory")
    assert result.message == "the step used more than its memory limit of 32 MiB and was killed"


def test_a_fork_bomb_is_contained(step: Step) -> None:
    started = time.monotonic()
    result = step.run("f(){ f|f& }; f; sleep 10", limits=Limits(timeout_s=20, pids=16))

    assert (result.exit_code, result.limit) == (None, "pids")
    assert "more than 16 processes at once" in result.message
    assert time.monotonic() - started < 5
    assert _eventually(lambda: not _our_sandboxed_processes())


def test_flooding_the_output_stops_the_step(step: Step) -> None:
    result = step.run("yes", limits=Limits(timeout_s=20, output_bytes=64 << 10))

    assert (result.exit_code, result.limit) == (None, "output")
    assert result.message.startswith("the step printed more than 64 KiB of output")
    assert len(step.printed("stdout")) <= 64 << 10
    assert result.tail == ["y"] * 20


def test_filling_the_disk_with_one_file_stops_the_step(step: Step) -> None:
    result = step.run("dd if=/dev/zero of=/big bs=1M count=64", limits=SMALL_DISK)

    assert (result.exit_code, result.limit) == (None, "disk")
    assert result.message == "the step wrote more than 8 MiB to its layer (its disk limit) and was stopped"
    shutil.rmtree(step.upper)  # what is left can be thrown away


def test_filling_the_disk_with_many_files_stops_the_step(step: Step) -> None:
    started = time.monotonic()
    fill = "i=0; while true; do i=$((i+1)); dd if=/dev/zero of=/f$i bs=1M count=1 2>/dev/null; done"
    result = step.run(fill, limits=SMALL_DISK)

    assert (result.exit_code, result.limit) == (None, "disk")
    assert time.monotonic() - started < 5


def test_a_cancel_stops_the_step_at_once(step: Step) -> None:
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()

    result = step.run("sleep 987652", cancel=cancel)

    assert (result.exit_code, result.limit, result.message) == (None, "cancelled", "the build was cancelled")
    assert time.monotonic() - started < 2
    assert _eventually(lambda: not _processes_with("987652"))


def test_a_kill_in_the_first_milliseconds_leaves_no_process_behind(step: Step) -> None:
    # bwrap's sandboxed child arranges to die with bwrap only a moment after it is cloned: a kill
    # inside that moment (a time limit hit at once, on a loaded machine) must still take it.
    for tenths_ms in range(1, 30, 4):
        step.run("sleep 987650", limits=Limits(timeout_s=tenths_ms / 10000))
    assert _eventually(lambda: not _processes_with("987650")), _processes_with("987650")


def test_steps_run_one_after_another_after_a_limit(step: Step, tmp_path: Path, busybox_rootfs: Path) -> None:
    step.run("f(){ f|f& }; f; sleep 10", limits=Limits(timeout_s=20, pids=16))
    after = Step([busybox_rootfs], _layer(tmp_path, "after", {}))

    result = after.run("for i in 1 2 3 4 5 6 7 8 9 10; do sh -c true & done; wait; echo ok")

    assert (result.exit_code, result.limit) == (0, None)


def test_steps_in_different_threads_each_run(busybox_rootfs: Path, tmp_path: Path) -> None:
    results: list[RunResult] = []

    def one(i: int) -> None:
        results.append(Step([busybox_rootfs], _layer(tmp_path, f"u{i}", {})).run(f"echo {i} > /f"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [r.exit_code for r in results] == [0, 0, 0]
    assert sorted((tmp_path / f"u{i}/f").read_text() for i in range(3)) == ["0\n", "1\n", "2\n"]


def test_the_spawner_kills_what_a_step_leaves_behind_when_it_ends() -> None:
    # What a killed bwrap can leave (its init, before that armed its parent-death signal) is
    # adopted by the spawner; here a process that outlives its parent stands in for it.
    from builds.engine.sandbox.spawner import _Spawner

    spawner = _Spawner()
    try:
        read, write = os.pipe()
        spawner.spawn(["/bin/sh", "-c", "sleep 9876123 & exit 0"], [], write, write)
        os.close(write)
        assert spawner.status() == 0
        os.close(read)
        assert _eventually(lambda: not _processes_with("9876123"))
    finally:
        spawner.close()
