"""The checks BuildKit's instructions package makes on each instruction, with its messages."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .flags import FLAGS, parse_flags, unchecked_flags
from .helpers import Invalid, go_quote, suggest
from .heredocs import heredoc_word


@dataclass(frozen=True)
class Command:
    """One instruction as the package reported it, normalised for checking."""

    keyword: str  # upper-case
    written: str  # the keyword as written, for "unknown instruction"
    args: tuple[str, ...]
    flags: tuple[str, ...]
    json_form: bool
    sub: str | None  # ONBUILD's trigger keyword


def _exactly_one(cmd: Command) -> None:
    if len(cmd.args) != 1:
        raise Invalid(f"{cmd.keyword} requires exactly one argument")


def _at_least_one(cmd: Command) -> None:
    if not cmd.args:
        raise Invalid(f"{cmd.keyword} requires at least one argument")


def _declared_flags(cmd: Command) -> dict[str, tuple[str, ...]]:
    return parse_flags(cmd.flags, FLAGS.get(cmd.keyword, {}))


def _check_key_values(cmd: Command) -> dict[str, tuple[str, ...]]:  # ENV, LABEL
    flags = _declared_flags(cmd)
    _at_least_one(cmd)
    if any(key == "" for key in cmd.args[::2]):
        raise Invalid(f"{cmd.keyword} names can not be blank")
    return flags


def _check_one_word(cmd: Command) -> dict[str, tuple[str, ...]]:  # MAINTAINER, WORKDIR, USER
    _exactly_one(cmd)
    return _declared_flags(cmd)


def _check_stopsignal(cmd: Command) -> dict[str, tuple[str, ...]]:
    _exactly_one(cmd)
    return unchecked_flags(cmd.flags)


def _check_arg(cmd: Command) -> dict[str, tuple[str, ...]]:
    _at_least_one(cmd)
    if any(word.startswith("=") for word in cmd.args):
        raise Invalid("ARG names can not be blank")
    return unchecked_flags(cmd.flags)


def _check_listed(cmd: Command) -> dict[str, tuple[str, ...]]:  # EXPOSE, VOLUME
    _at_least_one(cmd)
    flags = _declared_flags(cmd)
    if cmd.keyword == "VOLUME" and any(not word.strip() for word in cmd.args):
        raise Invalid("VOLUME specified can not be an empty string")
    return flags


def _check_copy(cmd: Command) -> dict[str, tuple[str, ...]]:  # COPY, ADD
    if len(cmd.args) < 2:
        raise Invalid(f"{cmd.keyword} requires at least two arguments, but only one was provided. "
                       "Destination could not be determined")
    flags = _declared_flags(cmd)
    if heredoc_word(cmd.args[-1]) is not None:
        raise Invalid(f"{cmd.keyword} cannot accept a heredoc as a destination")
    return flags


def _check_run(cmd: Command) -> dict[str, tuple[str, ...]]:
    flags = _declared_flags(cmd)
    network = flags.get("network", ("default",))[-1]
    if network not in ("default", "none", "host"):
        raise Invalid(f"invalid network mode {go_quote(network)}")
    security = flags.get("security", ("sandbox",))[-1]
    if security not in ("sandbox", "insecure"):
        raise Invalid(f"security {go_quote(security)} is not valid")
    return flags


def _check_shell(cmd: Command) -> dict[str, tuple[str, ...]]:
    flags = _declared_flags(cmd)
    _at_least_one(cmd)
    if not cmd.json_form:
        raise Invalid("SHELL requires the arguments to be in JSON form")
    return flags


def _check_onbuild(cmd: Command) -> dict[str, tuple[str, ...]]:
    if cmd.sub is None:
        raise Invalid("ONBUILD requires at least one argument")
    flags = _declared_flags(cmd)
    trigger = cmd.sub.upper()
    if trigger == "ONBUILD":
        raise Invalid("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise Invalid(f"{trigger} isn't allowed as an ONBUILD trigger")
    return flags


_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*")


def stage_name(args: Sequence[str]) -> str | None:
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.fullmatch(name):
            raise Invalid(f"invalid name for build stage: {go_quote(args[2])}, "
                           "name can't start with a number or contain symbols")
        return name
    if len(args) != 1:
        raise Invalid("FROM requires either one or three arguments")
    return None


def _check_from(cmd: Command) -> dict[str, tuple[str, ...]]:
    stage_name(cmd.args)
    return _declared_flags(cmd)


def _check_healthcheck(cmd: Command) -> dict[str, tuple[str, ...]]:
    _at_least_one(cmd)
    kind = cmd.args[0].upper()
    if kind == "NONE":
        if len(cmd.args) > 1:
            raise Invalid("HEALTHCHECK NONE takes no arguments")
        return unchecked_flags(cmd.flags)
    flags = _declared_flags(cmd)
    if kind != "CMD":
        raise Invalid(f"Unknown type {go_quote(kind)} in HEALTHCHECK (try CMD)")
    if len(cmd.args) < 2:
        raise Invalid("Missing command after HEALTHCHECK CMD")
    for name in ("interval", "timeout", "start-period", "start-interval"):
        value = flags.get(name, ("",))[-1]
        duration = _duration_ns(value) if value else 0
        if duration != 0 and duration < 1_000_000:  # zero means "the default"
            raise Invalid(f"Interval {go_quote(name)} cannot be less than 1ms")
    retries = flags.get("retries", ("",))[-1]
    if retries:
        _check_retries(retries)
    return flags


_DURATION_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9,
                   "m": 60 * 10**9, "h": 3600 * 10**9}


def _duration_ns(text: str) -> float:
    """Go's time.ParseDuration, which BuildKit uses for HEALTHCHECK's intervals."""
    quoted = go_quote(text)
    rest = text[1:] if text[:1] in ("+", "-") else text
    sign = -1 if text.startswith("-") else 1
    if rest == "0":
        return 0
    if not rest:
        raise Invalid(f"time: invalid duration {quoted}")
    total = 0.0
    while rest:
        number = re.match(r"[0-9]*(\.[0-9]*)?", rest).group(0)  # type: ignore[union-attr]
        if number in ("", "."):
            raise Invalid(f"time: invalid duration {quoted}")
        rest = rest[len(number):]
        unit = re.match(r"[^0-9.]*", rest).group(0)  # type: ignore[union-attr]
        if not unit:
            raise Invalid(f"time: missing unit in duration {quoted}")
        if unit not in _DURATION_UNITS:
            raise Invalid(f"time: unknown unit {go_quote(unit)} in duration {quoted}")
        total += float(number) * _DURATION_UNITS[unit]
        rest = rest[len(unit):]
    return sign * total


def _check_retries(text: str) -> None:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise Invalid(f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax")
    retries = int(text)
    if not -(2**31) <= retries < 2**31:
        raise Invalid(f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    if retries < 0:
        raise Invalid(f"--retries cannot be negative ({retries})")


def check_unknown(cmd: Command) -> dict[str, tuple[str, ...]]:
    raise Invalid(suggest(f"unknown instruction: {cmd.written}", cmd.written, list(CHECKS),
                            case_sensitive=False))


CHECKS: dict[str, Callable[[Command], dict[str, tuple[str, ...]]]] = {
    "ADD": _check_copy, "ARG": _check_arg, "CMD": _declared_flags, "COPY": _check_copy,
    "ENTRYPOINT": _declared_flags, "ENV": _check_key_values, "EXPOSE": _check_listed,
    "FROM": _check_from, "HEALTHCHECK": _check_healthcheck, "LABEL": _check_key_values,
    "MAINTAINER": _check_one_word, "ONBUILD": _check_onbuild, "RUN": _check_run, "SHELL": _check_shell,
    "STOPSIGNAL": _check_stopsignal, "USER": _check_one_word, "VOLUME": _check_listed,
    "WORKDIR": _check_one_word,
}

