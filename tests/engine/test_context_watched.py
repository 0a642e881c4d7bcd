"""A context read ahead under an inotify watch (context/watched.py): taken by the next build only
when nothing in it changed, whatever the change, even one that leaves every stat as it was."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builds.engine.context import BuildContext, HashCache, watched

LIMIT = 256 << 10


def tree(root: Path) -> Path:
    for rel, text in {
        "Dockerfile": "FROM scratch\nCOPY . /app\n",
        ".dockerignore": "*.log\nbuild/\n",
        "requirements.txt": "flask==3.0\n",
        "src/app.py": "print('hi')\n",
        "src/pkg/util.py": "X = 1\n",
        "src/pkg/deep/more.py": "Y = 2\n",
        "debug.log": "noise\n",
        "build/out.bin": "artifact\n",
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "src" / "link").symlink_to("app.py")
    # Names as hostile as a file system allows: not UTF-8, a newline, a leading dash.
    odd = os.path.join(os.fsencode(root / "src"), b"caf\xe9 \n-x")
    os.mkdir(odd)
    with open(os.path.join(odd, b"\xff.txt"), "wb") as f:
        f.write(b"bytes\n")
    return root


def fresh(root: Path, dockerfile: Path | None = None) -> BuildContext:
    return BuildContext(root, dockerfile=dockerfile or root / "Dockerfile", ignore_limit=LIMIT)


def listing(ctx: BuildContext) -> dict[str, str]:
    """Every visible path's digest, as a COPY of the whole context sees them."""
    found = {"": ctx.entry("").digest}  # type: ignore[union-attr]
    stack = [""]
    while stack:
        rel = stack.pop()
        for name in ctx.children(rel):
            child = f"{rel}/{name}" if rel else name
            entry = ctx.entry(child)
            assert entry is not None
            found[child] = entry.digest
            if entry.kind == "dir":
                stack.append(child)
    return found


def read_ahead(root: Path, dockerfile: Path | None = None, *, known: dict | None = None) -> None:  # type: ignore[type-arg]
    """What the warm engine's spare does for the build after the one reading `root`: read it
    while that build runs, then take the digests from the hash cache that build left."""
    dockerfile = dockerfile or root / "Dockerfile"
    assert watched.start(watched.key(root, dockerfile, LIMIT)) == "reading the context ahead"
    if known is None:
        cache = HashCache(racy_window_ns=0)
        listing(BuildContext(root, dockerfile=dockerfile, ignore_limit=LIMIT, hash_cache=cache))
        known = cache.entries
    watched.digests_known(known)
    assert watched._reading is not None
    if known:  # all of them: the reading ends (else it waits for the next cache saved)
        watched._reading.thread.join(20)
        assert not watched._reading.thread.is_alive()


def take(root: Path, dockerfile: Path | None = None) -> BuildContext | None:
    return watched.take(root, dockerfile or root / "Dockerfile", LIMIT, HashCache())


@pytest.fixture(autouse=True)
def nothing_left_reading() -> Iterator[None]:
    yield
    take(Path("/nonexistent"))  # closes a reading a test left untaken


def test_an_unchanged_context_is_taken_with_every_digest_a_fresh_read_gives(tmp_path: Path) -> None:
    root = tree(tmp_path / "ctx")
    expected = listing(fresh(root))
    read_ahead(root)
    ctx = take(root)
    assert ctx is not None and watched.outcome is not None and watched.outcome.startswith("took")
    assert ctx._entries  # the digests were taken ahead, not by this build
    assert listing(ctx) == expected
    assert "debug.log" not in expected and "build" not in expected  # .dockerignore held
    assert os.fsdecode(b"src/caf\xe9 \n-x/\xff.txt") in expected  # watched and read as it is named


def test_a_change_under_a_name_that_is_not_utf8_is_seen(tmp_path: Path) -> None:
    root = tree(tmp_path / "ctx")
    read_ahead(root)
    with open(os.path.join(os.fsencode(root / "src"), b"caf\xe9 \n-x", b"\xff.txt"), "ab") as f:
        f.write(b"more\n")
    assert take(root) is None


def test_a_reading_ahead_that_met_a_file_the_hash_cache_lacks_leaves_it_to_the_build(tmp_path: Path) -> None:
    root = tree(tmp_path / "ctx")
    expected = listing(fresh(root))
    read_ahead(root, known={})  # a cache that knows nothing: nothing is hashed ahead
    ctx = take(root)
    assert ctx is not None and not ctx._leaves
    assert listing(ctx) == expected


def same_size_same_times(root: Path) -> None:
    path = root / "src" / "pkg" / "util.py"
    st = path.stat()
    path.write_text("X = 9\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def replace_root(root: Path) -> None:
    os.rename(root, root.with_name("old"))
    shutil.copytree(root.with_name("old"), root, symlinks=True)
    (root / "src" / "app.py").write_text("print('other')\n")


CHANGES: dict[str, Callable[[Path], None]] = {
    "an edit that keeps size and mtime": same_size_same_times,
    "a new file deep down": lambda root: (root / "src" / "pkg" / "deep" / "new.py").write_text(""),
    "a removed file": lambda root: (root / "requirements.txt").unlink(),
    "a renamed directory": lambda root: (root / "src" / "pkg").rename(root / "src" / "pkg2"),
    "a mode change": lambda root: (root / "src" / "app.py").chmod(0o755),
    "a .dockerignore edit": lambda root: (root / ".dockerignore").write_text("*.log\n"),
    "a link retargeted": lambda root: ((root / "src" / "link").unlink(),
                                       (root / "src" / "link").symlink_to("pkg")),
    "the context replaced": replace_root,
}


@pytest.mark.parametrize("change", CHANGES)
def test_any_change_after_the_reading_has_the_build_read_the_context_itself(
    tmp_path: Path, change: str
) -> None:
    root = tree(tmp_path / "ctx")
    read_ahead(root)
    CHANGES[change](root)
    assert take(root) is None
    assert watched.outcome == "the context read ahead had changed"


def test_an_ignored_file_beside_an_outside_dockerfile_is_watched_too(tmp_path: Path) -> None:
    root = tree(tmp_path / "ctx")
    dockerfile = tmp_path / "docker" / "app.Dockerfile"
    dockerfile.parent.mkdir()
    dockerfile.write_text("FROM scratch\nCOPY . /\n")
    read_ahead(root, dockerfile)
    (dockerfile.parent / "app.Dockerfile.dockerignore").write_text("src/\n")
    assert take(root, dockerfile) is None
    assert "src" not in listing(fresh(root, dockerfile))


def test_a_file_with_a_second_name_outside_the_context_is_watched_itself(tmp_path: Path) -> None:
    root = tree(tmp_path / "ctx")
    outside = tmp_path / "elsewhere.py"
    os.link(root / "src" / "app.py", outside)
    read_ahead(root)
    with open(outside, "r+") as f:  # the same bytes' count, through the name no directory watched sees
        f.write("print('HI')\n")
    assert take(root) is None


def test_another_builds_context_or_dockerfile_is_not_taken(tmp_path: Path) -> None:
    root = tree(tmp_path / "ctx")
    other = tree(tmp_path / "other")
    read_ahead(root)
    assert take(other) is None and watched.outcome == "the context read ahead was another build's"
    read_ahead(root)
    (root / "Other.Dockerfile").write_text("FROM scratch\n")
    assert take(root, root / "Other.Dockerfile") is None
    read_ahead(root)
    assert take(root) is not None  # and this one was never spoiled


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_mount_made_anywhere_after_the_reading_has_the_build_read_it_itself(tmp_path: Path) -> None:
    root = tree(tmp_path / "ctx")
    elsewhere = tmp_path / "mnt"
    elsewhere.mkdir()
    read_ahead(root)
    subprocess.run(["mount", "-t", "tmpfs", "none", str(elsewhere)], check=True)
    try:
        assert take(root) is None
        subprocess.run(["mount", "-t", "tmpfs", "none", str(root / "src")], check=True)
        try:
            read_ahead(root)  # a mount inside the context: never trusted
            assert take(root) is None
        finally:
            subprocess.run(["umount", str(root / "src")], check=True)
    finally:
        subprocess.run(["umount", str(elsewhere)], check=True)


def test_a_context_on_a_filesystem_without_inotify_events_is_not_read_ahead() -> None:
    assert watched.filesystem_type("/proc/self") == "proc"
    said = watched.start(watched.key("/proc/self", "/proc/self/Dockerfile", LIMIT))
    assert said == "not reading the context ahead: it is on proc"
    assert watched._reading is None


def test_a_build_that_starts_stops_the_reading_where_it_is(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    for d in range(300):
        (root / f"d{d}").mkdir(parents=True)
        for f in range(30):
            (root / f"d{d}" / f"f{f}").write_text(str(f))
    (root / "Dockerfile").write_text("FROM scratch\n")
    assert watched.start(watched.key(root, root / "Dockerfile", LIMIT)) == "reading the context ahead"
    watched.stop()
    assert watched._reading is not None and not watched._reading.thread.is_alive()
    ctx = take(root)
    assert ctx is not None
    assert listing(ctx) == listing(fresh(root))  # the rest read by the build itself
