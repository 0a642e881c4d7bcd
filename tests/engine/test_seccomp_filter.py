"""The seccomp filter every RUN step loads: it decides as libseccomp's plain list of rules does,
for every system call number of every architecture it covers, and it decides quickly.

Each step loads the filter, and the kernel then runs it once for every system call number to
cache the ones it always allows; a step's calls that take arguments into account (clone, socket,
personality) run it again each time. A filter that compares the number against each rule in
turn costs about a millisecond a step here; a binary tree a quarter of that."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterator

import pytest

from builds.engine.sandbox import syscalls

AUDIT_ARCH_X86_64, AUDIT_ARCH_I386 = 0xC000003E, 0x40000003
X32_BIT = 0x40000000
CLONE_NEWUSER, CLONE_NEWNET, CLONE_VM = 0x10000000, 0x40000000, 0x100

# Libseccomp's default layout of the same rules: the filter module's own compiler, with the
# layout attribute it sets left at libseccomp's default.
LIST_LAYOUT = """
import runpy, sys
import seccomp
class ListFilter(seccomp.SyscallFilter):
    def set_attr(self, attr, value):
        if attr != seccomp.Attr.CTL_OPTIMIZE:
            super().set_attr(attr, value)
seccomp.SyscallFilter = ListFilter
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def run_filter(program: bytes, nr: int, arch: int, args: tuple[int, ...]) -> tuple[int, int]:
    """Classic BPF as the kernel runs it over `struct seccomp_data`: (the return value, how many
    instructions it took). Only the instructions libseccomp emits; any other fails the test."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, *args, *([0] * (6 - len(args))))
    a = 0
    pc = 0
    steps = 0
    while True:
        code, jt, jf, k = struct.unpack_from("<HBBI", program, pc * 8)
        steps += 1
        pc += 1
        if code == 0x20:  # ld [k]
            a = struct.unpack_from("<I", data, k)[0]
        elif code == 0x54:  # and #k
            a &= k
        elif code == 0x05:  # ja
            pc += k
        elif code in (0x15, 0x25, 0x35, 0x45):  # jeq, jgt, jge, jset
            taken = {0x15: a == k, 0x25: a > k, 0x35: a >= k, 0x45: bool(a & k)}[code]
            pc += jt if taken else jf
        elif code == 0x06:  # ret #k
            return k, steps
        else:
            pytest.fail(f"instruction {code:#x} at {pc - 1} is not one this test knows")


def calls() -> Iterator[tuple[int, int, tuple[int, ...]]]:
    """Every system call number of the three ABIs, each with arguments that matter to a rule."""
    arguments = [(), (CLONE_NEWUSER,), (CLONE_NEWNET | CLONE_VM,), (CLONE_VM,), (1,), (2,), (10,),
                 (16,), (17,), (38,), (0x8,), (0x20008,), (0xFFFFFFFF,), (0x1_0000_0000,)]
    for arch, offset in ((AUDIT_ARCH_X86_64, 0), (AUDIT_ARCH_X86_64, X32_BIT), (AUDIT_ARCH_I386, 0)):
        for nr in range(0, 600):
            for args in arguments:
                yield nr + offset, arch, args
    yield 59, 0xC00000B7, ()  # another architecture (aarch64): refused as a whole


@pytest.fixture(scope="module")
def programs() -> tuple[bytes, bytes]:
    shipped = syscalls.bpf()
    listed = subprocess.run([syscalls.SYSTEM_PYTHON, "-I", "-c", LIST_LAYOUT, syscalls.__file__],
                            capture_output=True, check=True, timeout=60).stdout
    assert listed and len(listed) % 8 == 0
    return shipped, listed


def test_the_filter_decides_every_call_as_the_plain_rules_do(programs: tuple[bytes, bytes]) -> None:
    shipped, listed = programs
    differences = []
    for nr, arch, args in calls():
        ours, plain = run_filter(shipped, nr, arch, args)[0], run_filter(listed, nr, arch, args)[0]
        if ours != plain:
            differences.append((hex(arch), nr, args, hex(ours), hex(plain)))
    assert differences == []
    # And the rules are still there: a plain allow, a refused namespace, a refused family.
    allow, eperm = 0x7FFF0000, 0x00050001
    assert run_filter(shipped, 0, AUDIT_ARCH_X86_64, ())[0] == allow  # read
    assert run_filter(shipped, 56, AUDIT_ARCH_X86_64, (CLONE_NEWUSER,))[0] == eperm  # clone
    assert run_filter(shipped, 41, AUDIT_ARCH_X86_64, (38,))[0] == eperm  # socket(AF_ALG)


def test_the_filter_decides_any_call_in_a_few_dozen_instructions(programs: tuple[bytes, bytes]) -> None:
    shipped, _ = programs
    longest = max(run_filter(shipped, nr, arch, args)[1] for nr, arch, args in calls())
    assert longest <= 40, f"a call took {longest} instructions to decide"
