"""Instruction flags, checked as BuildKit declares them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .helpers import Invalid, suggest

# How BuildKit declares each instruction's flags: a bool may be given bare (`--link`), a string
# needs `=value` and may appear once, a list needs `=value` and may repeat.
_BOOL, _STRING, _LIST = "bool", "string", "list"
FLAGS: dict[str, dict[str, str]] = {
    "ADD": {"chown": _STRING, "chmod": _STRING, "link": _BOOL, "keep-git-dir": _BOOL,
            "checksum": _STRING, "exclude": _LIST},
    "COPY": {"chown": _STRING, "from": _STRING, "chmod": _STRING, "link": _BOOL, "exclude": _LIST,
             "parents": _BOOL},
    "FROM": {"platform": _STRING},
    "RUN": {"mount": _LIST, "network": _STRING, "security": _STRING},
    "HEALTHCHECK": {"interval": _STRING, "timeout": _STRING, "start-period": _STRING,
                    "start-interval": _STRING, "retries": _STRING},
}


def parse_flags(flags: Sequence[str], spec: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Check flags against an instruction's declared ones, as BuildKit's BFlags.Parse does."""
    values: dict[str, tuple[str, ...]] = {}
    for text in flags:
        spelled, has_value, value = text.partition("=")
        name = spelled[2:]
        kind = spec.get(name)
        if kind is None:
            raise Invalid(suggest(f"unknown flag: {spelled}", name, list(spec), case_sensitive=True))
        if name in values and kind != _LIST:
            raise Invalid(f"duplicate flag specified: {spelled}")
        if kind == _BOOL:
            value = _bool_flag(spelled, value, has_value=bool(has_value))
        elif not has_value:
            raise Invalid(f"missing a value on flag: {spelled}")
        values[name] = (*values.get(name, ()), value)
    return values


def _bool_flag(spelled: str, value: str, *, has_value: bool) -> str:
    if has_value and value == "":
        raise Invalid(f"missing a value on flag: {spelled}")
    if value.lower() in ("", "true"):
        return "true"
    if value.lower() == "false":
        return "false"
    raise Invalid(f"expecting boolean value for flag {spelled}, not: {value}")


def unchecked_flags(flags: Sequence[str]) -> dict[str, tuple[str, ...]]:
    # ARG, STOPSIGNAL and HEALTHCHECK NONE: BuildKit never looks at their flags.
    values: dict[str, tuple[str, ...]] = {}
    for text in flags:
        spelled, has_value, value = text.partition("=")
        values[spelled[2:]] = (*values.get(spelled[2:], ()), value if has_value else "true")
    return values

