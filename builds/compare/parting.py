"""Why two builds part at a row, said between the two builds themselves.

Each build's own reason compares a step with that project's previous build of it. Two students'
builds, or today's build and last week's, need another answer: what differs between *these two*
steps. At the first row where they part everything above matched, so the cause is in the step's
own inputs: its instruction, its place, the files it copies, its base image, the build's
arguments or options. Pure: the caller passes what it found in the two revisions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from builds.engine.verdicts import NOT_RUN

from .align import Row

READS_FILES = ("COPY", "ADD")
SHOWN = 3  # names listed before "and N more"


def why_parted(
    row: Row,
    *,
    files: Sequence[Mapping[str, Any]] = (),
    args: tuple[Mapping[str, str], Mapping[str, str]] = ({}, {}),
    no_cache: tuple[bool, bool] = (False, False),
) -> dict[str, Any]:
    """{code, message} for a row where the builds part. `files` is the diff of the context files
    the two steps read (entries with path and change), `args` both builds' build arguments."""
    a, b = row.a, row.b
    if a is None or b is None:
        which = "A" if b is None else "B"
        return _said("only_in_" + which.lower(), f"Only build {which} has this step.")
    if row.kind == "changed":
        both = f"`{a['instruction']}` in A, `{b['instruction']}` in B"
        return _said("instruction_differs", f"The instruction differs: {both}.")
    if row.kind == "moved":
        return _said(
            "moved",
            f"The step moved (line {a['line']} in A, line {b['line']} in B), so it sits on a different "
            "layer below it.",
        )
    for side, step, other in (("A", a, b), ("B", b, a)):
        if step.get("status") == "failed" and other.get("status") != "failed":
            return _said("failed", f"Build {side} failed at this step.")
        if step.get("status") in ("skipped", NOT_RUN) and other.get("status") in ("cached", "built"):
            return _said("not_run", f"Build {side} stopped before this step.")
    keyword = str(b.get("keyword") or "").upper()
    if keyword == "FROM":
        return _said("base_differs", _base_message(a, b))
    changed = [entry for entry in files if entry.get("change") != "same"]
    if keyword in READS_FILES and changed:
        return _said("files_differ", f"The files it copies differ: {_files_message(changed)}.", files=changed)
    if any(no_cache):
        which = " and ".join(side for side, on in zip("AB", no_cache, strict=True) if on)
        return _said("no_cache", f"Build {which} ran with --no-cache, which builds every step anew.")
    arg_changes = _arg_changes(*args)
    if arg_changes:
        return _said(
            "build_args_differ", f"The build arguments differ: {', '.join(arg_changes)}.", names=arg_changes
        )
    return _said(
        "inputs_differ",
        "The same instruction on the same layers, yet different cache keys: something it reads differs "
        "(a file's content or mode, an earlier ARG or ENV value, a stage it copies from).",
    )


def _said(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **details}


def _base_message(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    base_a, base_b = a.get("base") or {}, b.get("base") or {}
    if base_a.get("digest") and base_b.get("digest"):
        return (
            f"The base image differs: {base_a.get('ref')} ({str(base_a['digest'])[:19]}) in A, "
            f"{base_b.get('ref')} ({str(base_b['digest'])[:19]}) in B."
        )
    return "The base image differs."


def _files_message(changed: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for change, word in (("changed", "changed"), ("added", "only in B"), ("removed", "only in A")):
        names = [str(entry["path"]) for entry in changed if entry["change"] == change]
        if names:
            more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
            parts.append(f"{', '.join(names[:SHOWN])}{more} {word}")
    return "; ".join(parts)


def _arg_changes(a: Mapping[str, str], b: Mapping[str, str]) -> list[str]:
    return [
        f"{name} ({a.get(name, 'unset')!s} → {b.get(name, 'unset')!s})"
        for name in sorted(set(a) | set(b))
        if a.get(name) != b.get(name)
    ]
