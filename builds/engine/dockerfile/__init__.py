"""Parse a Dockerfile into stages and instructions, and expand variables by BuildKit's rules.

The syntax (continuation lines, directives, comments, JSON and shell forms, heredocs) comes from
the `dockerfile` package, which wraps BuildKit's own parser (v0.12). It accepts anything that
looks like a line, so the checks BuildKit's `instructions` package makes afterwards (keywords,
arity, flags, stage names) are made here, with BuildKit's messages. The word expansion
(`expand`, `expand_words`) follows BuildKit's shell lexer (frontend/dockerfile/shell).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import DockerfileError
from . import syntax as _syntax
from .checks import CHECKS, Command, check_unknown, stage_name
from .helpers import Invalid, go_quote
from .heredocs import read_heredocs
from .lines import GO_SPACE, escape_directive, failure_line, parse_alone, physical_lines
from .model import Dockerfile, Heredoc, Instruction, Stage
from .words import expand, expand_heredoc, expand_words, expansion_budget, parse_arg, parse_key_values

__all__ = [
    "Dockerfile", "Heredoc", "Instruction", "Stage", "expand", "expand_heredoc", "expand_words",
    "expansion_budget", "parse", "parse_arg", "parse_key_values",
]

# --- parse ----------------------------------------------------------------------------------------

_ONBUILD_PREFIX = re.compile(rf"(?i)^{GO_SPACE}*ONBUILD{GO_SPACE}*")


class _Builder:
    """Turns the package's commands into a Dockerfile, checking each as BuildKit does."""

    def __init__(self, filename: str, lines: Sequence[str], escape: str) -> None:
        self.filename = filename
        self.lines = lines
        self.escape = escape
        self.meta_args: list[Instruction] = []
        self.stages: list[Stage] = []

    def error(self, message: str, line: int) -> DockerfileError:
        return DockerfileError(message, file=self.filename, line=line)

    def add(self, found: _syntax.Command) -> None:
        ins = self.instruction(found)
        if ins.keyword == "FROM":
            self.open_stage(ins)
        elif self.stages:
            self.stages[-1].instructions.append(ins)
        elif ins.keyword == "ARG":
            self.meta_args.append(ins)
        else:
            raise self.error("no build stage in current context", ins.line)

    def instruction(self, found: _syntax.Command) -> Instruction:
        # A lone continuation at the end of the file makes a node with no keyword (None here);
        # BuildKit reports it as an unknown instruction.
        written = found.cmd or ""
        keyword = written.upper()
        # Node.Original is the instruction line; the package appends heredoc bodies to it.
        original = (found.original or "").split("\n", 1)[0].strip()
        sub = found.sub_cmd
        args = tuple(found.value)
        if keyword == "ONBUILD":
            args = (sub, *args) if sub is not None else ()
        cmd = Command(keyword, written, args, tuple(found.flags), found.json, sub)
        try:
            flags = CHECKS.get(keyword, check_unknown)(cmd)
        except Invalid as exc:
            raise self.error(str(exc), found.start_line) from None
        heredocs = read_heredocs(original, found.heredocs) if found.heredocs else ()
        json_form = found.json
        if keyword == "ONBUILD":
            heredocs = self.onbuild_heredocs(found, original)
            args, json_form = (self.onbuild_expression(original, heredocs),), False
        return Instruction(keyword, original, found.start_line, found.end_line, flags, args, json_form,
                           heredocs)

    def onbuild_heredocs(self, found: _syntax.Command, original: str) -> tuple[Heredoc, ...]:
        # The package drops the heredocs of an ONBUILD's trigger: parse the trigger on its own.
        if (found.sub_cmd or "").upper() not in ("RUN", "COPY", "ADD") or found.end_line == found.start_line:
            return ()
        first, *rest = self.lines[found.start_line - 1:found.end_line]
        trigger = _ONBUILD_PREFIX.sub("", first.removeprefix("\ufeff"), count=1)
        try:
            reparsed = parse_alone([trigger, *rest], self.escape)
        except _syntax.GoParseError:
            return ()
        return read_heredocs(original, reparsed[0].heredocs) if reparsed else ()

    @staticmethod
    def onbuild_expression(original: str, heredocs: Sequence[Heredoc]) -> str:
        """The trigger as the image config stores it: the line after ONBUILD, heredocs after it."""
        expression = _ONBUILD_PREFIX.sub("", original, count=1)
        for doc in heredocs:
            expression += "\n" + doc.content + doc.name
        return expression

    def open_stage(self, ins: Instruction) -> None:
        name = stage_name(ins.args)
        previous = next((s for s in self.stages if name is not None and s.name == name), None)
        if previous is not None:
            # BuildKit only warns (lint rule DuplicateStageName) and lets the last one win for
            # --from; a studio that explains builds refuses the ambiguity instead.
            raise self.error(f"Duplicate stage name {go_quote(name or '')}, stage names should be unique "
                             f"(first used on line {previous.line})", ins.line)
        self.stages.append(Stage(index=len(self.stages), name=name, base=ins.args[0],
                                 platform=ins.flag("platform"), line=ins.line, original=ins.original,
                                 from_instruction=ins))

    def finish(self) -> Dockerfile:
        if not self.stages:
            raise self.error("dockerfile contains no stages to build", 1)
        return Dockerfile(self.meta_args, self.stages, escape=self.escape, filename=self.filename)


def _check_text(text: str, filename: str) -> None:
    """Refuse what the package cannot take: it reads the text as a C string (a NUL would
    silently end the file) and crashes the whole process on text that is not UTF-8."""
    position = text.find("\x00")
    message = "the Dockerfile contains a NUL character"
    if position < 0:
        try:
            text.encode("utf-8")
            return
        except UnicodeEncodeError as exc:
            position, message = exc.start, "the Dockerfile is not valid UTF-8 text"
    raise DockerfileError(message, file=filename, line=text.count("\n", 0, position) + 1)


def parse(text: str, *, filename: str = "Dockerfile") -> Dockerfile:
    """Parse and validate. Raises DockerfileError naming the line for: a syntax error, an unknown
    instruction, an instruction with missing or malformed arguments, an instruction before the
    first FROM other than ARG, an unknown flag for an instruction, a duplicate stage name."""
    _check_text(text, filename)
    lines = physical_lines(text)
    escape = escape_directive(lines, filename)
    try:
        commands = _syntax.parse_string(text)
        rejected = None
    except _syntax.GoParseError as exc:
        rejected = str(exc)
    except _syntax.ParseTimeout as exc:
        raise _syntax.ParseTimeout(exc.message, file=filename) from None
    if rejected is not None:
        raise DockerfileError(rejected, file=filename, line=failure_line(rejected, lines, escape))
    builder = _Builder(filename, lines, escape)
    for found in commands:
        builder.add(found)
    return builder.finish()
