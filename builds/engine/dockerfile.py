"""Parse a Dockerfile into stages and instructions, and expand variables by BuildKit's rules.

INTERFACE STUB: the implementation fills in the bodies; the types and signatures are the
contract the rest of the engine is written against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heredoc:
    name: str  # the delimiter word, e.g. "EOF"
    content: str  # the body, with its trailing newline
    expand: bool  # False when the delimiter was quoted (<<"EOF"): no variable expansion
    chomp: bool  # True for <<-EOF (leading tabs stripped)


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-case: "RUN", "COPY", ...
    original: str  # as written, continuation lines joined (BuildKit's Node.Original)
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


@dataclass
class Stage:
    index: int
    name: str | None  # lower-cased name from `FROM x AS name`
    base: str  # the FROM image reference, unexpanded (may contain $ARG)
    platform: str | None  # --platform flag, unexpanded
    line: int  # line of the FROM
    original: str  # the FROM line as written
    instructions: list[Instruction] = field(default_factory=list)  # after FROM, FROM excluded

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
        raise NotImplementedError


def parse(text: str, *, filename: str = "Dockerfile") -> Dockerfile:
    """Parse and validate. Raises DockerfileError naming the line for: a syntax error, an unknown
    instruction, an instruction with missing or malformed arguments, an instruction before the
    first FROM other than ARG, an unknown flag for an instruction, a duplicate stage name."""
    raise NotImplementedError


def expand(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """Expand $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:+alt}, ${VAR+alt},
    ${VAR:?msg} in one word as BuildKit's shell lexer does (quotes removed, escapes honoured).
    Unset variables expand to the empty string."""
    raise NotImplementedError


def expand_words(text: str, env: Mapping[str, str], *, escape: str = "\\") -> list[str]:
    """Split `text` into words as BuildKit's ProcessWords does (quotes group words) and expand
    each: used for EXPOSE, VOLUME (shell form) and similar."""
    raise NotImplementedError


def parse_key_values(instruction: Instruction, env: Mapping[str, str], *, escape: str = "\\") -> list[tuple[str, str]]:
    """ENV / LABEL pairs (`K=V K2=V2` and the legacy `K V` form), each value expanded against
    `env` as it was before this instruction (BuildKit: `ENV A=1 B=$A` gives B the old A)."""
    raise NotImplementedError


def parse_arg(instruction: Instruction, env: Mapping[str, str], *, escape: str = "\\") -> list[tuple[str, str | None]]:
    """ARG name[=default] ...: each (name, expanded default or None when no default given)."""
    raise NotImplementedError
