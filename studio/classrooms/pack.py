"""The lesson pack the studio ships: one directory per lesson under lessons/, each with

- lesson.toml: title, summary, order, and the checks (as checks.py reads them);
- instructions.md: the text the student reads, split into steps at its `## ` headings;
- starter/: the files the class gets, built on purpose to fail the checks until fixed;
- solution/: a reference solution that passes them.

Everything here is read from the studio's own files, never from a request.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import checks as checks_

LESSONS_DIR = Path(__file__).resolve().parent / "lessons"


@dataclass(frozen=True)
class Lesson:
    slug: str
    title: str
    summary: str
    order: int
    instructions: str
    checks: list[dict[str, Any]]
    directory: Path

    @property
    def steps(self) -> list[dict[str, str]]:
        return split_steps(self.instructions)

    @property
    def starter(self) -> Path:
        return self.directory / "starter"

    @property
    def solution(self) -> Path:
        return self.directory / "solution"

    def starter_files(self) -> dict[str, bytes]:
        return files_of(self.starter)

    def to_json(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "title": self.title,
            "summary": self.summary,
            "steps": self.steps,
            "checks": [{**c, "description": checks_.describe(c)} for c in self.checks],
        }


def split_steps(markdown: str) -> list[dict[str, str]]:
    """The instructions' steps: each `## ` heading and the text under it. Text before the first
    heading is a step called "Introduction"."""
    steps: list[dict[str, str]] = []
    title, lines = "Introduction", list[str]()
    for line in markdown.splitlines():
        if line.startswith("## "):
            if "".join(lines).strip():
                steps.append({"title": title, "text": "\n".join(lines).strip()})
            title, lines = line[3:].strip(), list[str]()
        elif not line.startswith("# "):  # the lesson's own title is shown apart
            lines.append(line)
    if "".join(lines).strip():
        steps.append({"title": title, "text": "\n".join(lines).strip()})
    return steps


def files_of(directory: Path) -> dict[str, bytes]:
    """Every file under `directory`, by its path relative to it."""
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        # Python compiles the lessons' app.py files where it finds them (make's compileall).
        if path.is_file() and "__pycache__" not in path.relative_to(directory).parts
    }


def _load(directory: Path) -> Lesson:
    meta = tomllib.loads((directory / "lesson.toml").read_text(encoding="utf-8"))
    return Lesson(
        slug=directory.name,
        title=meta["title"],
        summary=meta["summary"],
        order=int(meta["order"]),
        instructions=(directory / "instructions.md").read_text(encoding="utf-8"),
        checks=checks_.clean_checks(meta["checks"]),
        directory=directory,
    )


@functools.cache
def lessons() -> tuple[Lesson, ...]:
    """The pack, in teaching order."""
    found = [_load(d) for d in LESSONS_DIR.iterdir() if (d / "lesson.toml").is_file()]
    return tuple(sorted(found, key=lambda lesson: (lesson.order, lesson.slug)))


def lesson(slug: str) -> Lesson | None:
    return next((found for found in lessons() if found.slug == slug), None)
