"""Physical lines, the escape directive, and which line the package's errors are about."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence

from ..errors import DockerfileError
from . import syntax as _syntax
from .heredocs import heredoc_words
from .model import Heredoc
from .words import is_space


def physical_lines(text: str) -> list[str]:
    """The lines as BuildKit's scanner reads them: split on \\n only, each keeping its end."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _lstrip(text: str) -> str:
    start = 0
    while start < len(text) and is_space(text[start]):
        start += 1
    return text[start:]


def _chomp(line: str) -> str:
    return line.rstrip("\r\n")


GO_SPACE = "[\t\n\f\r ]"  # Go's \s
_DIRECTIVE = re.compile(rf"#{GO_SPACE}*([a-zA-Z][a-zA-Z0-9]*){GO_SPACE}*={GO_SPACE}*(.+?){GO_SPACE}*")


def escape_directive(lines: Sequence[str], filename: str) -> str:
    """The escape character from the directives at the top (`# escape=`, `# syntax=`), read as
    the package's BuildKit reads them: they end at the first line that is not one."""
    escape, seen = "\\", set()
    for number, raw in enumerate(lines, 1):
        line = _lstrip(_chomp(raw.removeprefix("\ufeff") if number == 1 else raw))
        match = _DIRECTIVE.fullmatch(line)
        key = match.group(1).lower() if match else ""
        if key not in ("syntax", "escape"):
            break
        if key in seen:
            raise DockerfileError(f"only one {key} parser directive can be used", file=filename, line=number)
        seen.add(key)
        if key == "escape":
            escape = match.group(2)  # type: ignore[union-attr]
            if escape not in ("`", "\\"):
                raise DockerfileError(f"invalid escape token '{escape}' does not match ` or \\",
                                      file=filename, line=number)
    return escape


def _trim_continuation(line: str, escape: str) -> tuple[str, bool]:
    """The line without a trailing escape, and whether the instruction ends on it."""
    token = re.escape(escape)
    joined, count = re.subn(rf"([^{token}]){token}[ \t]*$|^{token}[ \t]*$", r"\1", line)
    return joined, count == 0


def _is_json_list(text: str) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _line_heredocs(line: str) -> list[Heredoc]:
    """Heredocs a joined instruction line opens (RUN/COPY/ADD, also under ONBUILD, not JSON)."""
    words = line.split(None, 1)
    if words and words[0].upper() == "ONBUILD" and len(words) > 1:
        words = words[1].split(None, 1)
    if not words or words[0].upper() not in ("RUN", "COPY", "ADD"):
        return []
    rest = words[1] if len(words) > 1 else ""
    while rest.startswith("--"):
        _, _, rest = rest.partition(" ")  # flags; rough, but only used to place an error
        rest = rest.lstrip()
    return [] if _is_json_list(rest) else heredoc_words(line)


def _instruction_spans(lines: Sequence[str], escape: str) -> Iterator[tuple[int, int]]:
    """(first, last) line of each instruction, heredoc bodies included: BuildKit's line loop,
    used only to find which instruction the package choked on."""
    i = 0
    while i < len(lines):
        start = i
        line = _lstrip(_chomp(lines[i]))
        i += 1
        joined, done = _trim_continuation("" if line.startswith("#") else line, escape)
        if done and not joined:
            continue
        while not done and i < len(lines):
            raw = _chomp(lines[i])
            i += 1
            if _lstrip(raw).startswith("#") or not _lstrip(raw):
                continue  # comment and empty lines inside an instruction are skipped
            part, done = _trim_continuation(raw, escape)
            joined += part
        for doc in _line_heredocs(joined):
            while i < len(lines):
                body = _chomp(lines[i])
                i += 1
                if (body.lstrip("\t") if doc.chomp else body) == doc.name:
                    break
        yield start + 1, i


def parse_alone(lines: Sequence[str], escape: str) -> tuple[_syntax.Command, ...]:
    header = "# escape=`\n" if escape == "`" else ""
    return _syntax.parse_string(header + "".join(lines))


def failure_line(message: str, lines: Sequence[str], escape: str) -> int:
    """The line of the instruction the package rejected: it reports no line, so each
    instruction is parsed on its own until one fails."""
    if message.startswith("dockerfile line greater than"):
        return next((n for n, line in enumerate(lines, 1) if len(line.encode()) > 65535), len(lines))
    for first, last in _instruction_spans(lines, escape):
        try:
            parse_alone(lines[first - 1:last], escape)
        except _syntax.GoParseError:
            return first
    return max(len(lines), 1)  # "file with no instructions": BuildKit points at the end

