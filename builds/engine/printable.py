"""Strings the events, the database and the channel layer all take."""

from __future__ import annotations

from typing import Any

__all__ = ["printable"]


def printable(value: Any) -> Any:
    """`value` with every string made valid UTF-8: a file name that is not (read from the
    filesystem as Python does, with its bytes as lone surrogates) gets `\\xNN` for each such
    byte, as Go's %q writes it. JSON, the database and the channel layer then all take it."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return value
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable(v) for v in value]
    return value
