"""What the class got wrong: the mistakes a student's latest Dockerfile makes, and the class
grouped by them ("12 students copy the whole context before installing").

A mistake is one of the studio's cache hints (builds/engine/hints.py), a hadolint finding
(builds/lint.py) or a failed check of the exercise. Hints and findings depend on the Dockerfile's
text only, so they are remembered per text digest: a class of 30 mostly builds a handful of
distinct Dockerfiles, and a row sent on every build event costs one dictionary lookup, not one
hadolint run. Nothing is built: the checks' verdicts are the ones already kept on the copy.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from typing import Any

from builds.lint import dockerfile_lint
from builds.models import Build
from builds.selectors import build_dockerfile_text

from . import checks as checks_

# What a group's sentence says after "N students", for the studio's own hints.
PHRASES = {
    "studio/copy-all-before-install": "copy the whole context before installing",
    "studio/early-arg": "declare an ARG above steps that do not use it",
    "studio/cleanup-in-own-run": "clean up in a RUN of its own, which saves no bytes",
    "studio/apt-update-alone": "update the package index in a RUN of its own",
    "studio/parse-error": "have a Dockerfile that does not parse",
}
# Findings that say something about the linter, not about the student's Dockerfile.
IGNORED = {"studio/hadolint-unavailable"}
SEVERITIES = {"error", "warning"}
# How the groups are ordered when as many students share them: cache mistakes, then the
# checks, then hadolint's general advice.
SOURCE_ORDER = {"studio": 0, "check": 1, "hadolint": 2}
_MEMO_LIMIT = 2_000


class _Memo:
    """The linters' mistakes per Dockerfile digest, the oldest forgotten first."""

    def __init__(self) -> None:
        self._found: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self.misses = 0

    def get(self, text: str) -> list[dict[str, Any]]:
        key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        with self._lock:
            if key in self._found:
                self._found.move_to_end(key)
                return self._found[key]
        found = _lint_mistakes(text)
        with self._lock:
            self.misses += 1
            self._found[key] = found
            while len(self._found) > _MEMO_LIMIT:
                self._found.popitem(last=False)
        return found


memo = _Memo()


def _lint_mistakes(text: str) -> list[dict[str, Any]]:
    """The hints and findings of one Dockerfile, merged per code (a rule broken on two lines is
    one mistake with two places)."""
    by_code: dict[str, dict[str, Any]] = {}
    for d in dockerfile_lint(text=text):
        if d["code"] in IGNORED or d["severity"] not in SEVERITIES:
            continue
        found = by_code.setdefault(
            d["code"],
            {
                "code": d["code"],
                "source": "studio" if d["source"] == "studio" else "hadolint",
                "title": _title(d),
                "message": d["message"],
                "lines": [],
            },
        )
        found["lines"].append([d["line"], d.get("end_line") or d["line"]])
    return list(by_code.values())


def _title(diagnostic: dict[str, Any]) -> str:
    code = diagnostic["code"]
    if code in PHRASES:
        return PHRASES[code]
    # hadolint's messages are the rule's own words, the same for everyone who breaks it.
    return f"break hadolint's {code}: {diagnostic['message'].split('. ')[0].rstrip('.')}"


def of_copy(*, build: Build | None, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The mistakes of a student's copy: those of the Dockerfile of its latest build, and its
    failed checks. A copy never built has none yet (its starter's are the teacher's)."""
    found: list[dict[str, Any]] = []
    if build is not None:
        text = build_dockerfile_text(build=build)
        if text is not None:
            found.extend(memo.get(text))
    for index, result in enumerate(results):
        if result.get("status") == checks_.FAIL:
            found.append(
                {
                    "code": f"check:{index + 1}",
                    "source": "check",
                    "title": f"fail the check “{result.get('check', '')}”",
                    "message": result.get("message", ""),
                    "lines": [],
                }
            )
    return found


def groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The class grouped by mistake, the largest group first: each group's code, its sentence,
    and its students in name order. `rows` are the dashboard's (selectors.student_row)."""
    by_code: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r["name"].lower(), r["student"])):
        for mistake in row.get("mistakes") or []:
            group = by_code.setdefault(
                mistake["code"],
                {key: mistake[key] for key in ("code", "source", "title")} | {"students": []},
            )
            group["students"].append({"student": row["student"], "name": row["name"]})
    ordered = sorted(
        by_code.values(),
        key=lambda g: (-len(g["students"]), SOURCE_ORDER.get(g["source"], 9), g["code"]),
    )
    for group in ordered:
        n = len(group["students"])
        title = group["title"]
        group["sentence"] = f"{n} students {title}" if n != 1 else f"1 student {singular(title)}"
    return ordered


def singular(title: str) -> str:
    """"copy the whole context" as said of one student: "copies the whole context"."""
    verb, _, rest = title.partition(" ")
    said = {"copy": "copies", "have": "has"}.get(verb, verb + "s")
    return f"{said} {rest}"


# A check's message names the lines it blames ("line 3: COPY . ."); the lint's carry them.
LINE_NAMED = re.compile(r"\bline (\d{1,5})\b")


def marked_lines(text: str, mistake: dict[str, Any]) -> list[dict[str, Any]]:
    """The Dockerfile line by line, each with its number and whether the mistake is on it."""
    spans = [(a, b) for a, b in mistake.get("lines") or []]
    if not spans:
        spans = [(int(n), int(n)) for n in LINE_NAMED.findall(mistake.get("message", ""))]
    return [
        {"number": i, "text": line, "fault": any(a <= i <= b for a, b in spans)}
        for i, line in enumerate(text.splitlines(), 1)
    ]
