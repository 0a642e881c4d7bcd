"""The recorded demo's story: the Dockerfile the two recorded builds ran, and the one edit made
between them. The page shows both beside the replay, so the demo explains itself; a test holds
them to the recording (frontend/public/demo-events.jsonl), which only the builds themselves wrote."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

DOCKERFILE = """\
FROM busybox
WORKDIR /app
COPY . .
RUN cat app.py
"""


@dataclass(frozen=True)
class Edit:
    """One file of the build context as it was for the first build and for the second."""

    path: str
    before: str
    after: str


EDIT = Edit(path="app.py", before="print(1)\n", after="print(2)\n")


@dataclass(frozen=True)
class DiffLine:
    """A line of the edit: kept, removed or added, with its number before and after."""

    op: Literal["keep", "remove", "add"]
    text: str
    old: int | None
    new: int | None

    @property
    def mark(self) -> str:
        # Said in a sign as well as a colour.
        return {"keep": " ", "remove": "\u2212", "add": "+"}[self.op]


def diff_lines(before: str, after: str) -> list[DiffLine]:
    """Every line of both versions in order, as a side-by-side-free diff a beginner can read."""
    old_lines, new_lines = before.splitlines(), after.splitlines()
    rows: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows += [DiffLine("keep", old_lines[i], i + 1, j1 + i - i1 + 1) for i in range(i1, i2)]
            continue
        rows += [DiffLine("remove", old_lines[i], i + 1, None) for i in range(i1, i2)]
        rows += [DiffLine("add", new_lines[j], None, j + 1) for j in range(j1, j2)]
    return rows


def dockerfile_lines() -> list[tuple[int, str]]:
    return list(enumerate(DOCKERFILE.splitlines(), start=1))
