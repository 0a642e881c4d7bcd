"""The checks an exercise holds its students' builds to, as plain functions of what a build did.

Each check gives a status (pass, fail, or not yet: the builds so far cannot tell) and a sentence
saying why, naming the build it judged. A later build that cannot judge a check leaves its last
verdict standing: a student who once showed that editing app.py rebuilds one step keeps that
pass until a build where only app.py changed rebuilds more.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from studio.errors import Rejected

PASS, FAIL, NOT_YET = "pass", "fail", "not_yet"
MB = 1_000_000  # as `docker images` counts them
MAX_CHECKS = 20

# kind -> {parameter: (type, description)}
KINDS: dict[str, dict[str, tuple[type, str]]] = {
    "rebuild_after_change": {
        "file": (str, "the context file to change, e.g. app.py"),
        "max_steps": (int, "how many steps may rebuild"),
    },
    "image_size": {"max_mb": (int, "the image's size limit in MB")},
    "layers": {"max": (int, "how many layers the image may have")},
    "absent_path": {"path": (str, "a path the final image must not hold, e.g. /usr/bin/gcc")},
    "present_path": {"path": (str, "a path the final image must hold, e.g. /opt/deps/flask")},
    # Judged on builds the check makes itself: the student's files as built, then a copy with
    # `file` changed, built again in the student's cache; the steps that rebuild are counted.
    "edit_rebuilds": {
        "file": (str, "the context file the check changes, e.g. app.py"),
        "max_steps": (int, "how many steps may rebuild after the change"),
    },
    # Judged on the same builds: the bytes of the edited image's layers that the first image
    # lacks, which is what a push after the change sends (a squashed image sends all of itself).
    "edit_push": {
        "file": (str, "the context file the check changes, e.g. app.sh"),
        "max_kb": (int, "how many KB a push may send after the change"),
    },
}
# The kinds judged on builds the check makes itself, with a file changed.
EDITING = ("edit_rebuilds", "edit_push")
# What the check appends to the file it changes: a comment in most files a lesson has.
EDIT_MARK = "\n# changed by the studio's check\n"


@dataclass
class StepFacts:
    number: int
    instruction: str
    line: int | None
    status: str
    reason: str = ""  # why it was rebuilt, as the engine says it


@dataclass
class BuildFacts:
    """What the checks need to know of one finished build of a student's copy."""

    number: int
    status: str  # succeeded | failed | cancelled
    steps: list[StepFacts] = field(default_factory=list)
    image_size: int | None = None
    image_layers: int | None = None
    # The files whose content or mode differ from the previous successful build's revision
    # (None when there was none), and that build's number.
    changed: set[str] | None = None
    previous: int | None = None
    # Every path in the final image (no leading "/"), read only when a check asks for it.
    image_paths: Callable[[], set[str]] | None = None
    # For edit_rebuilds: per changed file, the steps of the build of a copy with that file
    # changed; None when the context has no such file, a string when that build failed. The
    # whole mapping is None when the check made no builds of its own.
    edits: dict[str, list[StepFacts] | str | None] | None = None
    # For edit_push: per changed file, the bytes a push of the edited image sends to a registry
    # holding the first image (None: no such file; a string: that build failed).
    pushes: dict[str, int | str | None] | None = None


@dataclass
class Result:
    status: str
    message: str
    build: int | None = None  # the build's number

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, "build": self.build}


# -- reading checks ------------------------------------------------------------------------


def clean_checks(raw: object) -> list[dict[str, Any]]:
    """The exercise's checks as the teacher sent them, checked: a list of objects with a `kind`
    and that kind's parameters. A bad one is refused, naming its place in the list."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise Rejected("checks must be a list of objects, each with a kind", field="checks")
    if len(raw) > MAX_CHECKS:
        raise Rejected(f"at most {MAX_CHECKS} checks are allowed", field="checks")
    return [_clean_one(i, check) for i, check in enumerate(raw, 1)]


def _clean_one(index: int, check: object) -> dict[str, Any]:
    where = f"check {index}"
    if not isinstance(check, dict) or check.get("kind") not in KINDS:
        kinds = ", ".join(KINDS)
        raise Rejected(f"{where}: kind must be one of {kinds}", field="checks", check=index)
    params = KINDS[check["kind"]]
    unknown = set(check) - set(params) - {"kind"}
    if unknown:
        raise Rejected(f"{where}: unknown field {sorted(unknown)[0]!r}", field="checks", check=index)
    out: dict[str, Any] = {"kind": check["kind"]}
    for name, (kind, description) in params.items():
        value = check.get(name)
        if kind is int and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise Rejected(
                f"{where}: {name} must be a whole number, {description}", field="checks", check=index
            )
        if kind is str and (not isinstance(value, str) or not value.strip() or len(value) > 1024):
            raise Rejected(f"{where}: {name} must be {description}", field="checks", check=index)
        out[name] = value.strip() if isinstance(value, str) else value
    if check["kind"] in EDITING or check["kind"] == "rebuild_after_change":
        out["file"] = out["file"].lstrip("/").removeprefix("./")
        if any(part in ("", ".", "..") for part in out["file"].split("/")):
            raise Rejected(
                f"{where}: file must be a file's path inside the build context, e.g. app.py",
                field="checks",
                check=index,
            )
    if check["kind"] in ("absent_path", "present_path"):
        out["path"] = "/" + out["path"].strip("/")
    return out


def describe(check: dict[str, Any]) -> str:
    """The check as the class reads it."""
    kind = check["kind"]
    if kind == "rebuild_after_change":
        return f"After changing {check['file']}, at most {_steps(check['max_steps'])} rebuild"
    if kind == "image_size":
        return f"The image is under {check['max_mb']} MB"
    if kind == "layers":
        return f"The image has no more than {check['max']} layers"
    if kind == "present_path":
        return f"The final image holds {check['path']}"
    if kind == "edit_rebuilds":
        return f"When the check changes {check['file']}, at most {_steps(check['max_steps'])} rebuild"
    if kind == "edit_push":
        return f"When the check changes {check['file']}, a push sends at most {check['max_kb']} KB"
    return f"The final image contains no {check['path']}"


def needs_run(checks: list[dict[str, Any]]) -> bool:
    """Whether the checks need builds of their own (studio/classrooms/checkrun.py)."""
    return any(check["kind"] in EDITING for check in checks)


def edited_files(checks: list[dict[str, Any]]) -> list[str]:
    return sorted({check["file"] for check in checks if check["kind"] in EDITING})


# -- judging a build -------------------------------------------------------------------------


def evaluate(check: dict[str, Any], build: BuildFacts) -> Result:
    judge = {
        "rebuild_after_change": _rebuild_after_change,
        "image_size": _image_size,
        "layers": _layers,
        "absent_path": _absent_path,
        "present_path": _present_path,
        "edit_rebuilds": _edit_rebuilds,
        "edit_push": _edit_push,
    }[check["kind"]]
    return judge(check, build)


def merge(
    earlier: list[dict[str, Any]], checks: list[dict[str, Any]], build: BuildFacts
) -> list[dict[str, Any]]:
    """The results after `build`: each check's new verdict, or its earlier one where this build
    could not tell."""
    merged = []
    for i, check in enumerate(checks):
        result = evaluate(check, build).to_json()
        before = earlier[i] if i < len(earlier) else None
        if result["status"] == NOT_YET and before and before.get("status") in (PASS, FAIL):
            result = before
        merged.append({"check": describe(check), **result})
    return merged


NOT_CHECKED, FAILED, PASSED, PARTLY = "not_yet", "failed", "passed", "partly"


def state(results: list[dict[str, Any]]) -> str:
    """Where a copy stands, in one word: not_yet (nothing built or checked yet, or no checks),
    failed (a check fails), passed (all pass), partly (some pass, the rest not yet)."""
    statuses = {r.get("status") for r in results}
    if not results or statuses == {NOT_YET}:
        return NOT_CHECKED
    if FAIL in statuses:
        return FAILED
    return PASSED if statuses == {PASS} else PARTLY


def initial(
    checks: list[dict[str, Any]], message: str = "Not yet: build your copy first."
) -> list[dict[str, Any]]:
    """The results before any build."""
    return [
        {
            "check": describe(check),
            "status": NOT_YET,
            "message": message,
            "build": None,
        }
        for check in checks
    ]


def _rebuild_after_change(check: dict[str, Any], build: BuildFacts) -> Result:
    target, allowed = check["file"], check["max_steps"]
    if build.status != "succeeded":
        return Result(NOT_YET, f"Not yet: build #{build.number} did not succeed.", build.number)
    if build.changed is None or build.previous is None:
        return Result(
            NOT_YET, f"Not yet: now change only {target} and build again to see what rebuilds.", build.number
        )
    if build.changed != {target}:
        changed = _names(build.changed) if build.changed else "nothing"
        return Result(
            NOT_YET,
            f"Not yet: build #{build.number} changed {changed} since build #{build.previous}; "
            f"change only {target} and build again.",
            build.number,
        )
    rebuilt = [s for s in build.steps if s.status == "built"]
    said = f"Build #{build.number} changed only {target} since build #{build.previous}"
    if len(rebuilt) <= allowed:
        return Result(
            PASS, f"{said}, and {_steps(len(rebuilt))} rebuilt (at most {allowed} allowed).", build.number
        )
    which = "; ".join(f"{s.instruction} (line {s.line})" if s.line else s.instruction for s in rebuilt)
    return Result(
        FAIL,
        f"{said}, but {_steps(len(rebuilt))} rebuilt (at most {allowed} allowed): {which}. "
        "Copy what changes often as late as you can.",
        build.number,
    )


def _image_size(check: dict[str, Any], build: BuildFacts) -> Result:
    if build.status != "succeeded" or build.image_size is None:
        return Result(NOT_YET, f"Not yet: build #{build.number} made no image.", build.number)
    size, limit = build.image_size, check["max_mb"]
    shown = f"{size / MB:.1f} MB"
    if size < limit * MB:
        return Result(PASS, f"Build #{build.number}'s image is {shown}, under {limit} MB.", build.number)
    return Result(
        FAIL, f"Build #{build.number}'s image is {shown}, over the {limit} MB allowed.", build.number
    )


def _layers(check: dict[str, Any], build: BuildFacts) -> Result:
    if build.status != "succeeded" or build.image_layers is None:
        return Result(NOT_YET, f"Not yet: build #{build.number} made no image.", build.number)
    count, limit = build.image_layers, check["max"]
    said = f"Build #{build.number}'s image has {count} layer{'s' if count != 1 else ''}"
    if count <= limit:
        return Result(PASS, f"{said} (at most {limit} allowed).", build.number)
    return Result(
        FAIL, f"{said}, more than the {limit} allowed: join RUN steps that belong together.", build.number
    )


def _absent_path(check: dict[str, Any], build: BuildFacts) -> Result:
    if build.status != "succeeded" or build.image_paths is None:
        return Result(NOT_YET, f"Not yet: build #{build.number} made no image.", build.number)
    wanted = check["path"]
    found = matching(build.image_paths(), wanted)
    if not found:
        return Result(PASS, f"Build #{build.number}'s image holds no {wanted}.", build.number)
    first = "/" + found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return Result(
        FAIL,
        f"Build #{build.number}'s image still holds {first}{more}: the final image must not hold it "
        "(leave it out of the context, remove it in the step that made it, or keep it in an earlier "
        "stage).",
        build.number,
    )


def _present_path(check: dict[str, Any], build: BuildFacts) -> Result:
    if build.status != "succeeded" or build.image_paths is None:
        return Result(NOT_YET, f"Not yet: build #{build.number} made no image.", build.number)
    wanted = check["path"]
    if matching(build.image_paths(), wanted):
        return Result(PASS, f"Build #{build.number}'s image holds {wanted}.", build.number)
    return Result(
        FAIL,
        f"Build #{build.number}'s image has no {wanted}: the image must still do its job, "
        "so keep the step that makes it.",
        build.number,
    )


def _edit_rebuilds(check: dict[str, Any], build: BuildFacts) -> Result:
    target, allowed = check["file"], check["max_steps"]
    if build.status != "succeeded":
        return Result(NOT_YET, f"Not yet: build #{build.number} did not succeed.", build.number)
    if build.edits is None:
        return Result(NOT_YET, "Not yet: the check runs after your next successful build.", build.number)
    steps = build.edits.get(target)
    said = f"With {target} changed in a copy of build #{build.number}'s files"
    if steps is None:
        return Result(
            FAIL, f"Build #{build.number}'s context has no {target}; the check changes it.", build.number
        )
    if isinstance(steps, str):
        return Result(FAIL, f"{said}, the build failed: {steps}", build.number)
    rebuilt = [s for s in steps if s.status == "built"]
    if len(rebuilt) <= allowed:
        return Result(
            PASS, f"{said}, {_steps(len(rebuilt))} rebuilt (at most {allowed} allowed).", build.number
        )
    which = "; ".join(
        f"line {s.line}: {s.instruction}" + (f" ({s.reason})" if s.reason else "") for s in rebuilt
    )
    return Result(
        FAIL, f"{said}, {_steps(len(rebuilt))} rebuilt (at most {allowed} allowed). {which}", build.number
    )


def _edit_push(check: dict[str, Any], build: BuildFacts) -> Result:
    target, allowed = check["file"], check["max_kb"]
    if build.status != "succeeded":
        return Result(NOT_YET, f"Not yet: build #{build.number} did not succeed.", build.number)
    if build.pushes is None:
        return Result(NOT_YET, "Not yet: the check runs after your next successful build.", build.number)
    sent = build.pushes.get(target)
    said = f"With {target} changed in a copy of build #{build.number}'s files"
    if sent is None:
        return Result(
            FAIL, f"Build #{build.number}'s context has no {target}; the check changes it.", build.number
        )
    if isinstance(sent, str):
        return Result(FAIL, f"{said}, the build failed: {sent}", build.number)
    shown = f"{sent / 1000:.1f} KB"
    if sent <= allowed * 1000:
        return Result(PASS, f"{said}, a push sends {shown} (at most {allowed} KB allowed).", build.number)
    return Result(
        FAIL,
        f"{said}, a push sends {shown}, more than the {allowed} KB allowed: every layer the change "
        "touches is sent whole, so keep what changes often in a small layer on top.",
        build.number,
    )


def matching(paths: set[str], wanted: str) -> list[str]:
    """The image's paths that are `wanted` (a path, a directory, or a pattern with * ? [])."""
    pattern = wanted.strip("/")
    if any(c in pattern for c in "*?["):
        return sorted(p for p in paths if fnmatch.fnmatchcase(p, pattern))
    return sorted(p for p in paths if p == pattern or p.startswith(pattern + "/"))


def _steps(n: int) -> str:
    return f"{n} step{'s' if n != 1 else ''}"


def _names(files: set[str]) -> str:
    shown = sorted(files)
    if len(shown) > 3:
        return ", ".join(shown[:3]) + f" and {len(shown) - 3} more files"
    return " and ".join([", ".join(shown[:-1]), shown[-1]]) if len(shown) > 1 else shown[0]
