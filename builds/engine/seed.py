"""Base images the studio can make on its own machine, with no registry.

`busybox_rootfs` writes a root-filesystem tarball from the static busybox Debian ships
(`busybox-static`): the shell and its applets, /etc/passwd and /etc/group, /tmp. Small (about
2 MB) and enough for teaching: `sh`, `echo`, `cp`, `find`, `sort`, `wget` (offline), ...

`debian_rootfs` makes a minimal Debian (`debootstrap --variant=minbase`, as Docker's official
`debian` images are made): it needs root, `debootstrap` and a Debian mirror, and a few minutes.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from .errors import InputError

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
MTIME = 1700000000  # fixed, so the same busybox gives the same tarball


def find_busybox() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        if path.is_file() and _is_static(path):
            return path
    found = shutil.which("busybox")
    if found and _is_static(Path(found)):
        return Path(found)
    raise InputError("no static busybox on this machine: install Debian's busybox-static")


def _is_static(path: Path) -> bool:
    # A dynamically linked busybox would need the host's libc inside the image.
    with open(path, "rb") as f:
        head = f.read(4096)
    return head.startswith(b"\x7fELF") and b"ld-linux" not in head


def applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def busybox_rootfs(out: Path, busybox: Path | None = None) -> Path:
    """Write the rootfs tarball to `out` and return it."""
    busybox = busybox or find_busybox()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "tmp"):
            _add(tar, name, tarfile.DIRTYPE, mode=0o1777 if name == "tmp" else 0o755)
        info = _info("bin/busybox", tarfile.REGTYPE, 0o755)
        info.size = busybox.stat().st_size
        with open(busybox, "rb") as f:
            tar.addfile(info, f)
        for applet in applets(busybox):
            if applet != "bin/busybox" and applet.count("/") >= 1:
                link = _info(applet, tarfile.SYMTYPE, 0o777)
                link.linkname = "/bin/busybox"
                tar.addfile(link)
        _add_text(tar, "etc/passwd", PASSWD)
        _add_text(tar, "etc/group", GROUP)
    return out


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, MTIME
    return info


def _add(tar: tarfile.TarFile, name: str, kind: bytes, *, mode: int) -> None:
    tar.addfile(_info(name, kind, mode))


def _add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    info = _info(name, tarfile.REGTYPE, 0o644)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def debian_rootfs(out: Path, work: Path, suite: str = "bookworm", mirror: str | None = None) -> Path:
    """Write a minimal Debian `suite` root filesystem tarball to `out` (`work`: an empty
    directory on a disk with ~300 MB free). Raises InputError saying what is missing."""
    if shutil.which("debootstrap") is None:
        raise InputError("debootstrap is not installed: install Debian's debootstrap")
    if os.geteuid() != 0:
        raise InputError("debootstrap needs root to make a Debian root filesystem")
    rootfs = work / "rootfs"
    command = ["debootstrap", "--variant=minbase", suite, str(rootfs), *([mirror] if mirror else [])]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise InputError(f"debootstrap {suite} failed (exit {done.returncode}):\n{tail}")
    # What a container gets from its runtime, or never needs: device nodes, downloaded
    # packages and package lists (as Docker's debian images leave them out).
    for emptied in ("dev", "proc", "sys", "tmp", "var/cache/apt/archives", "var/lib/apt/lists", "var/log"):
        for entry in (rootfs / emptied).glob("*"):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    tar = ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(out), "."]
    subprocess.run(tar, check=True)
    shutil.rmtree(rootfs, ignore_errors=True)
    return out
