"""A Dockerfile rewritten so that a later RUN's deletion happens in the RUN that made the files.

Files a RUN makes and a later RUN deletes are still shipped in the first RUN's layer; run in the
same RUN, the deletion keeps them out of every layer. The rewrite appends the later RUN's command
to the earlier one (`&& <command>`, in braces when it holds a `;`, `||` or `&`, so that an `||`
in it cannot hide the earlier command's failure) and removes the later RUN. Only the person's
own Dockerfile text moves: no path from the image is ever written into it. Whether the steps in
between still build without those files is what building the rewrite finds out.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from .dockerfile import parse
from .dockerfile.model import Instruction
from .errors import InputError


class RewriteError(InputError):
    """A deletion that cannot be moved by rewriting the text alone: says why."""


@dataclass
class Rewrite:
    text: str  # the whole Dockerfile, rewritten
    adder_line: int  # the RUN that made the files (its first line)
    hider_line: int  # the RUN whose deletion moves (removed)
    before: list[str]  # the two RUNs' lines as written
    after: list[str]  # what stands in their place

    def to_json(self) -> dict[str, object]:
        return {"adder_line": self.adder_line, "hider_line": self.hider_line, "before": self.before,
                "after": self.after}


def _run_at(stages_instructions: list[list[Instruction]], line: int) -> tuple[int, Instruction]:
    for index, instructions in enumerate(stages_instructions):
        for ins in instructions:
            if ins.line == line:
                if ins.keyword != "RUN":
                    raise RewriteError(f"line {line} is a {ins.keyword}, not a RUN")
                if ins.json_form or ins.heredocs:
                    raise RewriteError(f"the RUN on line {line} is not a plain shell command")
                return index, ins
    raise RewriteError(f"no instruction starts on line {line}")


def _simple(command: str) -> bool:
    """Whether `command` can follow `&&` as it is: commands joined by `&&` and pipes only. After
    a `;`, an `||` or a `&`, what runs (and the exit code) would no longer depend on the RUN the
    command joins."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        return all(token in ("&&", "|") or not set(token) <= set(";&|()") for token in lexer)
    except ValueError:
        return False


def _ends_in_comment(command: str) -> bool:
    try:
        return shlex.split(command, comments=True) != shlex.split(command)
    except ValueError:
        return "#" in command


def move_deletion(text: str, *, adder_line: int, hider_line: int) -> Rewrite:
    """`text` with the RUN starting on `hider_line` moved into the RUN starting on `adder_line`.
    Raises RewriteError when that cannot be done by moving text."""
    parsed = parse(text)
    stages = [stage.instructions for stage in parsed.stages]
    adder_stage, adder = _run_at(stages, adder_line)
    hider_stage, hider = _run_at(stages, hider_line)
    if adder_stage != hider_stage or hider.line <= adder.end_line:
        raise RewriteError("the deleting RUN must come after the RUN that made the files, in its stage")
    if hider.flags:
        flags = ", ".join(sorted(hider.flags))
        raise RewriteError(f"the RUN on line {hider.line} has flags of its own ({flags})")
    command, moved = " ".join(adder.args).rstrip(), " ".join(hider.args).strip()
    if _ends_in_comment(command):
        raise RewriteError(f"the RUN on line {adder.line} ends in a shell comment, which would swallow "
                           "the moved command")
    if command.endswith("&") and not command.endswith("&&"):
        raise RewriteError(f"the RUN on line {adder.line} ends by running something in the background")
    lines = text.split("\n")
    before = lines[adder.line - 1:adder.end_line] + lines[hider.line - 1:hider.end_line]
    last = lines[adder.end_line - 1].rstrip().rstrip(";").rstrip()
    follow = moved if _simple(moved) else "{ " + moved.rstrip(";").rstrip() + "; }"
    indent = "    "
    if adder.end_line > adder.line:  # continue as the RUN's own continuation lines are indented
        second = lines[adder.line]
        indent = second[:len(second) - len(second.lstrip())] or indent
    after = [*lines[adder.line - 1:adder.end_line - 1], f"{last} {parsed.escape}", f"{indent}&& {follow}"]
    rewritten = [*lines[:adder.line - 1], *after, *lines[adder.end_line:hider.line - 1],
                 *lines[hider.end_line:]]
    return Rewrite(text="\n".join(rewritten), adder_line=adder.line, hider_line=hider.line, before=before,
                   after=after)
