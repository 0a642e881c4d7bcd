"""The build context: Docker's .dockerignore rules, checksums, and sources that escape."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builds.engine.context import BuildContext
from builds.engine.errors import ContextError


def make(root: Path, files: dict[str, str], ignore: str = "") -> BuildContext:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if ignore:
        (root / ".dockerignore").write_text(ignore)
    return BuildContext(root)


@pytest.mark.parametrize(
    ("pattern", "path", "ignored"),
    [
        ("*.log", "debug.log", True),
        ("*.log", "logs/debug.log", False),  # a pattern without ** stays at the top level
        ("**/*.log", "logs/deep/debug.log", True),
        ("build", "build/out/app.bin", True),  # an excluded directory excludes what is in it
        ("temp?", "temp1", True),
        ("temp?", "temp12", False),
        ("/secret", "secret", True),  # a leading slash means the context's root
        ("docs/**", "docs/a/b.md", True),
        ("[ab].txt", "b.txt", True),
        ("[!ab].txt", "c.txt", True),
    ],
)
def test_patterns_follow_dockers_rules(tmp_path: Path, pattern: str, path: str, ignored: bool) -> None:
    context = make(tmp_path, {}, ignore=pattern + "\n")
    assert context.ignored(path) is ignored


def test_the_last_matching_pattern_wins_and_an_exception_re_includes(tmp_path: Path) -> None:
    context = make(tmp_path, {}, ignore="*.md\n!README.md\nREADME*.md\n!README.md\n# a comment\n")
    assert context.ignored("NOTES.md")
    assert not context.ignored("README.md")


def test_an_exception_below_an_excluded_directory_brings_the_file_back(tmp_path: Path) -> None:
    context = make(tmp_path, {"docs/keep.md": "k", "docs/drop.md": "d"}, ignore="docs\n!docs/keep.md\n")
    entries = context.resolve(".")
    names = sorted(e.path for top in entries for e in context.walk(top))
    assert "docs/keep.md" in names and "docs/drop.md" not in names


def test_the_checksum_counts_content_and_mode_but_not_mtime(tmp_path: Path) -> None:
    context = make(tmp_path / "a", {"app.py": "print(1)\n"})
    before = context.checksum(context.resolve("app.py"))
    os.utime(tmp_path / "a" / "app.py", (1, 1))
    assert BuildContext(tmp_path / "a").checksum(BuildContext(tmp_path / "a").resolve("app.py")) == before
    os.chmod(tmp_path / "a" / "app.py", 0o755)
    fresh = BuildContext(tmp_path / "a")
    assert fresh.checksum(fresh.resolve("app.py")) != before


def test_an_empty_directory_changes_the_checksum_of_the_whole_context(tmp_path: Path) -> None:
    context = make(tmp_path, {"app.py": "x"})
    before = context.checksum(context.resolve("."))
    (tmp_path / "empty").mkdir()
    fresh = BuildContext(tmp_path)
    assert fresh.checksum(fresh.resolve(".")) != before


def test_ignored_files_do_not_count_and_are_missing_as_sources(tmp_path: Path) -> None:
    context = make(tmp_path, {"app.py": "x", "notes.txt": "n"}, ignore="notes.txt\n")
    before = context.checksum(context.resolve("."))
    (tmp_path / "notes.txt").write_text("changed")
    fresh = BuildContext(tmp_path)
    assert fresh.checksum(fresh.resolve(".")) == before
    with pytest.raises(ContextError, match=r"notes\.txt"):
        fresh.resolve("notes.txt", line=4)


def test_globs_match_within_one_directory(tmp_path: Path) -> None:
    context = make(tmp_path, {"a.txt": "", "b.txt": "", "sub/c.txt": ""})
    assert [e.path for e in context.resolve("*.txt")] == ["a.txt", "b.txt"]
    assert [e.path for e in context.resolve("sub/*.txt")] == ["sub/c.txt"]


def test_a_source_above_the_context_is_refused_naming_the_line(tmp_path: Path) -> None:
    context = make(tmp_path / "ctx", {"app.py": ""})
    with pytest.raises(ContextError) as caught:
        context.resolve("../secret", file="Dockerfile", line=3)
    assert caught.value.line == 3 and "outside the build context" in caught.value.message


def test_a_symlink_out_of_the_context_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s")
    context = make(tmp_path / "ctx", {"app.py": ""})
    os.symlink(tmp_path / "secret", tmp_path / "ctx" / "link")
    with pytest.raises(ContextError, match="symbolic link"):
        context.resolve("link")


def test_the_manifest_names_each_file_once(tmp_path: Path) -> None:
    context = make(tmp_path, {"src/app.py": "x", "README.md": "r"})
    manifest = context.manifest(context.resolve("."))
    assert set(manifest) == {"src", "src/app.py", "README.md"}
