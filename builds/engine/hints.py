"""The studio's own lint: where a Dockerfile's order makes the layer cache work against its author.

Each hint names its line, says in a sentence why the order costs a rebuild (or saves nothing),
and what to do instead. They read the parsed Dockerfile only, so they cost next to nothing:

- `studio/copy-all-before-install`: the whole context is copied before a step that installs
  dependencies (a package manager, or any command that reads requirements*.txt by name), so
  every source edit reinstalls them;
- `studio/early-arg`: an ARG declared before RUN steps that do not use it, which a new value of
  the ARG still rebuilds;
- `studio/cleanup-in-own-run`: a RUN that only deletes a package cache, which makes the image no
  smaller because the earlier layer still holds the files;
- `studio/apt-update-alone`: a package index updated in a RUN of its own, which stays cached while
  the install after it changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .dockerfile import Dockerfile, Instruction, Stage, parse_arg


@dataclass(frozen=True)
class Hint:
    code: str
    line: int
    end_line: int
    message: str
    severity: str = "warning"

    def to_json(self) -> dict[str, object]:
        return {
            "line": self.line,
            "end_line": self.end_line,
            "column": None,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "source": "studio",
            "url": None,
        }


@dataclass(frozen=True)
class Installer:
    """A command that installs dependencies, and the files it installs them from (none: the
    system's packages, which need nothing from the context)."""

    pattern: re.Pattern[str]
    files: tuple[str, ...] = ()


INSTALLERS = [
    Installer(re.compile(r"\b(pip3?|python3? -m pip) install\b"), ("requirements.txt",)),
    Installer(re.compile(r"\b(poetry|pipenv|uv) (install|sync)\b"), ("pyproject.toml", "poetry.lock")),
    Installer(re.compile(r"\bnpm (install|ci|i)\b"), ("package.json", "package-lock.json")),
    Installer(re.compile(r"\byarn( install)?\s*($|--)"), ("package.json", "yarn.lock")),
    Installer(re.compile(r"\bpnpm (install|i)\b"), ("package.json", "pnpm-lock.yaml")),
    Installer(re.compile(r"\bgo mod download\b"), ("go.mod", "go.sum")),
    Installer(re.compile(r"\bbundle install\b"), ("Gemfile", "Gemfile.lock")),
    Installer(re.compile(r"\bcargo (build|fetch)\b"), ("Cargo.toml", "Cargo.lock")),
    Installer(re.compile(r"\bcomposer install\b"), ("composer.json", "composer.lock")),
    Installer(re.compile(r"\bmvn\b.*\bdependency:"), ("pom.xml",)),
    Installer(re.compile(r"\b(apt-get|apt|apk|yum|dnf|microdnf|zypper) (-\S+ )*(install|add)\b")),
    # Any other command that reads the dependency list by name (a script of one's own that
    # installs from it) is an install as far as the cache is concerned.
    Installer(re.compile(r"(?<![\w./-])requirements[\w.-]*\.txt\b"), ("requirements.txt",)),
]
PACKAGE_INSTALL = re.compile(r"\b(apt-get|apt|apk|yum|dnf|microdnf|zypper) (-\S+ )*(install|add)\b")
PACKAGE_UPDATE = re.compile(r"\b(apt-get|apt) (-\S+ )*update\b|\bapk (-\S+ )*update\b")
CLEANUP = re.compile(
    r"\b(apt-get|apt) (-\S+ )*(clean|autoclean)\b"
    r"|\brm\b.*(/var/lib/apt/lists|/var/cache/apt|/var/cache/apk|/var/cache/yum|/var/cache/dnf|/root/\.cache)"
    r"|\b(yum|dnf) clean\b|\bapk cache clean\b|\bpip3? cache purge\b|\bnpm cache clean\b"
)
# Commands a cleanup RUN may also hold without doing any real work.
HARMLESS = re.compile(r"^\s*(set\b.*|true|:|echo\b.*|)\s*$")
WHOLE_CONTEXT = {".", "./", "*", "/", "./*"}


def hints(dockerfile: Dockerfile) -> list[Hint]:
    """Every hint for the Dockerfile, in line order."""
    found: list[Hint] = []
    for stage in dockerfile.stages:
        found.extend(_copy_all_before_install(stage))
        found.extend(_early_args(stage, dockerfile.escape))
        for ins in stage.instructions:
            if ins.keyword == "RUN":
                found.extend(_run_hints(stage, ins))
    return sorted(found, key=lambda hint: (hint.line, hint.code))


def run_text(ins: Instruction) -> str:
    """A RUN's command as a shell would read it, heredoc bodies included."""
    text = " ".join(ins.args)
    return text + "".join("\n" + doc.body() for doc in ins.heredocs)


def commands(ins: Instruction) -> list[str]:
    """The simple commands of a RUN, split at && || ; | and new lines."""
    return [part.strip() for part in re.split(r"&&|\|\||;|\||\n", run_text(ins)) if part.strip()]


def _copy_all_before_install(stage: Stage) -> Iterator[Hint]:
    copied: Instruction | None = None
    for ins in stage.instructions:
        if copied is None and _copies_whole_context(ins):
            copied = ins
        elif copied is not None and ins.keyword == "RUN":
            installer = next((i for i in INSTALLERS if i.pattern.search(run_text(ins))), None)
            if installer is None:
                continue
            if installer.files:
                files = " ".join(installer.files)
                todo = (
                    f"copy only the dependency list first, install, then copy the rest: put "
                    f"`COPY {files} ./` and the install before line {copied.line}"
                )
            else:
                todo = f"move the install above line {copied.line}, since it needs nothing from the context"
            yield Hint(
                "studio/copy-all-before-install",
                copied.line,
                copied.end_line,
                f"Line {copied.line} copies the whole build context before line {ins.line} installs "
                f"dependencies, so editing any file (even one line of your code) rebuilds the install "
                f"too. Instead, {todo}.",
            )
            return


def _copies_whole_context(ins: Instruction) -> bool:
    if ins.keyword not in ("COPY", "ADD") or ins.flag("from") is not None or ins.heredocs:
        return False
    sources = ins.args[:-1]
    return any(source.strip() in WHOLE_CONTEXT for source in sources)


def _early_args(stage: Stage, escape: str) -> Iterator[Hint]:
    steps = stage.instructions
    for index, ins in enumerate(steps):
        if ins.keyword != "ARG":
            continue
        for name, _ in parse_arg(ins, {}, escape=escape):
            uses = re.compile(r"\$(\{" + re.escape(name) + r"\b|" + re.escape(name) + r"\b)")
            later = steps[index + 1 :]
            first_use = next((s for s in later if uses.search(s.original)), None)
            before_use = later[: later.index(first_use)] if first_use is not None else later
            unaffected = [s for s in before_use if s.keyword == "RUN"]
            if not unaffected:
                continue
            lines = _lines(unaffected)
            what, does = ("RUN", "does") if len(unaffected) == 1 else ("RUN steps", "do")
            if first_use is None:
                todo = "remove it if nothing needs it, or declare it just before the step that does"
            else:
                todo = f"declare it just before line {first_use.line}, the first step that uses it"
            yield Hint(
                "studio/early-arg",
                ins.line,
                ins.end_line,
                f"ARG {name} is declared before the {what} on {lines}, which {does} not use it. A RUN is "
                f"rebuilt whenever the value of an ARG declared above it changes, so a new {name} "
                f"rebuilds {'it' if len(unaffected) == 1 else 'them'} for nothing. Instead, {todo}.",
            )


def _lines(steps: list[Instruction]) -> str:
    numbers = [str(s.line) for s in steps]
    if len(numbers) == 1:
        return f"line {numbers[0]}"
    return "lines " + ", ".join(numbers[:-1]) + " and " + numbers[-1]


def _run_hints(stage: Stage, ins: Instruction) -> Iterator[Hint]:
    parts = commands(ins)
    text = run_text(ins)
    installs = PACKAGE_INSTALL.search(text) is not None
    if not installs and PACKAGE_UPDATE.search(text):
        yield Hint(
            "studio/apt-update-alone",
            ins.line,
            ins.end_line,
            f"Line {ins.line} updates the package index in a RUN of its own. That layer stays cached, "
            "so when you later change the packages you install, the update does not run again and the "
            "install uses an old index (and may not find the package). Update and install in one RUN: "
            "`RUN apt-get update && apt-get install -y ...`.",
        )
    cleanups = [part for part in parts if CLEANUP.search(part)]
    if cleanups and not installs and all(CLEANUP.search(p) or HARMLESS.match(p) for p in parts):
        earlier = [s for s in stage.instructions if s.keyword == "RUN" and s.line < ins.line and _installs(s)]
        where = f"the layer of line {earlier[-1].line}" if earlier else "the earlier layer"
        yield Hint(
            "studio/cleanup-in-own-run",
            ins.line,
            ins.end_line,
            f"Line {ins.line} only deletes a package cache, but {where} still holds those files: an image "
            "keeps every layer, so deleting them in a later step makes it no smaller. Clean up at the end "
            "of the RUN that installs, e.g. `RUN apt-get update && apt-get install -y ... && rm -rf "
            "/var/lib/apt/lists/*`.",
        )


def _installs(ins: Instruction) -> bool:
    return PACKAGE_INSTALL.search(run_text(ins)) is not None or any(
        i.pattern.search(run_text(ins)) for i in INSTALLERS
    )
