"""The build context: Docker's .dockerignore rules, checksums, the hash cache, and COPY sources.

The pattern vectors are moby/patternmatcher's own test vectors (and Go's filepath.Match ones it
carries), so the rules here are Docker's, case for case."""

from __future__ import annotations

import marshal
import os
import posixpath
import sys
import threading
from pathlib import Path

import pytest

from builds.engine import parallel
from builds.engine.context import (
    BadPattern,
    BuildContext,
    Entry,
    HashCache,
    compile_pattern,
    docker_regex,
    go_glob,
    match_path,
    parse_dockerignore,
    read_dockerignore,
)
from builds.engine.context import hashcache as hashcache_module
from builds.engine.errors import ContextError


def make(root: Path, files: dict[str, str], ignore: str | None = None, **options: object) -> BuildContext:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root.mkdir(parents=True, exist_ok=True)
    if ignore is not None:
        (root / ".dockerignore").write_text(ignore)
    return BuildContext(root, **options)  # type: ignore[arg-type]


def everything(context: BuildContext) -> list[str]:
    """Every path a `COPY . .` of this context copies."""
    return [entry.path for top in context.resolve(".") for entry in context.walk(top)][1:]


def sum_of(root: Path, src: str = ".") -> str:
    context = BuildContext(root)
    return context.checksum(context.resolve(src))


def as_fsutil_walks(patterns: list[str], text: str) -> bool:
    """Excluded or not, with each parent directory matched first and its results handed down,
    as patternmatcher's tests drive MatchesUsingParentResults."""
    compiled = [compile_pattern(p) for p in patterns]
    info = None
    parent = posixpath.dirname(text)
    if parent:
        parts = parent.split("/")
        for i in range(len(parts)):
            _, info = match_path(compiled, "/".join(parts[: i + 1]), info)
    return match_path(compiled, text, info)[0]


# -- patternmatcher's vectors ----------------------------------------------------------------------
PATTERN_VECTORS = [
    ("**", "file", True),
    ("**", "file/", True),
    ("**/", "file", True),
    ("**/", "file/", True),
    ("**", "/", True),
    ("**/", "/", True),
    ("**", "dir/file", True),
    ("**/", "dir/file", True),
    ("**", "dir/file/", True),
    ("**/", "dir/file/", True),
    ("**/**", "dir/file", True),
    ("**/**", "dir/file/", True),
    ("dir/**", "dir/file", True),
    ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True),
    ("dir/**", "dir/dir2/file/", True),
    ("**/dir", "dir", True),
    ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/*", "dir/dir2/file/", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True),
    ("**file", "dir/file", True),
    ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True),
    ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True),
    ("**/**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False),
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abcdef", False),
    ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True),
    ("abc?def", "abcdef", False),
    ("a\\\\", "a\\", True),
    ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False),
    ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        True,
    ),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\*b", "a*b", True),
]

MULTI_PATTERN_VECTORS = [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (
        ["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        False,
    ),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs/", "!docs/README.md"], "docs/README.md", False),
    (["docs/*", "!docs/README.md"], "docs/README.md", False),
    (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["!fileutils.go", "*.go"], "fileutils.go", True),
    (["*"], "fileutils.go", True),
    ([], "any/path/there", False),
]

# Go's filepath.Match vectors, as patternmatcher's TestMatch runs them through Matches (an
# error is what Go calls ErrBadPattern).
GO_MATCH_VECTORS: list[tuple[str, str, bool | type[BadPattern]]] = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", True),  # through the parent directory "ab"
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "\u03b1", True),  # alpha
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("[]a]", "]", BadPattern),
    ("[-]", "-", BadPattern),
    ("[x-]", "x", BadPattern),
    ("[x-]", "-", BadPattern),
    ("[x-]", "z", BadPattern),
    ("[-x]", "x", BadPattern),
    ("[-x]", "-", BadPattern),
    ("[-x]", "a", BadPattern),
    ("\\", "a", BadPattern),
    ("[a-b-c]", "a", BadPattern),
    ("[", "a", BadPattern),
    ("[^", "a", BadPattern),
    ("[^bc", "a", BadPattern),
    ("a[", "a", BadPattern),
    ("a[", "ab", BadPattern),
    ("*x", "xxx", True),
]

COMPILE_VECTORS = [
    ("*", "regexp", "^[^/]*$"),
    ("file*", "regexp", "^file[^/]*$"),
    ("*file", "regexp", "^[^/]*file$"),
    ("a*/b", "regexp", "^a[^/]*/b$"),
    ("**", "suffix", None),
    ("**/**", "regexp", "^(.*/)?.*$"),
    ("dir/**", "prefix", None),
    ("**/dir", "suffix", None),
    ("**/dir2/*", "regexp", "^(.*/)?dir2/[^/]*$"),
    ("**/dir2/**", "regexp", "^(.*/)?dir2/.*$"),
    ("**file", "suffix", None),
    ("**/file*txt", "regexp", "^(.*/)?file[^/]*txt$"),
    ("**/**/*.txt", "regexp", "^(.*/)?(.*/)?[^/]*\\.txt$"),
    ("a[b-d]e", "regexp", "^a[b-d]e$"),
    (".*", "regexp", "^\\.[^/]*$"),
    ("abc.def", "exact", None),
    ("abc?def", "regexp", "^abc[^/]def$"),
    ("**/foo/bar", "suffix", None),
    ("a(b)c/def", "exact", None),
    ("a.|)$(}+{bc", "exact", None),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", "exact", None),
]


@pytest.mark.parametrize(("pattern", "text", "excluded"), PATTERN_VECTORS)
def test_each_patternmatcher_vector_matches_as_in_docker(pattern: str, text: str, excluded: bool) -> None:
    assert as_fsutil_walks([pattern], text) is excluded
    assert match_path([compile_pattern(pattern)], text)[0] is excluded  # without the parents' results


@pytest.mark.parametrize(("patterns", "text", "excluded"), MULTI_PATTERN_VECTORS)
def test_the_last_matching_pattern_decides_as_in_docker(
    patterns: list[str], text: str, excluded: bool
) -> None:
    assert as_fsutil_walks(patterns, text) is excluded


@pytest.mark.parametrize(("pattern", "text", "expected"), GO_MATCH_VECTORS)
def test_go_filepath_match_vectors_hold_for_ignore_patterns(
    pattern: str, text: str, expected: bool | type[BadPattern]
) -> None:
    if expected is BadPattern:
        with pytest.raises(BadPattern):
            compile_pattern(pattern)
    else:
        assert as_fsutil_walks([pattern], text) is expected


@pytest.mark.parametrize(("pattern", "text", "expected"), GO_MATCH_VECTORS)
def test_a_copy_glob_matches_one_name_as_go_filepath_match(
    pattern: str, text: str, expected: bool | type[BadPattern]
) -> None:
    if expected is BadPattern:
        with pytest.raises(BadPattern):
            go_glob(pattern)
    elif "/" not in pattern + text:  # COPY matches segment by segment
        assert (go_glob(pattern).match(text) is not None) is expected


@pytest.mark.parametrize(("pattern", "kind", "regex"), COMPILE_VECTORS)
def test_patterns_compile_to_the_same_kind_and_expression_as_docker(
    pattern: str, kind: str, regex: str | None
) -> None:
    found_kind, found_regex = docker_regex(posixpath.normpath(pattern))
    assert found_kind == kind
    if regex is not None:
        assert found_regex == regex


def test_the_reader_trims_drops_comments_and_leading_slashes_as_dockers() -> None:
    text = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! "
    assert [pattern for _, pattern in read_dockerignore(text)] == [
        "test1",
        "test2",
        "a/file/here",
        "lastfile",
        "!inverted/abs/path",
        "!",
        "!",
    ]


def test_the_reader_keeps_line_numbers_drops_a_bom_and_cleans_patterns() -> None:
    text = "\ufeffa\r\n  #not a comment\nb/../c/./d/\n   \n  !  e//f  \n"
    assert read_dockerignore(text) == [(1, "a"), (2, "#not a comment"), (3, "c/d"), (5, "!e/f")]


def test_a_lone_exclamation_mark_is_refused_naming_its_line(tmp_path: Path) -> None:
    with pytest.raises(ContextError) as caught:
        make(tmp_path, {}, ignore="a\n\n!\n")
    assert caught.value.file == ".dockerignore" and caught.value.line == 3
    assert 'illegal exclusion pattern: "!"' in caught.value.message


@pytest.mark.parametrize("pattern", ["[", "a[b", "x\\", "[Local-Only]/", "[z-a]*"])
def test_a_malformed_pattern_is_refused_as_docker_refuses_it(pattern: str) -> None:
    with pytest.raises(ContextError, match="invalid pattern"):
        parse_dockerignore(f"ok\n{pattern}\n")


def test_exceptions_are_marked_after_trimming_whitespace() -> None:
    patterns = parse_dockerignore("docs\n  !docs/README.md  \n")
    assert [(p.text, p.exclusion) for p in patterns] == [("docs", False), ("docs/README.md", True)]


def test_a_class_with_exclamation_mark_is_no_negation_since_docker_hands_classes_to_re2() -> None:
    assert as_fsutil_walks(["[!ab].txt"], "!.txt")
    assert not as_fsutil_walks(["[!ab].txt"], "c.txt")
    assert as_fsutil_walks(["[^ab].txt"], "c.txt")


def test_re2_only_syntax_inside_a_pattern_keeps_its_re2_meaning() -> None:
    assert as_fsutil_walks(["[[:digit:]]*.log"], "7days.log")
    assert not as_fsutil_walks(["[[:digit:]]*.log"], "days.log")
    assert as_fsutil_walks(["\\d.txt"], "5.txt")  # an escaped letter is RE2's, not a literal
    assert not as_fsutil_walks(["a^b*"], "a^bc")  # `^` is not quoted: an anchor mid-way


# -- .dockerignore on a real context ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "path", "ignored"),
    [
        ("*.log", "debug.log", True),
        ("*.log", "logs/debug.log", False),  # a pattern without ** stays at the top level
        ("**/*.log", "logs/deep/debug.log", True),
        ("**/*.log", "debug.log", True),
        ("build", "build/out/app.bin", True),  # an excluded directory excludes what is in it
        ("temp?", "temp1", True),
        ("temp?", "temp12", False),
        ("/secret", "secret", True),  # a leading slash means the context's root
        ("./secret", "secret", True),
        ("docs/**", "docs/a/b.md", True),
        ("docs/**", "docs", False),
        ("[ab].txt", "b.txt", True),
        ("*/temp*", "somedir/temporary.txt", True),
        ("*/temp*", "somedir/sub/temporary.txt", False),
    ],
)
def test_patterns_follow_dockers_rules(tmp_path: Path, pattern: str, path: str, ignored: bool) -> None:
    context = make(tmp_path, {}, ignore=pattern + "\n")
    assert context.ignored(path) is ignored


def test_the_last_matching_pattern_wins_and_an_exception_re_includes(tmp_path: Path) -> None:
    context = make(tmp_path, {}, ignore="*.md\n!README.md\nREADME*.md\n!README.md\n# a comment\n")
    assert context.ignored("NOTES.md")
    assert not context.ignored("README.md")


def test_an_exception_re_includes_a_file_below_an_excluded_dir(tmp_path: Path) -> None:
    files = {"docs/keep.md": "k", "docs/drop.md": "d", "docs/deep/keep.md": "k2", "app.py": ""}
    context = make(tmp_path, files, ignore="docs\n!docs/keep.md\n!**/deep/keep.md\n")
    assert everything(context) == [
        ".dockerignore",
        "app.py",
        "docs",
        "docs/deep",
        "docs/deep/keep.md",
        "docs/keep.md",
    ]


def test_an_excluded_dir_with_nothing_re_included_is_not_in_the_context(tmp_path: Path) -> None:
    (tmp_path / "empty-but-ignored").mkdir()
    ignore = "docs\ncache\nempty-but-ignored\n!docs/keep.md\n"
    context = make(tmp_path, {"docs/a.md": "", "cache/x": "", "app.py": ""}, ignore=ignore)
    assert everything(context) == [".dockerignore", "app.py"]
    assert context.entry("docs") is None and context.children("") == [".dockerignore", "app.py"]


def test_a_wildcard_exception_looks_inside_every_excluded_dir(tmp_path: Path) -> None:
    files = {"a/b/c/keep.txt": "", "a/b/c/drop.bin": "", "x/keep.txt": ""}
    context = make(tmp_path, files, ignore="*\n!**/*.txt\n")
    assert everything(context) == ["a", "a/b", "a/b/c", "a/b/c/keep.txt", "x", "x/keep.txt"]


def test_the_dockerfile_and_dockerignore_are_part_of_the_context_unless_ignored(tmp_path: Path) -> None:
    context = make(tmp_path, {"Dockerfile": "FROM scratch\n", "main.py": ""}, ignore="*.md\n")
    assert everything(context) == [".dockerignore", "Dockerfile", "main.py"]
    (tmp_path / ".dockerignore").write_text("Dockerfile\n.dockerignore\n")
    assert everything(BuildContext(tmp_path)) == ["main.py"]


def test_parent_results_are_handed_down_as_fsutil_does(tmp_path: Path) -> None:
    # "!a" is skipped for the directory a (nothing matched yet), so for a/b it is tried on
    # "a/b" alone, which it does not match: a/b stays excluded.
    context = make(tmp_path, {"a/b": ""}, ignore="a/*\n!a\n")
    assert context.ignored("a/b")
    assert everything(context) == [".dockerignore", "a"]


def test_a_dockerfile_specific_ignore_file_wins_over_the_context_one(tmp_path: Path) -> None:
    make(tmp_path, {"foo": "", "bar": "", "Dockerfile2.dockerignore": "foo\n"}, ignore="bar\n")
    assert BuildContext(tmp_path).ignored("bar")
    context = BuildContext(tmp_path, dockerfile=tmp_path / "Dockerfile2")
    assert context.ignored("foo") and not context.ignored("bar")


def test_a_dockerignore_linking_out_of_the_context_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("[\n")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / ".dockerignore").symlink_to(tmp_path / "outside")
    assert BuildContext(tmp_path / "ctx").patterns == []


def test_the_walk_keeps_exactly_what_ignored_says_it_keeps(tmp_path: Path) -> None:
    names = ["a.go", "b.log", "README.md", ".env", "x[1].txt", "keep.log"]
    dirs = ["", "src/", "src/deep/", "logs/", "logs/old/", "build/", "build/keep/"]
    make(tmp_path, {d + n: "" for d in dirs for n in names})
    patterns = [
        "*.log\n!keep.log\n**/*.md\n",
        "logs\n!logs/old/*.log\n",
        "**\n!src\n!**/*.go\n",
        "build/**\n!build/keep\nsrc/deep\n",
        "*/*.log\n.*\n!**/.env\nx\\[1\\].txt\n",
    ]
    for text in patterns:
        (tmp_path / ".dockerignore").write_text(text)
        context = BuildContext(tmp_path)
        kept = {e.path for top in context.resolve(".") for e in context.walk(top) if e.kind != "dir"}
        expected = {d + n for d in dirs for n in [*names, ".dockerignore"] if (tmp_path / d / n).is_file()}
        assert kept == {path for path in expected if not context.ignored(path)}, text


# -- checksums -------------------------------------------------------------------------------------
def test_the_checksum_counts_content_and_mode_but_not_mtime(tmp_path: Path) -> None:
    make(tmp_path, {"app.py": "print(1)\n"})
    before = sum_of(tmp_path, "app.py")
    os.utime(tmp_path / "app.py", (1, 1))
    assert sum_of(tmp_path, "app.py") == before
    os.chmod(tmp_path / "app.py", 0o755)
    assert sum_of(tmp_path, "app.py") != before
    os.chmod(tmp_path / "app.py", 0o644)
    assert sum_of(tmp_path, "app.py") == before
    (tmp_path / "app.py").write_text("print(2)\n")
    assert sum_of(tmp_path, "app.py") != before


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_the_owner_does_not_count_since_contexts_are_uploads(tmp_path: Path) -> None:
    make(tmp_path, {"app.py": "x"})
    before = sum_of(tmp_path)
    os.chown(tmp_path / "app.py", 1234, 1234)
    assert sum_of(tmp_path) == before


def test_an_empty_directory_changes_the_checksum_of_the_whole_context(tmp_path: Path) -> None:
    make(tmp_path, {"app.py": "x"})
    before = sum_of(tmp_path)
    (tmp_path / "empty").mkdir()
    assert sum_of(tmp_path) != before
    (tmp_path / "empty").rmdir()
    assert sum_of(tmp_path) == before


def test_a_directorys_checksum_covers_everything_below_it(tmp_path: Path) -> None:
    make(tmp_path, {"src/main.c": "int main;\n", "src/lib/util.c": "int util;\n", "README": "r\n"})
    before = sum_of(tmp_path, "src/")
    (tmp_path / "README").write_text("r2\n")
    assert sum_of(tmp_path, "src/") == before
    (tmp_path / "src/lib/util.c").write_text("int util(void);\n")
    edited = sum_of(tmp_path, "src")
    assert edited != before
    (tmp_path / "src/new.h").write_text("#pragma once\n")
    assert sum_of(tmp_path, "src") != edited
    (tmp_path / "src/new.h").unlink()
    assert sum_of(tmp_path, "src") == edited
    os.chmod(tmp_path / "src/lib", 0o700)
    assert sum_of(tmp_path, "src") != edited  # a subdirectory's mode is copied, so it counts


def test_the_copied_directorys_own_mode_does_not_count_since_only_its_contents_are_copied(
    tmp_path: Path,
) -> None:
    make(tmp_path, {"src/a": "a"})
    before = sum_of(tmp_path, "src")
    os.chmod(tmp_path / "src", 0o700)
    assert sum_of(tmp_path, "src") == before


def test_a_checksum_does_not_depend_on_what_was_asked_for_before(tmp_path: Path) -> None:
    make(tmp_path, {"package.json": "{}", "src/app.js": "1", "src/lib/x.js": "2"})
    context = BuildContext(tmp_path)
    for src in ("package.json", "src/lib/x.js", "src/lib", "s*/*.js"):
        context.resolve(src)
    assert context.checksum(context.resolve(".")) == sum_of(tmp_path)
    assert context.checksum(context.resolve("src")) == sum_of(tmp_path, "src")


def test_renaming_a_file_changes_the_checksum_of_its_directory(tmp_path: Path) -> None:
    make(tmp_path, {"src/a.txt": "same"})
    before = sum_of(tmp_path, "src")
    (tmp_path / "src/a.txt").rename(tmp_path / "src/b.txt")
    assert sum_of(tmp_path, "src") != before


def test_ignored_files_do_not_count_and_are_missing_as_sources(tmp_path: Path) -> None:
    make(tmp_path, {"app.py": "x", "notes.txt": "n"}, ignore="notes.txt\n")
    before = sum_of(tmp_path)
    (tmp_path / "notes.txt").write_text("changed")
    assert sum_of(tmp_path) == before
    with pytest.raises(ContextError, match=r'"notes\.txt" is excluded by \.dockerignore') as caught:
        BuildContext(tmp_path).resolve("notes.txt", line=4)
    assert caught.value.line == 4


def test_an_edit_to_a_re_included_file_changes_the_checksum_and_one_to_an_excluded_file_does_not(
    tmp_path: Path,
) -> None:
    files = {"main.py": "1\n", "README.md": "r\n", "NOTES.md": "n\n"}
    make(tmp_path, files, ignore="Dockerfile\n.dockerignore\n*.md\n!README.md\n")
    before = sum_of(tmp_path)
    (tmp_path / "NOTES.md").write_text("n2\n")
    assert sum_of(tmp_path) == before
    (tmp_path / "README.md").write_text("r2\n")
    assert sum_of(tmp_path) != before


def test_a_symlinks_checksum_is_its_target_text(tmp_path: Path) -> None:
    make(tmp_path, {"dir/a": "a", "dir/b": "a"})
    (tmp_path / "dir" / "link").symlink_to("a")
    context = BuildContext(tmp_path)
    link = context.entry("dir/link")
    assert link is not None and link.kind == "symlink" and link.target == "a"
    before = sum_of(tmp_path, "dir")
    (tmp_path / "dir" / "link").unlink()
    (tmp_path / "dir" / "link").symlink_to("b")
    assert sum_of(tmp_path, "dir") != before


def test_file_names_that_are_not_utf8_are_hashed_by_their_bytes(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.txt")
    (tmp_path / name).write_text("x")
    context = BuildContext(tmp_path)
    assert context.children("") == [name]
    assert context.checksum(context.resolve(".")).startswith("sha256:")


def test_sockets_and_fifos_are_not_part_of_the_context(tmp_path: Path) -> None:
    make(tmp_path, {"a": ""})
    os.mkfifo(tmp_path / "pipe")
    assert everything(BuildContext(tmp_path)) == ["a"]


# -- the hash cache --------------------------------------------------------------------------------
@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files whose content was hashed."""
    seen: list[str] = []
    real = hashcache_module.sha256_file

    def counting(path: str) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(hashcache_module, "sha256_file", counting)
    return seen


def cached_context(root: Path, cache_file: Path) -> BuildContext:
    return BuildContext(root, hash_cache=HashCache(cache_file, racy_window_ns=0))


def test_a_rebuild_in_a_new_process_reads_no_unchanged_file(tmp_path: Path, reads: list[str]) -> None:
    make(tmp_path / "ctx", {f"src/{i}.py": str(i) for i in range(50)})
    first = cached_context(tmp_path / "ctx", tmp_path / "hashcache")
    before = first.checksum(first.resolve("."))
    first.hash_cache.save()
    assert len(reads) == 50
    reads.clear()
    (tmp_path / "ctx/src/7.py").write_text("seven")
    again = cached_context(tmp_path / "ctx", tmp_path / "hashcache")
    assert again.checksum(again.resolve(".")) != before
    assert reads == [str(tmp_path / "ctx/src/7.py")]


_real_load = hashcache_module._load_hash_cache


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The hash cache files read, from now on."""
    seen: list[Path] = []
    monkeypatch.setattr(hashcache_module, "_load_hash_cache",
                        lambda path: seen.append(path) or _real_load(path))
    return seen


def saved_cache(tmp_path: Path) -> Path:
    """Contexts one/ (its digests saved in the cache file returned) and two/ (not yet)."""
    make(tmp_path / "one", {"a": "1"})
    make(tmp_path / "two", {"b": "2"})
    first = cached_context(tmp_path / "one", tmp_path / "hc")
    first.resolve(".")
    first.hash_cache.save()
    return tmp_path / "hc"


def test_a_cache_loaded_ahead_is_used_only_while_no_build_has_saved_since(
    tmp_path: Path, reads: list[str], loads: list[Path]
) -> None:
    # The warm engine's spare process loads its store's cache before a caller comes; what
    # another build saved meanwhile must not be lost to the next build.
    cache_file = saved_cache(tmp_path)
    loads.clear()  # the cache's own save read it

    hashcache_module.preload(cache_file)
    assert HashCache(cache_file).entries.keys() == {str(tmp_path / "one/a")}
    assert len(loads) == 1  # taken from the preload, not read again

    hashcache_module.preload(cache_file)
    elsewhere = cached_context(tmp_path / "two", tmp_path / "hc2")  # another process's build
    elsewhere.resolve(".")
    elsewhere.hash_cache.save()
    both = {**_real_load(cache_file), **_real_load(tmp_path / "hc2")}
    (tmp_path / "hc.new").write_bytes(marshal.dumps((hashcache_module.HASH_CACHE_FORMAT, both)))
    os.replace(tmp_path / "hc.new", cache_file)  # as its save() lands
    expected = sum_of(tmp_path / "two")
    reads.clear()
    again = cached_context(tmp_path / "two", cache_file)
    assert again.checksum(again.resolve(".")) == expected
    assert reads == []  # the digest that build saved was used


def test_a_cache_loaded_ahead_is_loaded_again_only_once_a_build_saved_it(
    tmp_path: Path, loads: list[Path]
) -> None:
    cache_file = saved_cache(tmp_path)
    loads.clear()  # the cache's own save read it

    assert hashcache_module.preload_again(cache_file)  # nothing loaded yet
    assert not hashcache_module.preload_again(cache_file)  # the same file: not read again
    assert len(loads) == 1
    second = cached_context(tmp_path / "two", cache_file)
    second.resolve(".")
    second.hash_cache.save()
    loads.clear()
    assert hashcache_module.preload_again(cache_file)
    assert HashCache(cache_file).entries.keys() == {str(tmp_path / "one/a"), str(tmp_path / "two/b")}
    assert len(loads) == 1  # the next cache took what was loaded ahead


def test_a_big_context_is_hashed_a_few_files_at_a_time_each_file_once(
    tmp_path: Path, reads: list[str]
) -> None:
    files = {f"d{i % 7}/{i}.txt": f"file {i}\n" * (i % 5) for i in range(300)}
    make(tmp_path / "ctx", files)
    expected = sum_of(tmp_path / "ctx")
    reads.clear()
    threads: set[str] = set()
    real = hashcache_module.sha256_file

    def noting(path: str) -> str:
        threads.add(threading.current_thread().name)
        return real(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parallel, "THREADS", 2)  # as on a 2-core machine, whatever this one has
        patch.setattr(hashcache_module, "sha256_file", noting)
        context = cached_context(tmp_path / "ctx", tmp_path / "hashcache")
        assert context.checksum(context.resolve(".")) == expected
    assert len(threads) > 1
    assert sorted(reads) == sorted(str(tmp_path / "ctx" / name) for name in files)


def test_a_file_written_just_now_is_hashed_again_next_time(tmp_path: Path, reads: list[str]) -> None:
    # Two writes within one timestamp tick leave the same stat behind, so a fresh file's digest
    # is not trusted for later.
    make(tmp_path / "ctx", {"a": "1"})
    cache = HashCache(tmp_path / "hashcache")
    BuildContext(tmp_path / "ctx", hash_cache=cache).resolve(".")
    BuildContext(tmp_path / "ctx", hash_cache=cache).resolve(".")
    assert len(reads) == 2 and not cache.dirty


@pytest.mark.parametrize("content", [b"", b"garbage", marshal.dumps({"x": 1}), marshal.dumps(("other", {}))])
def test_a_corrupt_or_foreign_cache_file_counts_as_empty(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "hashcache").write_bytes(content)
    make(tmp_path / "ctx", {"a": "1"})
    assert sum_of(tmp_path / "ctx") == cached_context(tmp_path / "ctx", tmp_path / "hashcache").checksum(
        cached_context(tmp_path / "ctx", tmp_path / "hashcache").resolve(".")
    )


def test_a_cache_entry_of_the_wrong_shape_is_not_trusted(tmp_path: Path) -> None:
    make(tmp_path / "ctx", {"a": "1"})
    cache = HashCache(racy_window_ns=0)
    cache.entries[str(tmp_path / "ctx" / "a")] = "not a tuple"  # type: ignore[assignment]
    context = BuildContext(tmp_path / "ctx", hash_cache=cache)
    assert context.checksum(context.resolve(".")) == sum_of(tmp_path / "ctx")


def test_saving_replaces_the_file_whole_and_keeps_what_another_process_saved(tmp_path: Path) -> None:
    make(tmp_path / "one", {"a": "1"})
    make(tmp_path / "two", {"b": "2"})
    first, second = (
        cached_context(tmp_path / "one", tmp_path / "hc"),
        cached_context(tmp_path / "two", tmp_path / "hc"),
    )
    first.resolve(".")
    second.resolve(".")
    first.hash_cache.save()
    second.hash_cache.save()
    assert set(HashCache(tmp_path / "hc").entries) == {str(tmp_path / "one/a"), str(tmp_path / "two/b")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hc", "one", "two"]  # no temp file left


def test_saving_into_an_unwritable_place_does_not_fail_the_build(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    make(tmp_path / "ctx", {"a": "1"})
    context = cached_context(tmp_path / "ctx", tmp_path / "file" / "hashcache")
    context.resolve(".")
    context.hash_cache.save()
    assert context.hash_cache.dirty


# -- COPY sources ----------------------------------------------------------------------------------
def test_a_source_is_a_path_from_the_root_with_or_without_a_leading_slash(tmp_path: Path) -> None:
    context = make(tmp_path, {"app/main.py": "x"})
    assert [e.path for e in context.resolve("app/main.py")] == ["app/main.py"]
    assert [e.path for e in context.resolve("/app/main.py")] == ["app/main.py"]
    assert [e.path for e in context.resolve("./app/../app/")] == ["app"]
    assert [(e.path, e.kind) for e in context.resolve(".")] == [("", "dir")]


def test_a_missing_source_names_the_dockerfile_and_line(tmp_path: Path) -> None:
    context = make(tmp_path, {"app.py": ""})
    with pytest.raises(ContextError) as caught:
        context.resolve("missing.txt", file="Dockerfile", line=2, keyword="COPY")
    assert caught.value.describe() == 'Dockerfile:2: COPY source "missing.txt" not found in the build context'
    assert caught.value.to_json()["source"] == "missing.txt"


def test_a_path_through_a_file_is_missing(tmp_path: Path) -> None:
    context = make(tmp_path, {"app.py": ""})
    with pytest.raises(ContextError, match="not found"):
        context.resolve("app.py/x")


def test_globs_match_within_one_directory(tmp_path: Path) -> None:
    context = make(
        tmp_path, {"a.txt": "", "b.txt": "", ".hidden.txt": "", "sub/c.txt": "", "sub/d/e.txt": ""}
    )
    assert [e.path for e in context.resolve("*.txt")] == [".hidden.txt", "a.txt", "b.txt"]
    assert [e.path for e in context.resolve("sub/*.txt")] == ["sub/c.txt"]
    assert [e.path for e in context.resolve("*/*.txt")] == ["sub/c.txt"]
    assert [e.path for e in context.resolve("s?b/[cd]*")] == ["sub/c.txt", "sub/d"]
    assert [e.path for e in context.resolve("[^.]*.txt")] == ["a.txt", "b.txt"]
    assert [e.path for e in context.resolve("[!.]*.txt")] == [".hidden.txt"]  # Go negates with ^ only


def test_a_glob_skips_ignored_files(tmp_path: Path) -> None:
    context = make(tmp_path, {"a.txt": "", "b.txt": ""}, ignore="b.txt\n")
    assert [e.path for e in context.resolve("*.txt")] == ["a.txt"]


def test_a_glob_that_matches_nothing_or_is_malformed_is_an_error(tmp_path: Path) -> None:
    context = make(tmp_path, {"a.txt": ""})
    with pytest.raises(ContextError, match=r'source "\*\.md" matches no file'):
        context.resolve("*.md", line=3)
    with pytest.raises(ContextError, match="not a valid pattern"):
        context.resolve("a[.txt")


def test_an_escaped_wildcard_is_a_plain_name(tmp_path: Path) -> None:
    context = make(tmp_path, {"sub/a*b": "", "sub/aXb": ""})
    assert [e.path for e in context.resolve("s*/a\\*b")] == ["sub/a*b"]


def test_a_source_above_the_context_is_refused_naming_the_line(tmp_path: Path) -> None:
    context = make(tmp_path / "ctx", {"app.py": ""})
    for src in ("../secret", "/../secret", "app/../../secret", ".."):
        with pytest.raises(ContextError) as caught:
            context.resolve(src, file="Dockerfile", line=3)
        assert caught.value.line == 3 and "outside the build context" in caught.value.message


def test_a_symlink_out_of_the_context_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s")
    context = make(tmp_path / "ctx", {"app.py": ""})
    (tmp_path / "ctx" / "up").symlink_to("../secret")
    (tmp_path / "ctx" / "abs").symlink_to(tmp_path / "secret")
    with pytest.raises(ContextError, match=r'outside the build context through the symbolic link "up"'):
        context.resolve("up", line=5)
    # An absolute target is read from the context's root, as BuildKit reads it: not there.
    with pytest.raises(ContextError, match=r'symbolic link "abs" points to'):
        context.resolve("abs")


def test_a_symlinked_source_is_copied_as_its_target_under_its_own_name(tmp_path: Path) -> None:
    context = make(tmp_path, {"real/app.py": "x", "conf.txt": "c"})
    (tmp_path / "link").symlink_to("real")
    (tmp_path / "rooted").symlink_to("/conf.txt")  # from the context's root
    [linked] = context.resolve("link")
    assert (linked.path, linked.kind, linked.source) == ("real", "dir", "link")
    assert [e.path for e in context.walk(linked)] == ["real", "real/app.py"]
    [rooted] = context.resolve("rooted")
    assert (rooted.path, rooted.source, rooted.kind) == ("conf.txt", "rooted", "file")
    assert [e.path for e in context.resolve("link/app.py")] == ["real/app.py"]


def test_a_glob_does_not_descend_through_a_symlinked_directory(tmp_path: Path) -> None:
    context = make(tmp_path, {"real/x.txt": ""})
    (tmp_path / "link").symlink_to("real")
    assert [e.path for e in context.resolve("*/x.txt")] == ["real/x.txt"]


def test_a_symlink_loop_is_an_error_not_a_hang(tmp_path: Path) -> None:
    context = make(tmp_path, {})
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(ContextError, match="too many levels of symbolic links"):
        context.resolve("a")


def test_symlinks_inside_a_copied_directory_stay_symlinks(tmp_path: Path) -> None:
    context = make(tmp_path, {"dir/a": "a"})
    (tmp_path / "dir" / "out").symlink_to("/etc/passwd")
    [top] = context.resolve("dir")
    assert [(e.path, e.kind) for e in context.walk(top)] == [
        ("dir", "dir"),
        ("dir/a", "file"),
        ("dir/out", "symlink"),
    ]


# -- walk and manifest -----------------------------------------------------------------------------
def test_walk_lists_parents_first_in_name_order(tmp_path: Path) -> None:
    context = make(tmp_path, {"b/z": "", "b/a/x": "", "a": ""})
    (tmp_path / "c").mkdir()
    assert everything(context) == ["a", "b", "b/a", "b/a/x", "b/z", "c"]
    entry = context.entry("b/a/x")
    assert isinstance(entry, Entry) and entry.kind == "file" and entry.size == 0 and entry.mode == 0o644


def test_a_context_nested_deeper_than_pythons_stack_is_walked(tmp_path: Path) -> None:
    depth = sys.getrecursionlimit() + 100
    deep = str(tmp_path / "ctx")
    os.mkdir(deep)
    for _ in range(depth):  # one by one: os.makedirs recurses too
        deep += "/d"
        os.mkdir(deep)
    Path(deep, "leaf").write_text("x")
    try:
        assert len(everything(BuildContext(tmp_path / "ctx"))) == depth + 1
    finally:  # bottom up, since shutil.rmtree (and so pytest's cleanup) recurses as well
        os.unlink(Path(deep, "leaf"))
        while deep != str(tmp_path):
            os.rmdir(deep)
            deep = os.path.dirname(deep)


def test_the_manifest_names_each_file_once(tmp_path: Path) -> None:
    context = make(tmp_path, {"src/app.py": "x", "README.md": "r"})
    manifest = context.manifest(context.resolve("."))
    assert set(manifest) == {"src", "src/app.py", "README.md"}
    assert manifest["src"] == "dir:755"


def test_the_manifest_tells_which_file_changed_appeared_or_vanished(tmp_path: Path) -> None:
    make(tmp_path, {"app.py": "1", "old.py": "o", "run.sh": "s"})
    before = BuildContext(tmp_path).manifest(BuildContext(tmp_path).resolve("."))
    (tmp_path / "app.py").write_text("2")
    (tmp_path / "old.py").unlink()
    (tmp_path / "new.py").write_text("n")
    os.chmod(tmp_path / "run.sh", 0o755)
    after = BuildContext(tmp_path).manifest(BuildContext(tmp_path).resolve("."))
    assert sorted(p for p in after.keys() & before.keys() if after[p] != before[p]) == ["app.py", "run.sh"]
    assert after.keys() - before.keys() == {"new.py"} and before.keys() - after.keys() == {"old.py"}
