"""The differences a comparison shows, as plain data the page draws: two instructions word by word,
two texts line by line, two sets of context files, and two layers' file changes. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

MAX_DIFF_LINES = 2000  # a text diff stops here and says so; nobody reads further in a browser
_TOKEN = re.compile(r"\s+|\S+")


def words_diff(a: str, b: str) -> list[list[str]]:
    """[op, text] pieces, op being "equal", "delete" (only in a) or "insert" (only in b); joined,
    the equal and delete pieces give a, the equal and insert pieces give b."""
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    out: list[list[str]] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if tag in ("equal", "delete", "replace") and i2 > i1:
            _add(out, "equal" if tag == "equal" else "delete", "".join(ta[i1:i2]))
        if tag in ("insert", "replace") and j2 > j1:
            _add(out, "insert", "".join(tb[j1:j2]))
    return out


def _add(out: list[list[str]], op: str, text: str) -> None:
    if out and out[-1][0] == op:
        out[-1][1] += text
    else:
        out.append([op, text])


def lines_diff(a: str, b: str, *, limit: int = MAX_DIFF_LINES) -> dict[str, Any]:
    """Both texts line by line: {lines: [{op, a, b, text}], truncated}. `a` and `b` are the line's
    numbers (1-based) in each text, null where it is not in that text; op is equal, delete or
    insert. A changed line is a delete then an insert."""
    la, lb = a.splitlines(), b.splitlines()
    lines: list[dict[str, Any]] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, la, lb, autojunk=False).get_opcodes():
        if tag == "equal":
            lines.extend(
                {"op": "equal", "a": i1 + k + 1, "b": j1 + k + 1, "text": la[i1 + k]} for k in range(i2 - i1)
            )
            continue
        lines.extend({"op": "delete", "a": i + 1, "b": None, "text": la[i]} for i in range(i1, i2))
        lines.extend({"op": "insert", "a": None, "b": j + 1, "text": lb[j]} for j in range(j1, j2))
    return {"lines": lines[:limit], "truncated": len(lines) > limit}


@dataclass(frozen=True)
class FileFacts:
    """A file as one side has it: its size and something that changes when its content does."""

    size: int
    digest: str


def files_diff(a: dict[str, FileFacts], b: dict[str, FileFacts]) -> list[dict[str, Any]]:
    """Every path of either side, sorted, with its change from a to b: added, removed, changed or
    same, and the size on each side (null where it is missing)."""
    out = []
    for path in sorted(set(a) | set(b)):
        fa, fb = a.get(path), b.get(path)
        if fa is None:
            change = "added"
        elif fb is None:
            change = "removed"
        else:
            change = "same" if fa.digest == fb.digest else "changed"
        out.append(
            {
                "path": path,
                "change": change,
                "a_size": fa.size if fa else None,
                "b_size": fb.size if fb else None,
            }
        )
    return out


@dataclass(frozen=True)
class LayerEntry:
    """One path a layer changed, as the store records it (kind: file, dir, symlink, whiteout;
    change: what the layer did to it: added, modified, deleted)."""

    path: str
    kind: str
    size: int
    change: str


def layers_diff(
    a: Iterable[LayerEntry],
    b: Iterable[LayerEntry],
    same_content: Callable[[str], bool] = lambda path: True,
) -> list[dict[str, Any]]:
    """Every path either layer wrote, sorted: added (only b's layer has it), removed (only a's),
    changed (both, but a different kind, size, change or content: `same_content(path)` decides
    for two files of one size), or same. Each with both sizes and what each layer did to it."""
    by_a = {entry.path: entry for entry in a}
    by_b = {entry.path: entry for entry in b}
    out = []
    for path in sorted(set(by_a) | set(by_b)):
        ea, eb = by_a.get(path), by_b.get(path)
        either = eb or ea
        assert either is not None  # the path came from one of them
        if ea is None:
            change = "added"
        elif eb is None:
            change = "removed"
        elif (ea.kind, ea.size, ea.change) != (eb.kind, eb.size, eb.change) or (
            ea.kind == "file" and not same_content(path)
        ):
            change = "changed"
        else:
            change = "same"
        out.append(
            {
                "path": path,
                "kind": either.kind,
                "change": change,
                "a_size": ea.size if ea else None,
                "b_size": eb.size if eb else None,
                "a_change": ea.change if ea else None,
                "b_change": eb.change if eb else None,
            }
        )
    return out


def counts(entries: Iterable[dict[str, Any]]) -> dict[str, int]:
    """How many entries of each change: {added, removed, changed, same}."""
    found = {"added": 0, "removed": 0, "changed": 0, "same": 0}
    for entry in entries:
        found[entry["change"]] += 1
    return found
