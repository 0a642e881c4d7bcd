"""What a parse gives: the Dockerfile, its stages, their instructions and heredocs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heredoc:
    name: str  # the delimiter word, e.g. "EOF"
    content: str  # the body as written, with its trailing newline (tabs kept: see `body`)
    expand: bool  # False when the delimiter was quoted (<<"EOF"): no variable expansion
    chomp: bool  # True for <<-EOF (leading tabs to be stripped: `body`)
    fd: int = 0  # the file descriptor before <<, e.g. 3 for `3<<EOF`

    def body(self) -> str:
        """The content as BuildKit uses it for COPY and a lone `RUN <<EOF`: for <<- the leading
        tabs of every line are removed."""
        return re.sub(r"(?m)^\t+", "", self.content) if self.chomp else self.content


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-case: "RUN", "COPY", ...
    original: str  # as written, continuation lines joined (BuildKit's Node.Original), trimmed
    line: int  # first line, 1-based
    end_line: int
    flags: Mapping[str, tuple[str, ...]]  # "--from=b" -> {"from": ("b",)}; "--mount" may repeat
    args: tuple[str, ...]  # the arguments, unexpanded; for JSON form the decoded list
    json_form: bool  # exec form: RUN ["a", "b"]
    heredocs: tuple[Heredoc, ...] = ()

    def flag(self, name: str, default: str | None = None) -> str | None:
        """The last value of a flag (flags that may repeat: use `flags[name]`)."""
        values = self.flags.get(name)
        return values[-1] if values else default

    def with_heredocs(self) -> str:
        """The shell-form command with each heredoc's body and delimiter put back after it: what
        BuildKit hands the shell for a RUN that is more than a lone heredoc (`RUN python3 <<EOF`).
        `original` holds only the instruction line, as BuildKit's Node.Original does."""
        text = " ".join(self.args)
        for doc in self.heredocs:
            text += "\n" + doc.content + doc.name
        return text


@dataclass
class Stage:
    index: int
    name: str | None  # lower-cased name from `FROM x AS name`
    base: str  # the FROM image reference, unexpanded (may contain $ARG)
    platform: str | None  # --platform flag, unexpanded
    line: int  # line of the FROM
    original: str  # the FROM line as written
    instructions: list[Instruction] = field(default_factory=list)  # after FROM, FROM excluded
    from_instruction: Instruction | None = None  # the FROM itself (args as written, flags)

    @property
    def label(self) -> str:
        """What events call the stage: its name, else its index as a string."""
        return self.name if self.name is not None else str(self.index)


@dataclass
class Dockerfile:
    meta_args: list[Instruction]  # ARG instructions before the first FROM
    stages: list[Stage]
    escape: str = "\\"  # from the `# escape=` directive
    filename: str = "Dockerfile"

    def stage(self, ref: str) -> Stage | None:
        """A stage by name (case-insensitive) or by index (a decimal string)."""
        wanted = ref.lower()
        for stage in self.stages:
            if stage.name == wanted:
                return stage
        if ref.isascii() and ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None

