"""What a step read from the build context, found from the Dockerfile's text and the revision's
file list: a COPY or ADD without --from reads the context files under its sources, less what
.dockerignore leaves out. Also where each instruction ends, so a row can light up every line of
an instruction continued over several. Pure: text in, names out."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from builds.engine.context import (
    BadPattern,
    Pattern,
    compile_pattern,
    go_glob,
    has_wildcards,
    match_path,
    parse_dockerignore,
)
from builds.engine.dockerfile import Dockerfile, Instruction, parse
from builds.engine.errors import EngineError

READS_CONTEXT = ("COPY", "ADD")


@dataclass(frozen=True)
class Reads:
    """The sources a COPY/ADD names; `from_stage` when it reads a stage or image instead of the
    context; `heredoc` when it writes its own text and reads nothing."""

    keyword: str
    sources: tuple[str, ...]
    from_stage: str | None = None
    heredoc: bool = False
    excludes: tuple[str, ...] = ()  # --exclude patterns, relative to each source

    @property
    def context(self) -> bool:
        return self.from_stage is None and not self.heredoc


def _parsed(text: str, filename: str) -> Dockerfile | None:
    try:
        return parse(text, filename=filename)
    except EngineError:
        return None  # a build of it was refused or failed; its rows still show, without extras


def _instructions(dockerfile: Dockerfile) -> Iterable[Instruction]:
    for stage in dockerfile.stages:
        if stage.from_instruction is not None:
            yield stage.from_instruction
        yield from stage.instructions


def line_ends(text: str, filename: str = "Dockerfile") -> dict[int, int]:
    """Each instruction's first line -> its last (the same for a one-line instruction)."""
    dockerfile = _parsed(text, filename)
    if dockerfile is None:
        return {}
    return {ins.line: ins.end_line for ins in _instructions(dockerfile)}


def step_reads(text: str, line: int, filename: str = "Dockerfile") -> Reads | None:
    """What the COPY/ADD starting at `line` reads; None when no COPY or ADD starts there."""
    dockerfile = _parsed(text, filename)
    if dockerfile is None:
        return None
    for ins in _instructions(dockerfile):
        if ins.line == line and ins.keyword in READS_CONTEXT:
            if ins.heredocs:
                return Reads(ins.keyword, (), heredoc=True)
            return Reads(
                ins.keyword,
                tuple(ins.args[:-1]),
                from_stage=ins.flag("from"),
                excludes=tuple(ins.flags.get("exclude", ())),
            )
    return None


def ignore_file_names(dockerfile_path: str) -> list[str]:
    """Where the context's ignore patterns are read from, the first found winning: the
    Dockerfile's own (`Dockerfile.dockerignore` beside it), then `.dockerignore`."""
    return [dockerfile_path + ".dockerignore", ".dockerignore"]


def read_paths(reads: Reads, paths: Iterable[str], dockerignore: str | None = None) -> list[str]:
    """The context files (of `paths`) that the step's sources name, sorted. A source names a
    file, or everything under a directory, or what its wildcards match; `.` is the whole context.
    What .dockerignore leaves out of the context and --exclude leaves out of the copy is not
    read. Sources with a variable in them are matched as written."""
    if not reads.context:
        return []
    try:
        patterns = parse_dockerignore(dockerignore) if dockerignore else []
    except EngineError:
        patterns = []  # the build itself reported the bad pattern
    try:
        excludes = [compile_pattern(text) for text in reads.excludes]
    except BadPattern:
        excludes = []  # likewise
    wanted = [_clean(source) for source in reads.sources if not _is_url(source)]
    return sorted(
        path
        for path in paths
        if any(_under(source, path) and _kept(source, path, excludes) for source in wanted)
        and not (patterns and match_path(patterns, path)[0])
    )


def _kept(source: str, path: str, excludes: list[Pattern]) -> bool:
    """Whether --exclude leaves `path` in the copy of `source`: a wildcard source loses a whole
    entry whose name matches; below a directory, the path under it is what the patterns see."""
    if not excludes:
        return True
    parts = path.split("/")
    if has_wildcards(source):
        depth = len(source.split("/"))
        if match_path(excludes, parts[depth - 1])[0]:
            return False
        under = "/".join(parts[depth:])
    else:
        under = "/".join(parts[len(source.split("/")) :]) if source else path
    return not under or not match_path(excludes, under)[0]


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://", "git@"))


def _clean(source: str) -> str:
    cleaned = posixpath.normpath("/" + source).lstrip("/")
    return cleaned


def _under(source: str, path: str) -> bool:
    if source == "":
        return True
    if not has_wildcards(source):
        return path == source or path.startswith(source + "/")
    pattern = source.split("/")
    parts = path.split("/")
    # A pattern matches an entry at its own depth; a matched directory brings everything below it.
    return len(parts) >= len(pattern) and all(
        go_glob(segment).match(part) for segment, part in zip(pattern, parts, strict=False)
    )
