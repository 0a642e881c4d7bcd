"""The adversarial corpus: every case in cases/ is built with the real command line
(`manage.py build`) and must end within its time with its exit code and a message naming the
file and line (README.md in this folder says what each case is).

A case is `cases/<name>/case.json`: the context's files (text, repeated text, generated archives,
names given as hex bytes, links to a file outside the context, FIFOs), the command line's extra
arguments and environment, and what must come out.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[2]
CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if (p / "case.json").is_file())


@pytest.fixture(scope="module")
def seeded_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("adversarial") / "store"
    env = {**os.environ, "STUDIO_DATA_DIR": str(store)}
    subprocess.run([sys.executable, "manage.py", "images", "seed"], cwd=PROJECT, env=env, check=True,
                   capture_output=True)
    return store


def _tar_bomb(path: Path, files: int, size_mib: int) -> None:
    """A tar.gz of `files` files of `size_mib` MiB of zeros each. A MiB of zeros is deflated once
    and ended with a full flush, which makes its bytes stand alone: repeated, they inflate to
    that many MiB, so a 16 GiB archive takes a moment to make. (The gzip trailer's CRC is left
    zero: extraction stops long before it.)"""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    mib_of_zeros = squeeze.compress(bytes(1 << 20)) + squeeze.flush(zlib.Z_FULL_FLUSH)
    with open(path, "wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")  # gzip header, no name, no time
        for i in range(files):
            info = tarfile.TarInfo(f"f{i:02d}")
            info.size = size_mib << 20
            header = info.tobuf(format=tarfile.USTAR_FORMAT)
            out.write(squeeze.compress(header) + squeeze.flush(zlib.Z_FULL_FLUSH))
            for _ in range(size_mib):
                out.write(mib_of_zeros)
        out.write(squeeze.compress(bytes(1024)) + squeeze.flush())
        out.write(bytes(8))  # CRC and size


def _tar_claims(path: Path, size: int) -> None:
    """A plain tar whose one entry's header claims `size` bytes, with none of them there."""
    info = tarfile.TarInfo("big")
    info.size = size
    path.write_bytes(info.tobuf(format=tarfile.GNU_FORMAT))


def _write(context: Path, outside: Path, spec: dict[str, Any]) -> None:
    name = bytes.fromhex(spec["name_hex"]) if "name_hex" in spec else spec["name"].encode()
    path = os.fsencode(context) + b"/" + name
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if "symlink_outside" in spec:
        target = outside / f"host-file-{len(list(outside.iterdir()))}"
        target.write_text(spec["symlink_outside"])
        os.symlink(target, path)
    elif spec.get("fifo"):
        os.mkfifo(path)
    elif "tar_bomb" in spec:
        _tar_bomb(Path(os.fsdecode(path)), **spec["tar_bomb"])
    elif "tar_claims" in spec:
        _tar_claims(Path(os.fsdecode(path)), spec["tar_claims"])
    elif "zeros_mib" in spec:
        with open(path, "wb") as f:
            f.truncate(spec["zeros_mib"] << 20)
    elif "count" in spec:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        for i in range(spec["count"]):
            with open(path + b"%d" % i, "wb") as f:
                f.write(b"%d" % i)
    else:
        with open(path, "wb") as f:
            f.write(spec.get("text", "").encode())
            if "then" in spec:
                f.write(spec["then"].encode() * spec["repeat"])
            f.write(spec.get("after", "").encode())


def _store_bytes(store: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(store):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


# Runs manage.py as the command line does, and on the way out writes the process's peak memory
# (VmHWM: this program's own, not the test runner's it was forked from) to the file $PEAK_FILE.
_MEASURED = """
import atexit, os, runpy, sys
def peak():
    with open("/proc/self/status") as status, open(os.environ["PEAK_FILE"], "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(peak)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _run(argv: list[str], env: dict[str, str], *, timeout: float, out: Path
         ) -> tuple[subprocess.CompletedProcess[bytes], int]:
    """Run the command line; also give its peak memory in KiB."""
    peak = out / "peak"
    done = subprocess.run([sys.executable, "-c", _MEASURED, *argv], cwd=PROJECT,
                          env={**env, "PEAK_FILE": str(peak)}, capture_output=True, timeout=timeout)
    return done, int(peak.read_text()) if peak.is_file() else 0


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Path, tmp_path: Path, seeded_store: Path) -> None:
    spec = json.loads((case / "case.json").read_text())
    context, outside = tmp_path / "context", tmp_path / "outside"
    context.mkdir()
    outside.mkdir()
    for file in spec["files"]:
        _write(context, outside, file)
    if spec.get("context_via_link"):  # the context named through a link to it
        (tmp_path / "link").symlink_to(context)
        context = tmp_path / "link"
    args = [a.replace("{context}", str(context)) for a in spec.get("args", [])]
    env = {**os.environ, "STUDIO_DATA_DIR": str(seeded_store), **spec.get("env", {})}
    before = _store_bytes(seeded_store)
    started = time.monotonic()
    done, peak_kib = _run(["manage.py", "build", str(context), *args], env,
                          timeout=spec["seconds"] * 4 + 30, out=tmp_path)
    took = time.monotonic() - started
    if "max_memory_mib" in spec:
        peak = f"the build's process peaked at {peak_kib >> 10} MiB"
        assert 0 < peak_kib < spec["max_memory_mib"] << 10, peak
    out = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in out, out[-3000:]
    assert done.returncode == spec["exit"], out[-3000:]
    assert spec["message"] in out, out[-3000:]
    assert took < spec["seconds"], f"took {took:.1f}s, more than {spec['seconds']}s"
    if "stdout" in spec:
        assert spec["stdout"] in done.stdout.decode(), out[-3000:]
    if "absent" in spec:
        assert spec["absent"] not in out
    if spec.get("store_unchanged"):
        # The partial layer went with the failed step: the store grew by no more than its small
        # bookkeeping files once the trash it was moved to is emptied, which a low-priority
        # process does just after the build (it may empty an earlier case's trash too).
        deadline = time.monotonic() + 30
        while _store_bytes(seeded_store) - before >= 1 << 20 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _store_bytes(seeded_store) - before < 1 << 20
