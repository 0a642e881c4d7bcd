""".dockerignore rules, read as Docker reads them (moby/patternmatcher's ignorefile reader, then
its matcher), and applied as BuildKit's file sender (fsutil) applies it while walking: each
directory's per-pattern results are handed down to its children, an excluded directory is
still walked when an exception could re-include something below it, and such a directory is
part of the context only when something below it is.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
from dataclasses import dataclass

from ..errors import ContextError

GLOB_CHARS = "*?["


# -- Go's filepath.Match ---------------------------------------------------------------------------
class BadPattern(ValueError):
    """What Go calls filepath.ErrBadPattern (or a regexp that does not compile)."""


def _go_class_char(pattern: str, i: int) -> tuple[str, int]:
    """One character of a `[...]` class and the index after it (Go's getEsc)."""
    if i >= len(pattern) or pattern[i] in "-]":
        raise BadPattern("syntax error in pattern")
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise BadPattern("syntax error in pattern")
    if i + 1 >= len(pattern):
        raise BadPattern("syntax error in pattern")  # the class is never closed
    return pattern[i], i + 1


def _go_class(pattern: str, i: int) -> tuple[str, int]:
    """The class starting after `[` at `i` as a Python class, and the index after its `]`.
    Go negates with `^` only (`[!a]` is `!` or `a`) and needs at least one range."""
    negated = pattern.startswith("^", i)
    i += negated
    ranges: list[tuple[str, str]] = []
    while not (pattern.startswith("]", i) and ranges):
        lo, i = _go_class_char(pattern, i)
        hi = lo
        if pattern[i] == "-":
            hi, i = _go_class_char(pattern, i + 1)
        ranges.append((lo, hi))
    body = "".join(
        re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}" for lo, hi in ranges if lo <= hi
    )
    if not body:  # Go accepts a reversed range; it matches nothing
        return ("(?s:.)" if negated else "(?!)"), i + 1
    return f"[{'^' if negated else ''}{body}]", i + 1


def go_match_regex(pattern: str) -> str:
    """Go's filepath.Match as a Python expression (unanchored): `*` and `?` never match `/`,
    `\\` escapes, `[...]` is a class. BadPattern for what Go rejects, wherever it is."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i >= len(pattern):
                raise BadPattern("syntax error in pattern")
            out.append(re.escape(pattern[i]))
        elif c == "[":
            cls, i = _go_class(pattern, i + 1)
            out.append(cls)
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=256)
def go_glob(pattern: str) -> re.Pattern[str]:
    """One path segment's filepath.Match, compiled."""
    return re.compile(go_match_regex(pattern) + r"\Z", re.DOTALL)


def has_wildcards(segment: str) -> bool:
    """BuildKit's check: an unescaped `*`, `?` or `[` makes a source a pattern."""
    i = 0
    while i < len(segment):
        if segment[i] == "\\":
            i += 2
            continue
        if segment[i] in GLOB_CHARS:
            return True
        i += 1
    return False


# -- .dockerignore ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool  # a `!` line: re-includes what it matches
    regex: re.Pattern[str]
    # How patternmatcher compares: "exact", "prefix" (a trailing **), "suffix" (a leading **)
    # or "regexp"; the first three are plain string tests there, so they are here.
    kind: str = "regexp"
    line: int = 0  # in the ignore file

    def matches(self, path: str) -> bool:
        kind = self.kind
        if kind == "exact":
            return path == self.text
        if kind == "prefix":
            return path.startswith(self.text[:-2])
        if kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        return self.regex.match(path) is not None


# Go's unicode.IsSpace, which strings.TrimSpace uses (str.strip would also take \x1c-\x1f).
_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)


def go_clean(path: str) -> str:
    """Go's filepath.Clean: posixpath.normpath, except that "//x" becomes "/x"."""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def read_dockerignore(text: str) -> list[tuple[int, str]]:
    """The ignorefile reader: (line number, pattern) with a first-line BOM dropped, lines that
    *start* with `#` skipped (an indented `#` is a pattern), whitespace trimmed, each pattern
    cleaned, and a leading `/` dropped, `!` kept in front."""
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        if raw.startswith("#"):
            continue
        pattern = raw.strip(_GO_SPACE)
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip(_GO_SPACE)
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append((number, "!" + pattern if invert else pattern))
    return out


_RE2_QUOTED = frozenset(".+()|{}$")


def docker_regex(pattern: str) -> tuple[str, str]:
    """patternmatcher's compile step: the kind of comparison and the RE2 expression it builds.
    `**` spans directories, `*` and `?` stay in one, `[...]` and escapes pass through."""
    out = ["^"]
    kind = "exact"
    pos, n = 0, len(pattern)
    first = True
    while pos < n:
        ch = pattern[pos]
        pos += 1
        if ch == "*" and pattern.startswith("*", pos):
            pos += 1
            if pattern.startswith("/", pos):
                pos += 1  # "**/" is "**"
            if pos == n:
                if kind == "exact":
                    kind = "prefix"
                else:
                    out.append(".*")
                    kind = "regexp"
            else:
                out.append("(.*/)?")
                kind = "regexp"
            if first:
                kind = "suffix"
        elif ch == "*":
            out.append("[^/]*")
            kind = "regexp"
        elif ch == "?":
            out.append("[^/]")
            kind = "regexp"
        elif ch in _RE2_QUOTED:
            out.append("\\" + ch)
        elif ch == "\\":
            if pos < n:
                out.append("\\" + pattern[pos])
                pos += 1
                kind = "regexp"
            else:
                out.append("\\")
        elif ch in "[]":
            out.append(ch)
            kind = "regexp"
        else:
            out.append(ch)
        first = False
    if kind == "regexp":
        out.append("$")
    return kind, "".join(out)


# RE2's ASCII classes, for `[[:alpha:]]` and the like inside a class.
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~",
    "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z", "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}  # fmt: skip
_SAME_ESCAPES = frozenset("afnrtvdDsSwW")  # mean the same in RE2 and in Python with re.ASCII
_OUTSIDE_CLASS_ESCAPES = {"b": "\\b", "B": "\\B", "A": "\\A", "z": "\\Z"}


def _re2_escape(c: str, in_class: bool) -> str:
    if c.isascii() and not c.isalnum():
        return re.escape(c)
    if c in _SAME_ESCAPES:
        return "\\" + c
    if not in_class and c in _OUTSIDE_CLASS_ESCAPES:
        return _OUTSIDE_CLASS_ESCAPES[c]
    raise BadPattern(f"escape \\{c} is not supported")


def re2_to_python(expr: str) -> re.Pattern[str]:
    """Compile an RE2 expression of the shape docker_regex builds with Python's re, keeping
    RE2's meaning: `$` is the end of the text, `[` inside a class is literal, POSIX classes."""
    out: list[str] = []
    i, n = 0, len(expr)
    in_class = class_start = False
    while i < n:
        ch = expr[i]
        if ch == "\\":
            if i + 1 >= n:
                raise BadPattern("trailing backslash")
            out.append(_re2_escape(expr[i + 1], in_class))
            class_start = False
            i += 2
            continue
        if in_class:
            if ch == "]":
                out.append("\\]" if class_start else "]")
                in_class = class_start
            elif expr.startswith("[:", i) and (end := expr.find(":]", i + 2)) != -1:
                body = _POSIX_CLASSES.get(expr[i + 2 : end])
                if body is None:
                    raise BadPattern(f"invalid character class {expr[i : end + 2]}")
                out.append(body)
                i = end + 1
            else:
                out.append("\\" + ch if ch in "[&~|" else ch)  # Python reads these as set operations
            class_start = False
        elif ch == "[":
            in_class = class_start = True
            out.append("[")
            if expr.startswith("^", i + 1):
                out.append("^")
                i += 1
        else:
            out.append("\\Z" if ch == "$" else ch)
        i += 1
    if in_class:
        raise BadPattern("missing closing ]")
    try:
        return re.compile("".join(out), re.ASCII)
    except re.error as exc:
        raise BadPattern(str(exc)) from None


def compile_pattern(text: str, line: int = 0) -> Pattern:
    """One pattern as patternmatcher.New takes it (`!` in front for an exception)."""
    text = go_clean(text.strip(_GO_SPACE))
    exclusion = text.startswith("!")
    if exclusion:
        if len(text) == 1:
            raise BadPattern('illegal exclusion pattern: "!"')
        text = text[1:]
    go_match_regex(text)  # Docker checks the syntax with filepath.Match first
    kind, expr = docker_regex(text)
    if kind == "regexp":
        regex = re2_to_python(expr)
    elif kind == "exact":
        regex = re.compile(re.escape(text) + r"\Z", re.DOTALL)
    elif kind == "prefix":
        regex = re.compile(re.escape(text[:-2]), re.DOTALL)
    else:
        suffix = text[2:]
        alone = f"|{re.escape(suffix[1:])}\\Z" if suffix.startswith("/") else ""
        regex = re.compile(f"(?:.*{re.escape(suffix)}\\Z{alone})", re.DOTALL)
    return Pattern(text, exclusion, regex, kind, line)


def parse_dockerignore(text: str, *, file: str = ".dockerignore") -> list[Pattern]:
    """The patterns of an ignore file, in order. ContextError (naming the line) for a pattern
    Docker would refuse, since Docker fails such a build too."""
    patterns: list[Pattern] = []
    for line, raw in read_dockerignore(text):
        try:
            patterns.append(compile_pattern(raw, line))
        except BadPattern as exc:
            raise ContextError(f"invalid pattern {raw!r}: {exc}", file=file, line=line) from None
    return patterns


MatchInfo = tuple[bool, ...]
Listing = dict[str, tuple[os.DirEntry[str], bool]]  # name -> (its entry, excluded by .dockerignore)


def match_path(patterns: list[Pattern], path: str, parent: MatchInfo | None = None) -> tuple[bool, MatchInfo]:
    """Whether `path` is excluded, and each pattern's result to hand to its children
    (patternmatcher's MatchesUsingParentResults). A pattern that matched the parent directory
    matches the child; otherwise it is tried on the child's path, skipped when it could not
    change the outcome so far. Without `parent`, the path's parent directories are tried."""
    matched = False
    info: list[bool] = []
    for i, pattern in enumerate(patterns):
        hit = parent[i] if parent else False
        if not hit:
            if pattern.exclusion != matched:
                info.append(False)
                continue
            hit = pattern.matches(path)
            if not hit and not parent and "/" in path:
                parts = posixpath.dirname(path).split("/")
                hit = any(pattern.matches("/".join(parts[: k + 1])) for k in range(len(parts)))
        info.append(hit)
        if hit:
            matched = not pattern.exclusion
    return matched, tuple(info)


def any_pattern(patterns: list[Pattern]) -> re.Pattern[str] | None:
    """One expression that matches where any pattern does: when a path inherits no match from
    its parent and this does not match, no pattern can exclude it, found in one call."""
    if not patterns:
        return None
    parts = []
    for pattern in patterns:
        flags = ("a" if pattern.regex.flags & re.ASCII else "") + (
            "s" if pattern.regex.flags & re.DOTALL else ""
        )
        parts.append(f"(?{flags}:{pattern.regex.pattern})" if flags else f"(?:{pattern.regex.pattern})")
    return re.compile("|".join(parts))


def reinclude_stems(patterns: list[Pattern]) -> tuple[str, ...] | None:
    """fsutil walks into an excluded directory only when an exception might match below it.
    None: some exception is a real pattern, so any directory might hold a match; otherwise the
    literal exceptions' paths (trailing /** or /* dropped), each with a "/" after it."""
    stems = []
    for pattern in patterns:
        if not pattern.exclusion:
            continue
        stem = pattern.text.removesuffix("/**").removesuffix("/*")
        if any(c in stem for c in "*[]?^\\"):
            return None
        stems.append(stem + "/")
    return tuple(stems)

