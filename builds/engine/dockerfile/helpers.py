"""Small helpers shared by the parser's modules: Go's quoting, and "did you mean" suggestions."""

from __future__ import annotations

import json
from collections.abc import Sequence


class Invalid(Exception):
    """A validation message; `parse` turns it into a DockerfileError with the file and line."""


def go_quote(text: str) -> str:
    # BuildKit formats names with Go's %q; JSON string quoting matches it for printable text.
    return json.dumps(text, ensure_ascii=False)


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def suggest(message: str, value: str, options: Sequence[str], *, case_sensitive: bool) -> str:
    """BuildKit's "(did you mean X?)": the closest option less than 3 edits away."""
    probe = value if case_sensitive else value.lower()
    best, best_distance = "", 3
    for option in sorted(options):
        candidate = option if case_sensitive else option.lower()
        if candidate == probe:
            return message
        distance = _distance(probe, candidate)
        if distance < best_distance:
            best, best_distance = candidate, distance
    if not best:
        return message
    if not case_sensitive and value == value.upper():
        best = best.upper()  # the option was lowered; answer in the case the user wrote
    return f"{message} (did you mean {best}?)"

