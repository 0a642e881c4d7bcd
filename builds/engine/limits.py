"""The limits on a build, read from `STUDIO_BUILD_*` environment variables: one reader for the
command line (`manage.py build`, whose flags may override them) and the studio's settings (which
hand them to every web build). Imports no Django.

Defaults suit a classroom; each is justified where it is declared. A variable that is set but
cannot be used is refused with a message naming it, never silently replaced by the default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import InputError
from .sandbox import Limits


class LimitSettingError(InputError):
    """A STUDIO_BUILD_* variable (or the flag standing for it) has an unusable value."""


@dataclass(frozen=True)
class Setting:
    env: str  # the environment variable
    field: str  # the Limits field it sets
    default: int  # in `unit`s
    scale: int  # Limits' value = number * scale
    minimum: int
    unit: str
    flag: str | None = None  # the `manage.py build` flag that overrides it


SETTINGS: tuple[Setting, ...] = (
    # RUN, in the sandbox.
    Setting("STUDIO_BUILD_STEP_TIMEOUT_S", "timeout_s", 600, 1, 1, "s", "--timeout"),
    Setting("STUDIO_BUILD_MEMORY_MB", "memory_bytes", 1024, 1 << 20, 16, "MiB", "--memory"),
    Setting("STUDIO_BUILD_PIDS", "pids", 256, 1, 8, "", "--pids"),
    Setting("STUDIO_BUILD_OUTPUT_MB", "output_bytes", 8, 1 << 20, 1, "MiB", "--output-limit"),
    # A layer, whoever writes it: RUN, COPY, or ADD extracting an archive.
    Setting("STUDIO_BUILD_DISK_MB", "disk_bytes", 4096, 1 << 20, 1, "MiB", "--disk"),
    # 100,000 entries: a node_modules of a large web app has ~50,000; past this, a layer is
    # someone filling the disk's inodes rather than building an image.
    Setting("STUDIO_BUILD_FILES", "files", 100_000, 1, 1, "", "--files"),
    # What the build is given. The largest Dockerfiles in public projects are tens of KiB; 256 KiB
    # is ten times that and still parses in milliseconds.
    Setting("STUDIO_BUILD_DOCKERFILE_KB", "dockerfile_bytes", 256, 1 << 10, 1, "KiB", "--max-dockerfile"),
    # 500 instructions: overlayfs stacks at most ~128 layers (Docker refuses more than 125), so a
    # Dockerfile with more steps than this is no image anyone can run.
    Setting("STUDIO_BUILD_STEPS", "steps", 500, 1, 1, "", "--max-steps"),
    # 128 KiB: Linux's MAX_ARG_STRLEN, the longest single argument or environment string a RUN
    # could pass to a process anyway.
    Setting("STUDIO_BUILD_WORD_KB", "word_bytes", 128, 1 << 10, 1, "KiB", "--max-word"),
)


def _number(text: str, name: str, minimum: int) -> int:
    try:
        number = int(text.strip())
    except ValueError:
        raise LimitSettingError(f"{name}={text!r} is not a whole number") from None
    if number < minimum:
        raise LimitSettingError(f"{name}={number} is below its minimum of {minimum}")
    return number


def read_limits(environ: Mapping[str, str] = os.environ, overrides: Mapping[str, str | None] | None = None
                ) -> Limits:
    """The Limits the environment sets (an unset or empty variable keeps the default), with
    `overrides` (env name -> value, e.g. from command-line flags) taking precedence."""
    values: dict[str, float | int] = {}
    for setting in SETTINGS:
        given = (overrides or {}).get(setting.env)
        source = setting.flag if given is not None else setting.env
        text = given if given is not None else environ.get(setting.env, "").strip()
        number = _number(text, source or setting.env, setting.minimum) if text else setting.default
        value = number * setting.scale
        values[setting.field] = float(value) if setting.field == "timeout_s" else value
    return Limits(**values)  # type: ignore[arg-type]


def describe_size(size: int) -> str:
    """A byte count as a person reads it (binary units, as the settings give them)."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            amount = size / (1 << shift)
            return f"{amount:.0f} {unit}" if amount == int(amount) else f"{amount:.1f} {unit}"
    return f"{size} bytes"
