"""What a comparison's row shows beside the two steps: the instructions word by word, which
context files each COPY read and how they differ, the Dockerfiles line by line, and the two
layers' files."""

from __future__ import annotations

from builds.compare.diff import FileFacts, LayerEntry, counts, files_diff, layers_diff, lines_diff, words_diff
from builds.compare.sources import line_ends, read_paths, step_reads

CONTEXT = ["Dockerfile", ".dockerignore", "app.py", "lib/util.py", "lib/data.bin", "docs/a.md", "notes.txt"]
DOCKERFILE = """\
FROM busybox AS base
WORKDIR /app
COPY app.py ./
COPY lib /app/lib
COPY *.txt ./
COPY . /src
RUN echo a && \\
    echo b
FROM busybox
COPY --from=base /app /app
COPY <<EOF /etc/motd
hello
EOF
"""


def test_an_instruction_diff_names_exactly_the_words_that_changed() -> None:
    diff = words_diff(
        "RUN pip install -r requirements.txt", "RUN pip install --no-cache-dir -r requirements.txt"
    )
    assert [op for op, _ in diff] == ["equal", "insert", "equal"]
    assert diff[1][1].strip() == "--no-cache-dir"
    assert "".join(t for op, t in diff if op != "insert") == "RUN pip install -r requirements.txt"
    assert words_diff("COPY a .", "COPY a .") == [["equal", "COPY a ."]]


def test_a_line_diff_numbers_each_line_on_its_own_side() -> None:
    diff = lines_diff("FROM a\nCOPY x .\nRUN y\n", "FROM a\nCOPY z .\nRUN y\nCMD w\n")
    assert [(d["op"], d["a"], d["b"]) for d in diff["lines"]] == [
        ("equal", 1, 1),
        ("delete", 2, None),
        ("insert", None, 2),
        ("equal", 3, 3),
        ("insert", None, 4),
    ]
    assert lines_diff("a\nb\nc", "a\nB\nc", limit=2) == {
        "lines": [
            {"op": "equal", "a": 1, "b": 1, "text": "a"},
            {"op": "delete", "a": 2, "b": None, "text": "b"},
        ],
        "truncated": True,
    }


def test_each_copy_reads_the_context_files_under_its_sources() -> None:
    def reads(line: int) -> list[str]:
        found = step_reads(DOCKERFILE, line)
        assert found is not None
        return read_paths(found, CONTEXT)

    assert reads(3) == ["app.py"]
    assert reads(4) == ["lib/data.bin", "lib/util.py"]
    assert reads(5) == ["notes.txt"]
    assert reads(6) == sorted(CONTEXT)
    assert step_reads(DOCKERFILE, 2) is None, "WORKDIR reads no file"


def test_dockerignore_keeps_files_out_of_what_a_copy_reads() -> None:
    found = step_reads(DOCKERFILE, 6)
    assert found is not None
    assert read_paths(found, CONTEXT, "docs\n*.bin\n!lib/data.bin\n.dockerignore\n") == [
        "Dockerfile",
        "app.py",
        "lib/data.bin",
        "lib/util.py",
        "notes.txt",
    ]


def test_copy_exclude_keeps_files_out_of_what_it_reads() -> None:
    text = "FROM busybox\nCOPY --exclude=**/*.bin --exclude=docs . /src\nCOPY --exclude=util.py lib /lib\n"
    whole, lib = step_reads(text, 2), step_reads(text, 3)
    assert whole is not None and lib is not None
    assert read_paths(whole, CONTEXT) == [".dockerignore", "Dockerfile", "app.py", "lib/util.py", "notes.txt"]
    assert read_paths(lib, CONTEXT) == ["lib/data.bin"]


def test_a_copy_from_a_stage_or_a_heredoc_reads_no_context_file() -> None:
    from_stage = step_reads(DOCKERFILE, 10)
    heredoc = step_reads(DOCKERFILE, 11)
    assert from_stage is not None and from_stage.from_stage == "base"
    assert heredoc is not None and heredoc.heredoc
    assert read_paths(from_stage, CONTEXT) == [] == read_paths(heredoc, CONTEXT)


def test_an_instruction_continued_over_lines_ends_on_its_last_line() -> None:
    ends = line_ends(DOCKERFILE)
    assert ends[7] == 8 and ends[1] == 1 and ends[3] == 3
    assert line_ends("FROM busybox\nNOPE x\n") == {}, "a Dockerfile that does not parse links no lines"


def test_context_files_compare_by_content_with_both_sizes() -> None:
    a = {"app.py": FileFacts(10, "x"), "old.py": FileFacts(3, "o"), "same.py": FileFacts(4, "s")}
    b = {"app.py": FileFacts(12, "y"), "new.py": FileFacts(5, "n"), "same.py": FileFacts(4, "s")}
    found = files_diff(a, b)
    assert [(f["path"], f["change"], f["a_size"], f["b_size"]) for f in found] == [
        ("app.py", "changed", 10, 12),
        ("new.py", "added", None, 5),
        ("old.py", "removed", 3, None),
        ("same.py", "same", 4, 4),
    ]
    assert counts(found) == {"added": 1, "removed": 1, "changed": 1, "same": 1}


def test_two_layers_differ_by_path_size_and_content() -> None:
    a = [
        LayerEntry("app", "dir", 0, "added"),
        LayerEntry("app/app.py", "file", 6, "added"),
        LayerEntry("app/a.txt", "file", 3, "added"),
        LayerEntry("tmp/x", "whiteout", 0, "deleted"),
    ]
    b = [
        LayerEntry("app", "dir", 0, "added"),
        LayerEntry("app/app.py", "file", 6, "added"),
        LayerEntry("app/a.txt", "file", 4, "added"),
        LayerEntry("app/new", "file", 1, "added"),
    ]
    found = layers_diff(a, b, same_content=lambda path: path != "app/app.py")
    assert {f["path"]: f["change"] for f in found} == {
        "app": "same",
        "app/a.txt": "changed",
        "app/app.py": "changed",
        "app/new": "added",
        "tmp/x": "removed",
    }
    assert next(f for f in found if f["path"] == "tmp/x")["a_change"] == "deleted"
