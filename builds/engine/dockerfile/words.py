"""BuildKit's shell lexer: how a word's variables are expanded and its quotes removed."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ..errors import DockerfileError
from .helpers import go_quote
from .model import Instruction


class LexError(Exception):
    pass


# -- bounds ----------------------------------------------------------------------------------------
# `ARG A=$A$A` forty times doubles a value forty times: every variable's text a word takes in is
# charged, and the expansion stops as soon as one word, or one instruction's words together, take
# in more than their share, before the text is built.
DEFAULT_WORD_BYTES = 128 << 10
INSTRUCTION_SHARES = 8  # one instruction's words may take in this many words' worth together


@dataclass
class Budget:
    word: int  # the variable text one word may take in
    left: int  # what the current instruction's words may still take in, together


_budget: ContextVar[Budget | None] = ContextVar("expansion_budget", default=None)


@contextlib.contextmanager
def expansion_budget(word_bytes: int) -> Iterator[Budget]:
    """Bound the expansions made inside the block (one instruction's): each word to `word_bytes`
    of variable text, all of them to INSTRUCTION_SHARES times that."""
    budget = Budget(word_bytes, word_bytes * INSTRUCTION_SHARES)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


class ExpansionTooLarge(LexError):
    pass


def _limit_message(limit: int, what: str) -> str:
    shown = f"{limit >> 10} KiB" if limit >= 1 << 10 else f"{limit} bytes"
    return (f"{what} expands to more than {shown} (the limit STUDIO_BUILD_WORD_KB sets): "
            "a variable that doubles itself, or too many copies of a long one")


def is_space(ch: str) -> bool:
    # Go's unicode.IsSpace: Python's isspace() also counts the ASCII separators 0x1c-0x1f.
    return ch.isspace() and ch not in "\x1c\x1d\x1e\x1f"


# Runs of what is_space calls a space: Python's \\s less the ASCII separators 0x1c-0x1f.
_SPACE_RUN = re.compile(r"[^\S\x1c\x1d\x1e\x1f]+")


def _is_name_char(ch: str) -> bool:
    return ch.isalpha() or ch.isdecimal() or ch == "_"


_SPECIAL_PARAMS = "@*#?-$!0"


class _Words:
    """Splits what the lexer produces into words: text from variables splits on whitespace,
    quoted and escaped text never does."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.buf = ""
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if is_space(ch):
            if self.in_word and self.buf:
                self.words.append(self.buf)
                self.buf, self.in_word = "", False
        else:
            self.add_raw(ch)

    def add_text(self, text: str) -> None:
        # A run at a time rather than a character at a time: a value can be 128 KiB.
        start = 0
        for gap in _SPACE_RUN.finditer(text):
            if gap.start() > start:
                self.add_raw(text[start:gap.start()])
            self.add_char(" ")
            start = gap.end()
        if start < len(text):
            self.add_raw(text[start:])

    def add_raw(self, text: str) -> None:
        # An empty quoted string marks a word as started without giving it any text: `""` alone
        # yields no word (BuildKit's quirk, kept).
        self.buf += text
        self.in_word = True

    def result(self) -> list[str]:
        if self.buf:
            self.words.append(self.buf)
            self.buf, self.in_word = "", False
        return self.words


class Lexer:
    """One pass over one word. The raw_* and skip_unset modes are the ones BuildKit's parser
    uses to find heredoc delimiters: keep quotes, keep escapes, leave unset variables alone."""

    def __init__(self, text: str, env: Mapping[str, str], escape: str = "\\", *, raw_quotes: bool = False,
                 raw_escapes: bool = False, skip_unset: bool = False) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset = skip_unset
        self.budget = _budget.get()
        self.left = self.budget.word if self.budget is not None else DEFAULT_WORD_BYTES

    def charge(self, size: int) -> None:
        """Count `size` characters of variable text into this word (and the instruction)."""
        self.left -= size
        if self.left < 0:
            word = self.budget.word if self.budget is not None else DEFAULT_WORD_BYTES
            raise ExpansionTooLarge(_limit_message(word, "a word"))
        if self.budget is not None:
            self.budget.left -= size
            if self.budget.left < 0:
                raise ExpansionTooLarge(_limit_message(self.budget.word * INSTRUCTION_SHARES,
                                                       "the instruction"))

    def peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def next(self) -> str | None:
        ch = self.peek()
        if ch is not None:
            self.pos += 1
        return ch

    def run(self) -> tuple[str, list[str]]:
        return self.until(None, self.raw_escapes)

    def until(self, stop: str | None, raw_escapes: bool) -> tuple[str, list[str]]:
        """Process up to the `stop` character (consumed) or the end of the text."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._until(stop)
        finally:
            self.raw_escapes = saved

    def _until(self, stop: str | None) -> tuple[str, list[str]]:
        out: list[str] = []
        words = _Words()
        special: dict[str, Callable[[], str]] = {
            "$": self.dollar, "<": self.maybe_heredoc, "'": self.single_quoted, '"': self.double_quoted,
        }
        while (ch := self.peek()) is not None:
            if ch == stop:
                self.pos += 1
                return "".join(out), words.result()
            if ch in special:
                text = special[ch]()
                out.append(text)
                # Only a variable's value is split into words; quoted text stays one piece.
                (words.add_text if ch == "$" else words.add_raw)(text)
                continue
            self.pos += 1
            if ch == self.escape:
                if self.raw_escapes:
                    words.add_raw(ch)
                    out.append(ch)
                escaped = self.next()
                if escaped is None:
                    break  # a lone escape at the end is dropped
                words.add_raw(escaped)
                out.append(escaped)
            else:
                words.add_char(ch)
                out.append(ch)
        if stop is not None:
            raise LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), words.result()

    def single_quoted(self) -> str:
        opening = self.next() or ""
        out = [opening] if self.raw_quotes else []
        while True:
            ch = self.next()
            if ch is None:
                raise LexError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quoted(self) -> str:
        opening = self.next() or ""
        out = [opening] if self.raw_quotes else []
        while True:
            ch = self.peek()
            if ch is None:
                raise LexError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.pos += 1
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.pos += 1
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                following = self.peek()
                if following is None:
                    continue  # then the missing quote is reported
                # Inside double quotes the escape only escapes ", $ and itself.
                if following in ('"', "$", self.escape):
                    ch = following
                    self.pos += 1
            out.append(ch)

    def maybe_heredoc(self) -> str:
        # `<<` and any blanks after it stay glued to the delimiter word, so `<< EOF` is one word.
        self.pos += 1
        if self.peek() != "<":
            return "<"
        self.pos += 1
        start = self.pos
        while self.peek() in ("\t", "\r", " "):
            self.pos += 1
        return "<<" + self.text[start:self.pos]

    def name(self) -> str:
        ch = self.peek()
        if ch is None:
            return ""
        if ch.isdecimal():  # positional parameters: all the digits
            start = self.pos
            while (ch := self.peek()) is not None and ch.isdecimal():
                self.pos += 1
            return self.text[start:self.pos]
        if ch in _SPECIAL_PARAMS:
            self.pos += 1
            return ch
        start = self.pos
        while (ch := self.peek()) is not None and _is_name_char(ch):
            self.pos += 1
        return self.text[start:self.pos]

    def lookup(self, name: str) -> tuple[str, bool]:
        value = self.env.get(name)
        if value is None:
            return "", False
        self.charge(len(value))
        return value, True

    def dollar(self) -> str:
        self.pos += 1  # the $
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value, found = self.lookup(name)
            return "$" + name if not found and self.skip_unset else value
        self.pos += 1  # the {
        ch = self.peek()
        if ch is None:
            raise LexError("syntax error: missing '}'")
        if ch in "{}:":
            raise LexError("syntax error: bad substitution")
        name = self.name()
        op = self.next()
        if op == "}":
            value, found = self.lookup(name)
            return "${" + name + "}" if not found and self.skip_unset else value
        if op == "/":
            return self.replace(name)
        if op is None:
            raise LexError("syntax error: missing '}'")
        return self.modifier(name, op)

    def modifier(self, name: str, op: str) -> str:
        """${name:-word} and its relatives; `op` is the character after the name."""
        null_is_unset = op == ":"
        spelled = op
        if null_is_unset:
            op = self.next() or ""
            spelled += op
        trims = op in ("#", "%")
        if null_is_unset and trims:
            raise LexError(f"unsupported modifier ({spelled}) in substitution")
        word = self.until_brace(raw_escapes=trims)
        value, found = self.lookup(name)
        if self.skip_unset and not found:
            return "${" + name + spelled + word + "}"
        empty = not found or (null_is_unset and value == "")
        if op == "-":
            return word if empty else value
        if op == "+":
            return "" if empty else word
        if op == "?":
            if not found:
                raise LexError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise LexError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if trims:
            greedy = word.startswith(op)
            pattern = word[1:] if greedy else word
            try:
                trim = _trim_suffix if op == "%" else _trim_prefix
                return trim(pattern, value, greedy)
            except UnicodeEncodeError:
                raise LexError(f"{name}: a value that is not UTF-8 text cannot be matched") from None
        raise LexError(f"unsupported modifier ({spelled}) in substitution")

    def until_brace(self, *, raw_escapes: bool, stop: str = "}") -> str:
        try:
            word, _ = self.until(stop, raw_escapes)
        except LexError:
            if self.peek() is None:
                raise LexError("syntax error: missing '/' in ${}" if stop == "/"
                                else "syntax error: missing '}'") from None
            raise
        return word

    def replace(self, name: str) -> str:
        """${name/pattern/replacement} (first match) and ${name//pattern/replacement} (all)."""
        every = self.peek() == "/"
        if every:
            self.pos += 1
        pattern = self.until_brace(raw_escapes=True, stop="/")
        replacement = self.until_brace(raw_escapes=True)
        value, found = self.lookup(name)
        if self.skip_unset and not found:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        try:
            replaced = _go_replace(regex, value, replacement, every=every, limit=self.left + len(value))
        except UnicodeEncodeError:
            raise LexError(f"{name}: a value that is not UTF-8 text cannot be matched") from None
        self.charge(max(0, len(replaced) - len(value)))
        return replaced


def _pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> Any:
    """A shell wildcard pattern (`*`, `?`, backslash escapes; no brackets) as a regex, compiled
    by RE2 as BuildKit's Go regexp is: matching takes time linear in the value, where Python's
    backtracking `re` takes minutes over `${A//*a*a*b/x}` and a long value."""
    out = ["^"] if anchored else []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*" if greedy else ".*?")
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            if i < len(pattern) and pattern[i] in "}/":
                continue  # escaped only to get past ${...}'s own syntax; the next char is literal
            escaped = pattern[i] if i < len(pattern) else ""
            i += 1
            if escaped not in ("*", "?", "\\") or not escaped:
                raise LexError(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{escaped}'")
            out.append("\\" + escaped)
        elif ch in "[]{}.+()|^$":
            out.append("\\" + ch)
        else:
            out.append(ch)
    import re2  # google-re2; only substitutions with patterns need it

    return re2.compile("".join(out).encode("utf-8"))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    src = value.encode("utf-8")
    match = _pattern_regex(pattern, greedy=greedy, anchored=True).search(src)
    return src[match.end():].decode("utf-8") if match else value


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # A regex finds the leftmost match, not the shortest rightmost one: reverse both sides.
    units: list[str] = []
    i = 0
    while i < len(pattern):
        step = 2 if pattern[i] == "\\" and i + 1 < len(pattern) else 1
        units.append(pattern[i:i + step])  # an escape stays in front of what it escapes
        i += step
    return _trim_prefix("".join(reversed(units)), value[::-1], greedy)[::-1]


def _rune_width(src: bytes, at: int) -> int:
    """The length of the UTF-8 character at `at` (1 at the end), as Go's DecodeRune steps."""
    if at >= len(src):
        return 1
    lead = src[at]
    return 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


def _go_replace(regex: Any, value: str, replacement: str, *, every: bool, limit: int) -> str:
    """${name/...} replaces the first match literally; ${name//...} is Go's ReplaceAllString:
    `$0` templates, and no empty match right after a previous match (re.sub differs on both).
    Works on the value's UTF-8 bytes, as Go does: RE2 then searches from a position in
    constant time instead of converting the whole value at every match."""
    src = value.encode("utf-8")
    if not every:
        first = regex.search(src)
        if first is None:
            return value
        return src[:first.start()].decode("utf-8") + replacement + src[first.end():].decode("utf-8")
    out: list[bytes] = []
    last_end = search = size = 0
    while search <= len(src):
        match = regex.search(src, search)
        if match is None:
            break
        out.append(src[last_end:match.start()])
        if match.end() > last_end or match.start() == 0:
            out.append(_go_template(replacement, match).encode("utf-8"))
            size += len(out[-1]) + match.start() - last_end
            if size > limit:  # `${A//?/$0$0$0}` multiplies a value: stop before it is built
                raise ExpansionTooLarge(_limit_message(limit, "a replacement"))
        last_end = match.end()
        width = _rune_width(src, search)
        search = search + width if match.end() < search + width else match.end()
    out.append(src[last_end:])
    return b"".join(out).decode("utf-8")


def _go_template(template: str, match: Any) -> str:
    def group(found: re.Match[str]) -> str:
        if found.group(0) == "$$":
            return "$"
        name = found.group(1) or found.group(2)
        # The patterns have no groups of their own.
        return bytes(match.group(0)).decode("utf-8") if name == "0" else ""

    return re.sub(r"\$\$|\$\{(\w+)\}|\$(\w+)", group, template)


def _lex(word: str, env: Mapping[str, str], escape: str) -> tuple[str, list[str]]:
    try:
        return Lexer(word, env, escape).run()
    except ExpansionTooLarge as exc:
        raise DockerfileError(str(exc)) from None
    except LexError as exc:
        raise DockerfileError(f"failed to process {go_quote(word)}: {exc}") from None


def expand(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """Expand $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:+alt}, ${VAR+alt},
    ${VAR:?msg} in one word as BuildKit's shell lexer does (quotes removed, escapes honoured).
    Unset variables expand to the empty string."""
    return _lex(word, env, escape)[0]


def expand_heredoc(text: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """The body of a COPY/ADD heredoc whose delimiter is unquoted, as BuildKit expands it:
    variables expanded and escapes processed, quotes kept (single-quoted text is not expanded)."""
    try:
        return Lexer(text, env, escape, raw_quotes=True).run()[0]
    except ExpansionTooLarge as exc:
        raise DockerfileError(str(exc)) from None
    except LexError as exc:
        raise DockerfileError(f"failed to expand the heredoc: {exc}") from None


def expand_words(text: str, env: Mapping[str, str], *, escape: str = "\\") -> list[str]:
    """Split `text` into words as BuildKit's ProcessWords does (quotes group words) and expand
    each: used for EXPOSE, VOLUME (shell form) and similar."""
    return _lex(text, env, escape)[1]


def parse_key_values(
    instruction: Instruction, env: Mapping[str, str], *, escape: str = "\\"
) -> list[tuple[str, str]]:
    """ENV / LABEL pairs (`K=V K2=V2` and the legacy `K V` form), each value expanded against
    `env` as it was before this instruction (BuildKit: `ENV A=1 B=$A` gives B the old A)."""
    args = instruction.args
    # The parser keeps quotes and escapes in both halves; BuildKit expands key and value alike.
    return [(expand(args[i], env, escape=escape), expand(args[i + 1], env, escape=escape))
            for i in range(0, len(args) - 1, 2)]


def parse_arg(
    instruction: Instruction, env: Mapping[str, str], *, escape: str = "\\"
) -> list[tuple[str, str | None]]:
    """ARG name[=default] ...: each (name, expanded default or None when no default given)."""
    pairs: list[tuple[str, str | None]] = []
    for word in instruction.args:
        name, sep, default = word.partition("=")
        pairs.append((expand(name, env, escape=escape), expand(default, env, escape=escape) if sep else None))
    return pairs

