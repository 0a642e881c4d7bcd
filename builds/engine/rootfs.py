"""A read-only merged view over a stack of unpacked layers, resolved the way overlayfs does.

Used where the engine must look into an image without running anything: whether a COPY
destination is a directory, the files a `COPY --from` reads, the user names in /etc/passwd.
Symlinks inside the image resolve against the image's root, never the host's.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# A RUN's overlay is mounted with `userxattr`, so the opaque directories it makes carry the
# user.* name; layers imported or made otherwise may carry the trusted.* one.
OPAQUE_XATTRS = ("user.overlay.opaque", "trusted.overlay.opaque")
_MAX_LINKS = 40


@dataclass(frozen=True)
class Found:
    path: str  # inside the image, normalised, no leading "/"
    real: Path  # the file on the host, in the topmost layer that has it
    st: os.stat_result


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(real: Path) -> bool:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(real, name) == b"y":
                return True
        except OSError:
            pass
    return False


def _lstat(p: Path) -> os.stat_result | None:
    try:
        return os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):
        return None


def split(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


class RootFS:
    def __init__(self, layers: list[Path]) -> None:
        self.layers = list(layers)  # bottom first

    # -- one entry ----------------------------------------------------------------------------
    def _top(self, parts: list[str]) -> Found | None:
        """The topmost entry at an already-resolved path (no symlinks among its parents)."""
        rel = "/".join(parts)
        for layer in reversed(self.layers):
            real = layer / rel if rel else layer
            st = _lstat(real)
            if st is not None:
                return None if is_whiteout(st) else Found(rel, real, st)
            if self._hidden_below(layer, parts):
                return None
        return None

    def _hidden_below(self, layer: Path, parts: list[str]) -> bool:
        """Whether `layer` hides the lower layers' entry at `parts`: a parent of it is whited
        out, is opaque, or is not a directory in this layer."""
        real = layer
        for part in parts[:-1]:
            real = real / part
            st = _lstat(real)
            if st is None:
                return False
            if is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                return True
            if is_opaque(real):
                return True
        return False

    def resolve(self, path: str, *, follow: bool = True) -> Found | None:
        """The entry at `path`, resolving symlinks in its parents (and in the last component
        when `follow`) against the image's root."""
        todo = split(path)
        done: list[str] = []
        hops = 0
        found: Found | None = self._top([])
        while todo:
            part = todo.pop(0)
            if part == "..":
                if done:
                    done.pop()
                found = self._top(done)
                continue
            found = self._top([*done, part])
            if found is None:
                return None
            if stat.S_ISLNK(found.st.st_mode) and (todo or follow):
                hops += 1
                if hops > _MAX_LINKS:
                    return None
                target = os.readlink(found.real)
                if target.startswith("/"):
                    done = []
                todo = split(target) + todo
                continue
            done.append(part)
        return found

    def is_dir(self, path: str) -> bool:
        found = self.resolve(path)
        return found is not None and stat.S_ISDIR(found.st.st_mode)

    def read_bytes(self, path: str) -> bytes | None:
        found = self.resolve(path)
        if found is None or not stat.S_ISREG(found.st.st_mode):
            return None
        return found.real.read_bytes()

    # -- directories --------------------------------------------------------------------------
    def listdir(self, path: str) -> dict[str, Found]:
        """The merged entries of the directory at `path` (already resolved), by name."""
        parts = split(path)
        rel = "/".join(parts)
        merged: dict[str, Found] = {}
        hidden: set[str] = set()
        for layer in reversed(self.layers):
            real = layer / rel if rel else layer
            st = _lstat(real)
            if st is None:
                if self._hidden_below(layer, parts):
                    break
                continue
            if is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                break
            for entry in os.scandir(real):
                if entry.name in merged or entry.name in hidden:
                    continue
                est = entry.stat(follow_symlinks=False)
                if is_whiteout(est):
                    hidden.add(entry.name)
                else:
                    child = f"{rel}/{entry.name}" if rel else entry.name
                    merged[entry.name] = Found(child, Path(entry.path), est)
            if is_opaque(real):
                break
        return merged

    def walk(self, found: Found) -> Iterator[Found]:
        """`found` and, for a directory, everything below it, parents first, sorted by path."""
        yield found
        if stat.S_ISDIR(found.st.st_mode):
            children = self.listdir(found.path)
            for name in sorted(children):
                yield from self.walk(children[name])
