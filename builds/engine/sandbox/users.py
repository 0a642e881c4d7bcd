"""USER inside the sandbox: resolving it against the image, and how the ids are set."""

from __future__ import annotations

import functools
from pathlib import Path

from ..errors import InputError
from ..rootfs import RootFS
from ..seed import find_busybox
from .model import SandboxError

#
# bwrap starts the step as the user namespace's root, and is not asked to switch ids (its own
# --uid needs the namespace to be its own). So bwrap runs the host's static busybox, bound onto
# its private /dev, as `nsenter -S uid -G gid -- argv`, which sets the ids (inside the user
# namespace: on disk, through the idmapped layers, the files get exactly uid/gid, as in Docker)
# and execs the command. What differs from Docker: supplementary groups are not set (Docker
# adds the user's groups from /etc/group), and no_new_privs is on (bwrap always sets it), so
# setuid programs such as sudo gain nothing.


def resolve_user(user: str | None, lower: list[Path]) -> tuple[int, int]:
    """(uid, gid) for a USER value, looked up in the image's /etc/passwd and /etc/group as
    runc does: a numeric uid needs no entry (its gid is then 0), a name does."""
    if not user:
        return 0, 0
    name, _, group = user.partition(":")
    image = RootFS(lower)
    passwd = _table(image, "etc/passwd")
    entry = next((e for e in passwd if e[0] == name), None)
    if entry is None and name.isdigit():
        entry = next((e for e in passwd if e[2] == name), None) or [name, "", name, "0"]
    if entry is None or not entry[2].isdigit():
        raise SandboxError(f"unable to find user {name}: no matching entries in passwd file")
    uid, gid = int(entry[2]), int(entry[3]) if len(entry) > 3 and entry[3].isdigit() else 0
    if group:
        gid = _resolve_group(group, _table(image, "etc/group"))
    if (uid, gid) != (0, 0) and nsenter() is None:
        raise SandboxError(f"USER {user} needs a static busybox on the build machine "
                           "(Debian's busybox-static)")
    return uid, gid


def _resolve_group(group: str, table: list[list[str]]) -> int:
    if group.isdigit():
        return int(group)
    entry = next((e for e in table if e[0] == group and len(e) > 2 and e[2].isdigit()), None)
    if entry is None:
        raise SandboxError(f"unable to find group {group}: no matching entries in group file")
    return int(entry[2])


def _table(image: RootFS, path: str) -> list[list[str]]:
    data = image.read_bytes(path) or b""
    lines = data.decode("utf-8", "replace").splitlines()
    return [line.split(":") for line in lines if line.strip() and not line.startswith("#")]


@functools.cache
def nsenter() -> str | None:
    try:
        return str(find_busybox())
    except InputError:
        return None

