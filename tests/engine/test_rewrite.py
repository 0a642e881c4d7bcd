"""The rewrite that moves a later RUN's deletion into the RUN that made the files: only the
person's own text moves, and what cannot be moved safely is refused, saying why."""

from __future__ import annotations

import pytest

from builds.engine.dockerfile import parse
from builds.engine.rewrite import RewriteError, move_deletion

DOCKERFILE = """\
FROM debian:bookworm
RUN apt-get update \\
  && apt-get install -y curl
COPY . /app
RUN rm -rf /var/lib/apt/lists/*
CMD ["sh"]
"""


def test_the_deleting_run_moves_into_the_run_that_made_the_files() -> None:
    rewrite = move_deletion(DOCKERFILE, adder_line=2, hider_line=5)
    assert rewrite.text == """\
FROM debian:bookworm
RUN apt-get update \\
  && apt-get install -y curl \\
  && rm -rf /var/lib/apt/lists/*
COPY . /app
CMD ["sh"]
"""
    assert rewrite.before == ["RUN apt-get update \\", "  && apt-get install -y curl",
                              "RUN rm -rf /var/lib/apt/lists/*"]
    assert [ins.keyword for ins in parse(rewrite.text).stages[0].instructions] == ["RUN", "COPY", "CMD"]


@pytest.mark.parametrize(("moved", "follows"), [
    ("rm -rf /src", "rm -rf /src"),
    ("apt-get clean && rm -rf /var/lib/apt/lists/*", "apt-get clean && rm -rf /var/lib/apt/lists/*"),
    ("find /src -name '*.o' | xargs rm", "find /src -name '*.o' | xargs rm"),
    ("rm -rf /src; echo done", "{ rm -rf /src; echo done; }"),
    ("rm '/a;b' /c", "rm '/a;b' /c"),
])
def test_a_command_joined_by_and_or_pipes_follows_as_it_is(moved: str, follows: str) -> None:
    rewrite = move_deletion(f"FROM x\nRUN make\nRUN {moved}\n", adder_line=2, hider_line=3)
    assert rewrite.after == ["RUN make \\", f"    && {follows}"]


def test_a_command_that_is_more_than_one_goes_in_braces_so_it_cannot_hide_a_failure() -> None:
    text = "FROM x\nRUN make;\nRUN rm -rf /src || true\n"
    rewritten = move_deletion(text, adder_line=2, hider_line=3).text
    assert rewritten == "FROM x\nRUN make \\\n    && { rm -rf /src || true; }\n"


@pytest.mark.parametrize(("text", "lines", "why"), [
    ("FROM x\nRUN make # build it\nRUN rm -rf /src\n", (2, 3), "ends in a shell comment"),
    ("FROM x\nRUN make\nRUN --mount=type=cache,target=/c rm -rf /src\n", (2, 3), "has flags of its own"),
    ("FROM x\nCOPY big /big\nRUN rm /big\n", (2, 3), "line 2 is a COPY, not a RUN"),
    ("FROM x\nRUN rm /big\nRUN make\n", (3, 2), "must come after"),
    ("FROM x AS a\nRUN make\nFROM x\nRUN rm /big\n", (2, 4), "in its stage"),
    ("FROM x\nRUN [\"make\"]\nRUN rm /big\n", (2, 3), "not a plain shell command"),
    ("FROM x\nRUN make\nRUN rm /big\n", (2, 9), "no instruction starts on line 9"),
])
def test_what_cannot_be_moved_is_refused_saying_why(text: str, lines: tuple[int, int], why: str) -> None:
    with pytest.raises(RewriteError, match=why):
        move_deletion(text, adder_line=lines[0], hider_line=lines[1])
