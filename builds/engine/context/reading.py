"""Reading one file (the Dockerfile, .dockerignore) from inside the build context, links checked."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import ContextError


class EscapesContext(ContextError):
    """A file that must come from inside the build context is a link leading out of it."""


def _lexically_inside(root: Path, path: Path, spelled_root: Path | None) -> bool:
    """Whether `path`, as written (links not followed), names something in the context `root`
    (given resolved; a context reached through a link counts by the name it was given too)."""
    spelled = Path(os.path.abspath(path))
    bases = (root, Path(os.path.abspath(spelled_root or root)))
    return any(spelled == base or spelled.is_relative_to(base) for base in bases)


def read_inside(root: Path, path: Path, *, limit: int, what: str, spelled_root: Path | None = None) -> bytes:
    """The bytes of the file `path`, read as BuildKit reads the Dockerfile and .dockerignore:
    a path inside the context `root` (resolved) is read only when it stays inside it through
    every link (EscapesContext otherwise, before anything of the target is read); a path outside
    the context (`-f` on the command line, as `docker build` allows) is read as named. Only a
    regular file of at most `limit` bytes is read (ContextError naming `what`);
    FileNotFoundError when there is none."""
    real = Path(os.path.realpath(path))
    if _lexically_inside(root, path, spelled_root) and not (real == root or real.is_relative_to(root)):
        raise EscapesContext(f"{what} is a symbolic link leading outside the build context: it is read "
                             "only from inside the context", file=what)
    # O_NONBLOCK: a FIFO must not hold the build up at open(); it is refused just below.
    fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ContextError(f"{what} is not a regular file", file=what)
        if st.st_size > limit:
            raise too_large(what, limit)
        data = os.read(fd, limit + 1)  # a regular file: one read gives all that is there
        while len(data) <= limit and (more := os.read(fd, limit + 1 - len(data))):
            data += more
    finally:
        os.close(fd)
    if len(data) > limit:
        raise too_large(what, limit)
    return data


def too_large(what: str, limit: int) -> ContextError:
    from ..limits import describe_size  # limits imports the sandbox package: only when needed

    env = "STUDIO_BUILD_DOCKERFILE_KB"
    return ContextError(f"{what} is larger than {describe_size(limit)} (the limit {env} sets)", file=what)

