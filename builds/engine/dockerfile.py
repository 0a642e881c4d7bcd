"""Parse a Dockerfile into stages and instructions, and expand variables by BuildKit's rules.

The syntax (continuation lines, directives, comments, JSON and shell forms, heredocs) comes from
the `dockerfile` package, which wraps BuildKit's own parser (v0.12). It accepts anything that
looks like a line, so the checks BuildKit's `instructions` package makes afterwards (keywords,
arity, flags, stage names) are made here, with BuildKit's messages. The word expansion
(`expand`, `expand_words`) follows BuildKit's shell lexer (frontend/dockerfile/shell).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import dockerfile as _syntax

from .errors import DockerfileError


@dataclass(frozen=True)
class Heredoc:
    name: str  # the delimiter word, e.g. "EOF"
    content: str  # the body as written, with its trailing newline (tabs kept: see `body`)
    expand: bool  # False when the delimiter was quoted (<<"EOF"): no variable expansion
    chomp: bool  # True for <<-EOF (leading tabs to be stripped: `body`)
    fd: int = 0  # the file descriptor before <<, e.g. 3 for `3<<EOF`

    def body(self) -> str:
        """The content as BuildKit uses it for COPY and a lone `RUN <<EOF`: for <<- the leading
        tabs of every line are removed."""
        return re.sub(r"(?m)^\t+", "", self.content) if self.chomp else self.content


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-case: "RUN", "COPY", ...
    original: str  # as written, continuation lines joined (BuildKit's Node.Original), trimmed
    line: int  # first line, 1-based
    end_line: int
    flags: Mapping[str, tuple[str, ...]]  # "--from=b" -> {"from": ("b",)}; "--mount" may repeat
    args: tuple[str, ...]  # the arguments, unexpanded; for JSON form the decoded list
    json_form: bool  # exec form: RUN ["a", "b"]
    heredocs: tuple[Heredoc, ...] = ()

    def flag(self, name: str, default: str | None = None) -> str | None:
        """The last value of a flag (flags that may repeat: use `flags[name]`)."""
        values = self.flags.get(name)
        return values[-1] if values else default

    def with_heredocs(self) -> str:
        """The shell-form command with each heredoc's body and delimiter put back after it: what
        BuildKit hands the shell for a RUN that is more than a lone heredoc (`RUN python3 <<EOF`).
        `original` holds only the instruction line, as BuildKit's Node.Original does."""
        text = " ".join(self.args)
        for doc in self.heredocs:
            text += "\n" + doc.content + doc.name
        return text


@dataclass
class Stage:
    index: int
    name: str | None  # lower-cased name from `FROM x AS name`
    base: str  # the FROM image reference, unexpanded (may contain $ARG)
    platform: str | None  # --platform flag, unexpanded
    line: int  # line of the FROM
    original: str  # the FROM line as written
    instructions: list[Instruction] = field(default_factory=list)  # after FROM, FROM excluded
    from_instruction: Instruction | None = None  # the FROM itself (args as written, flags)

    @property
    def label(self) -> str:
        """What events call the stage: its name, else its index as a string."""
        return self.name if self.name is not None else str(self.index)


@dataclass
class Dockerfile:
    meta_args: list[Instruction]  # ARG instructions before the first FROM
    stages: list[Stage]
    escape: str = "\\"  # from the `# escape=` directive
    filename: str = "Dockerfile"

    def stage(self, ref: str) -> Stage | None:
        """A stage by name (case-insensitive) or by index (a decimal string)."""
        wanted = ref.lower()
        for stage in self.stages:
            if stage.name == wanted:
                return stage
        if ref.isascii() and ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None


# --- small helpers ---------------------------------------------------------------------------------


class _Invalid(Exception):
    """A validation message; `parse` turns it into a DockerfileError with the file and line."""


def _go_quote(text: str) -> str:
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


def _suggest(message: str, value: str, options: Sequence[str], *, case_sensitive: bool) -> str:
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


# --- the shell lexer: BuildKit's word processing ----------------------------------------------------


class _LexError(Exception):
    pass


def _is_space(ch: str) -> bool:
    # Go's unicode.IsSpace: Python's isspace() also counts the ASCII separators 0x1c-0x1f.
    return ch.isspace() and ch not in "\x1c\x1d\x1e\x1f"


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
        if _is_space(ch):
            if self.in_word and self.buf:
                self.words.append(self.buf)
                self.buf, self.in_word = "", False
        else:
            self.add_raw(ch)

    def add_text(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

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


class _Lexer:
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
            raise _LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), words.result()

    def single_quoted(self) -> str:
        opening = self.next() or ""
        out = [opening] if self.raw_quotes else []
        while True:
            ch = self.next()
            if ch is None:
                raise _LexError("unexpected end of statement while looking for matching single-quote")
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
                raise _LexError("unexpected end of statement while looking for matching double-quote")
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
        return (value, True) if value is not None else ("", False)

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
            raise _LexError("syntax error: missing '}'")
        if ch in "{}:":
            raise _LexError("syntax error: bad substitution")
        name = self.name()
        op = self.next()
        if op == "}":
            value, found = self.lookup(name)
            return "${" + name + "}" if not found and self.skip_unset else value
        if op == "/":
            return self.replace(name)
        if op is None:
            raise _LexError("syntax error: missing '}'")
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
            raise _LexError(f"unsupported modifier ({spelled}) in substitution")
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
                raise _LexError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _LexError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if trims:
            greedy = word.startswith(op)
            pattern = word[1:] if greedy else word
            return _trim_suffix(pattern, value, greedy) if op == "%" else _trim_prefix(pattern, value, greedy)
        raise _LexError(f"unsupported modifier ({spelled}) in substitution")

    def until_brace(self, *, raw_escapes: bool, stop: str = "}") -> str:
        try:
            word, _ = self.until(stop, raw_escapes)
        except _LexError:
            if self.peek() is None:
                raise _LexError("syntax error: missing '/' in ${}" if stop == "/"
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
        return _go_replace(regex, value, replacement, every=every)


def _pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell wildcard pattern (`*`, `?`, backslash escapes; no brackets) as a regex."""
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
                raise _LexError(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{escaped}'")
            out.append("\\" + escaped)
        elif ch in "[]{}.+()|^$":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    match = _pattern_regex(pattern, greedy=greedy, anchored=True).search(value)
    return value[match.end():] if match else value


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # A regex finds the leftmost match, not the shortest rightmost one: reverse both sides.
    units: list[str] = []
    i = 0
    while i < len(pattern):
        step = 2 if pattern[i] == "\\" and i + 1 < len(pattern) else 1
        units.append(pattern[i:i + step])  # an escape stays in front of what it escapes
        i += step
    return _trim_prefix("".join(reversed(units)), value[::-1], greedy)[::-1]


def _go_replace(regex: re.Pattern[str], value: str, replacement: str, *, every: bool) -> str:
    """${name/...} replaces the first match literally; ${name//...} is Go's ReplaceAllString:
    `$0` templates, and no empty match right after a previous match (re.sub differs on both)."""
    if not every:
        first = regex.search(value)
        return value[:first.start()] + replacement + value[first.end():] if first else value
    out: list[str] = []
    last_end = search = 0
    while search <= len(value):
        match = regex.search(value, search)
        if match is None:
            break
        out.append(value[last_end:match.start()])
        if match.end() > last_end or match.start() == 0:
            out.append(_go_template(replacement, match))
        last_end = match.end()
        search = search + 1 if match.end() <= search else match.end()
    out.append(value[last_end:])
    return "".join(out)


def _go_template(template: str, match: re.Match[str]) -> str:
    def group(found: re.Match[str]) -> str:
        if found.group(0) == "$$":
            return "$"
        name = found.group(1) or found.group(2)
        return match.group(0) if name == "0" else ""  # the patterns have no groups of their own

    return re.sub(r"\$\$|\$\{(\w+)\}|\$(\w+)", group, template)


def _lex(word: str, env: Mapping[str, str], escape: str) -> tuple[str, list[str]]:
    try:
        return _Lexer(word, env, escape).run()
    except _LexError as exc:
        raise DockerfileError(f"failed to process {_go_quote(word)}: {exc}") from None


def expand(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """Expand $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:+alt}, ${VAR+alt},
    ${VAR:?msg} in one word as BuildKit's shell lexer does (quotes removed, escapes honoured).
    Unset variables expand to the empty string."""
    return _lex(word, env, escape)[0]


def expand_heredoc(text: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """The body of a COPY/ADD heredoc whose delimiter is unquoted, as BuildKit expands it:
    variables expanded and escapes processed, quotes kept (single-quoted text is not expanded)."""
    try:
        return _Lexer(text, env, escape, raw_quotes=True).run()[0]
    except _LexError as exc:
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


# --- flags --------------------------------------------------------------------------------------

# How BuildKit declares each instruction's flags: a bool may be given bare (`--link`), a string
# needs `=value` and may appear once, a list needs `=value` and may repeat.
_BOOL, _STRING, _LIST = "bool", "string", "list"
_FLAGS: dict[str, dict[str, str]] = {
    "ADD": {"chown": _STRING, "chmod": _STRING, "link": _BOOL, "keep-git-dir": _BOOL,
            "checksum": _STRING, "exclude": _LIST},
    "COPY": {"chown": _STRING, "from": _STRING, "chmod": _STRING, "link": _BOOL, "exclude": _LIST,
             "parents": _BOOL},
    "FROM": {"platform": _STRING},
    "RUN": {"mount": _LIST, "network": _STRING, "security": _STRING},
    "HEALTHCHECK": {"interval": _STRING, "timeout": _STRING, "start-period": _STRING,
                    "start-interval": _STRING, "retries": _STRING},
}


def _parse_flags(flags: Sequence[str], spec: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Check flags against an instruction's declared ones, as BuildKit's BFlags.Parse does."""
    values: dict[str, tuple[str, ...]] = {}
    for text in flags:
        spelled, has_value, value = text.partition("=")
        name = spelled[2:]
        kind = spec.get(name)
        if kind is None:
            raise _Invalid(_suggest(f"unknown flag: {spelled}", name, list(spec), case_sensitive=True))
        if name in values and kind != _LIST:
            raise _Invalid(f"duplicate flag specified: {spelled}")
        if kind == _BOOL:
            value = _bool_flag(spelled, value, has_value=bool(has_value))
        elif not has_value:
            raise _Invalid(f"missing a value on flag: {spelled}")
        values[name] = (*values.get(name, ()), value)
    return values


def _bool_flag(spelled: str, value: str, *, has_value: bool) -> str:
    if has_value and value == "":
        raise _Invalid(f"missing a value on flag: {spelled}")
    if value.lower() in ("", "true"):
        return "true"
    if value.lower() == "false":
        return "false"
    raise _Invalid(f"expecting boolean value for flag {spelled}, not: {value}")


def _unchecked_flags(flags: Sequence[str]) -> dict[str, tuple[str, ...]]:
    # ARG, STOPSIGNAL and HEALTHCHECK NONE: BuildKit never looks at their flags.
    values: dict[str, tuple[str, ...]] = {}
    for text in flags:
        spelled, has_value, value = text.partition("=")
        values[spelled[2:]] = (*values.get(spelled[2:], ()), value if has_value else "true")
    return values


# --- heredocs -----------------------------------------------------------------------------------

# The package's BuildKit (v0.12) wants the delimiter right after << (newer ones allow blanks).
_HEREDOC_WORD = re.compile(r"^([0-9]*)<<(-?)([^<]*)$")


def _heredoc_word(word: str) -> Heredoc | None:
    """The heredoc a word such as `<<EOF`, `<<-"EOF"` or `3<<EOF` opens (content left empty)."""
    match = _HEREDOC_WORD.match(word)
    if match is None or not match.group(3):
        return None
    rest = match.group(3)
    try:
        plain = _Lexer(rest, {}, skip_unset=True).run()[1]
        raw = _Lexer(rest, {}, raw_quotes=True, skip_unset=True).run()[1]
    except _LexError:
        return None
    if len(plain) != 1 or len(raw) != 1:
        return None
    # A quote anywhere in the delimiter (<<"EOF", <<E'O'F) turns expansion of the body off.
    quotes = (plain[0].count("'") + plain[0].count('"'), raw[0].count("'") + raw[0].count('"'))
    return Heredoc(plain[0], "", quotes[0] == quotes[1], match.group(2) == "-", int(match.group(1) or 0))


def _heredoc_words(line: str) -> list[Heredoc]:
    try:
        words = _Lexer(line, {}, raw_quotes=True, raw_escapes=True, skip_unset=True).run()[1]
    except _LexError:
        return []  # BuildKit ignores the error here: such a line opens no heredoc
    return [doc for doc in map(_heredoc_word, words) if doc is not None]


def _heredocs(line: str, found: Sequence[_syntax.Heredoc]) -> tuple[Heredoc, ...]:
    """The package reports each heredoc's name and content; quoting and <<- come from the line."""
    declared = _heredoc_words(line)
    docs = []
    for doc in found:
        spec = next((d for d in declared if d.name == doc.name), None)
        if spec is not None:
            declared.remove(spec)
        docs.append(Heredoc(doc.name, doc.content, spec.expand if spec else True,
                            spec.chomp if spec else False, doc.file_descriptor))
    return tuple(docs)


# --- checks BuildKit's instructions package makes -----------------------------------------------


@dataclass(frozen=True)
class _Command:
    """One instruction as the package reported it, normalised for checking."""

    keyword: str  # upper-case
    written: str  # the keyword as written, for "unknown instruction"
    args: tuple[str, ...]
    flags: tuple[str, ...]
    json_form: bool
    sub: str | None  # ONBUILD's trigger keyword


def _exactly_one(cmd: _Command) -> None:
    if len(cmd.args) != 1:
        raise _Invalid(f"{cmd.keyword} requires exactly one argument")


def _at_least_one(cmd: _Command) -> None:
    if not cmd.args:
        raise _Invalid(f"{cmd.keyword} requires at least one argument")


def _declared_flags(cmd: _Command) -> dict[str, tuple[str, ...]]:
    return _parse_flags(cmd.flags, _FLAGS.get(cmd.keyword, {}))


def _check_key_values(cmd: _Command) -> dict[str, tuple[str, ...]]:  # ENV, LABEL
    flags = _declared_flags(cmd)
    _at_least_one(cmd)
    if any(key == "" for key in cmd.args[::2]):
        raise _Invalid(f"{cmd.keyword} names can not be blank")
    return flags


def _check_one_word(cmd: _Command) -> dict[str, tuple[str, ...]]:  # MAINTAINER, WORKDIR, USER
    _exactly_one(cmd)
    return _declared_flags(cmd)


def _check_stopsignal(cmd: _Command) -> dict[str, tuple[str, ...]]:
    _exactly_one(cmd)
    return _unchecked_flags(cmd.flags)


def _check_arg(cmd: _Command) -> dict[str, tuple[str, ...]]:
    _at_least_one(cmd)
    if any(word.startswith("=") for word in cmd.args):
        raise _Invalid("ARG names can not be blank")
    return _unchecked_flags(cmd.flags)


def _check_listed(cmd: _Command) -> dict[str, tuple[str, ...]]:  # EXPOSE, VOLUME
    _at_least_one(cmd)
    flags = _declared_flags(cmd)
    if cmd.keyword == "VOLUME" and any(not word.strip() for word in cmd.args):
        raise _Invalid("VOLUME specified can not be an empty string")
    return flags


def _check_copy(cmd: _Command) -> dict[str, tuple[str, ...]]:  # COPY, ADD
    if len(cmd.args) < 2:
        raise _Invalid(f"{cmd.keyword} requires at least two arguments, but only one was provided. "
                       "Destination could not be determined")
    flags = _declared_flags(cmd)
    if _heredoc_word(cmd.args[-1]) is not None:
        raise _Invalid(f"{cmd.keyword} cannot accept a heredoc as a destination")
    return flags


def _check_run(cmd: _Command) -> dict[str, tuple[str, ...]]:
    flags = _declared_flags(cmd)
    network = flags.get("network", ("default",))[-1]
    if network not in ("default", "none", "host"):
        raise _Invalid(f"invalid network mode {_go_quote(network)}")
    security = flags.get("security", ("sandbox",))[-1]
    if security not in ("sandbox", "insecure"):
        raise _Invalid(f"security {_go_quote(security)} is not valid")
    return flags


def _check_shell(cmd: _Command) -> dict[str, tuple[str, ...]]:
    flags = _declared_flags(cmd)
    _at_least_one(cmd)
    if not cmd.json_form:
        raise _Invalid("SHELL requires the arguments to be in JSON form")
    return flags


def _check_onbuild(cmd: _Command) -> dict[str, tuple[str, ...]]:
    if cmd.sub is None:
        raise _Invalid("ONBUILD requires at least one argument")
    flags = _declared_flags(cmd)
    trigger = cmd.sub.upper()
    if trigger == "ONBUILD":
        raise _Invalid("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise _Invalid(f"{trigger} isn't allowed as an ONBUILD trigger")
    return flags


_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*")


def _stage_name(args: Sequence[str]) -> str | None:
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.fullmatch(name):
            raise _Invalid(f"invalid name for build stage: {_go_quote(args[2])}, "
                           "name can't start with a number or contain symbols")
        return name
    if len(args) != 1:
        raise _Invalid("FROM requires either one or three arguments")
    return None


def _check_from(cmd: _Command) -> dict[str, tuple[str, ...]]:
    _stage_name(cmd.args)
    return _declared_flags(cmd)


def _check_healthcheck(cmd: _Command) -> dict[str, tuple[str, ...]]:
    _at_least_one(cmd)
    kind = cmd.args[0].upper()
    if kind == "NONE":
        if len(cmd.args) > 1:
            raise _Invalid("HEALTHCHECK NONE takes no arguments")
        return _unchecked_flags(cmd.flags)
    flags = _declared_flags(cmd)
    if kind != "CMD":
        raise _Invalid(f"Unknown type {_go_quote(kind)} in HEALTHCHECK (try CMD)")
    if len(cmd.args) < 2:
        raise _Invalid("Missing command after HEALTHCHECK CMD")
    for name in ("interval", "timeout", "start-period", "start-interval"):
        value = flags.get(name, ("",))[-1]
        duration = _duration_ns(value) if value else 0
        if duration != 0 and duration < 1_000_000:  # zero means "the default"
            raise _Invalid(f"Interval {_go_quote(name)} cannot be less than 1ms")
    retries = flags.get("retries", ("",))[-1]
    if retries:
        _check_retries(retries)
    return flags


_DURATION_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9,
                   "m": 60 * 10**9, "h": 3600 * 10**9}


def _duration_ns(text: str) -> float:
    """Go's time.ParseDuration, which BuildKit uses for HEALTHCHECK's intervals."""
    quoted = _go_quote(text)
    rest = text[1:] if text[:1] in ("+", "-") else text
    sign = -1 if text.startswith("-") else 1
    if rest == "0":
        return 0
    if not rest:
        raise _Invalid(f"time: invalid duration {quoted}")
    total = 0.0
    while rest:
        number = re.match(r"[0-9]*(\.[0-9]*)?", rest).group(0)  # type: ignore[union-attr]
        if number in ("", "."):
            raise _Invalid(f"time: invalid duration {quoted}")
        rest = rest[len(number):]
        unit = re.match(r"[^0-9.]*", rest).group(0)  # type: ignore[union-attr]
        if not unit:
            raise _Invalid(f"time: missing unit in duration {quoted}")
        if unit not in _DURATION_UNITS:
            raise _Invalid(f"time: unknown unit {_go_quote(unit)} in duration {quoted}")
        total += float(number) * _DURATION_UNITS[unit]
        rest = rest[len(unit):]
    return sign * total


def _check_retries(text: str) -> None:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise _Invalid(f"strconv.ParseInt: parsing {_go_quote(text)}: invalid syntax")
    retries = int(text)
    if not -(2**31) <= retries < 2**31:
        raise _Invalid(f"strconv.ParseInt: parsing {_go_quote(text)}: value out of range")
    if retries < 0:
        raise _Invalid(f"--retries cannot be negative ({retries})")


def _check_unknown(cmd: _Command) -> dict[str, tuple[str, ...]]:
    raise _Invalid(_suggest(f"unknown instruction: {cmd.written}", cmd.written, list(_CHECKS),
                            case_sensitive=False))


_CHECKS: dict[str, Callable[[_Command], dict[str, tuple[str, ...]]]] = {
    "ADD": _check_copy, "ARG": _check_arg, "CMD": _declared_flags, "COPY": _check_copy,
    "ENTRYPOINT": _declared_flags, "ENV": _check_key_values, "EXPOSE": _check_listed,
    "FROM": _check_from, "HEALTHCHECK": _check_healthcheck, "LABEL": _check_key_values,
    "MAINTAINER": _check_one_word, "ONBUILD": _check_onbuild, "RUN": _check_run, "SHELL": _check_shell,
    "STOPSIGNAL": _check_stopsignal, "USER": _check_one_word, "VOLUME": _check_listed,
    "WORKDIR": _check_one_word,
}


# --- lines, directives, and where the package's errors are --------------------------------------


def _physical_lines(text: str) -> list[str]:
    """The lines as BuildKit's scanner reads them: split on \\n only, each keeping its end."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _lstrip(text: str) -> str:
    start = 0
    while start < len(text) and _is_space(text[start]):
        start += 1
    return text[start:]


def _chomp(line: str) -> str:
    return line.rstrip("\r\n")


_GO_SPACE = "[\t\n\f\r ]"  # Go's \s
_DIRECTIVE = re.compile(rf"#{_GO_SPACE}*([a-zA-Z][a-zA-Z0-9]*){_GO_SPACE}*={_GO_SPACE}*(.+?){_GO_SPACE}*")


def _escape_directive(lines: Sequence[str], filename: str) -> str:
    """The escape character from the directives at the top (`# escape=`, `# syntax=`), read as
    the package's BuildKit reads them: they end at the first line that is not one."""
    escape, seen = "\\", set()
    for number, raw in enumerate(lines, 1):
        line = _lstrip(_chomp(raw.removeprefix("\ufeff") if number == 1 else raw))
        match = _DIRECTIVE.fullmatch(line)
        key = match.group(1).lower() if match else ""
        if key not in ("syntax", "escape"):
            break
        if key in seen:
            raise DockerfileError(f"only one {key} parser directive can be used", file=filename, line=number)
        seen.add(key)
        if key == "escape":
            escape = match.group(2)  # type: ignore[union-attr]
            if escape not in ("`", "\\"):
                raise DockerfileError(f"invalid escape token '{escape}' does not match ` or \\",
                                      file=filename, line=number)
    return escape


def _trim_continuation(line: str, escape: str) -> tuple[str, bool]:
    """The line without a trailing escape, and whether the instruction ends on it."""
    token = re.escape(escape)
    joined, count = re.subn(rf"([^{token}]){token}[ \t]*$|^{token}[ \t]*$", r"\1", line)
    return joined, count == 0


def _is_json_list(text: str) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _line_heredocs(line: str) -> list[Heredoc]:
    """Heredocs a joined instruction line opens (RUN/COPY/ADD, also under ONBUILD, not JSON)."""
    words = line.split(None, 1)
    if words and words[0].upper() == "ONBUILD" and len(words) > 1:
        words = words[1].split(None, 1)
    if not words or words[0].upper() not in ("RUN", "COPY", "ADD"):
        return []
    rest = words[1] if len(words) > 1 else ""
    while rest.startswith("--"):
        _, _, rest = rest.partition(" ")  # flags; rough, but only used to place an error
        rest = rest.lstrip()
    return [] if _is_json_list(rest) else _heredoc_words(line)


def _instruction_spans(lines: Sequence[str], escape: str) -> Iterator[tuple[int, int]]:
    """(first, last) line of each instruction, heredoc bodies included: BuildKit's line loop,
    used only to find which instruction the package choked on."""
    i = 0
    while i < len(lines):
        start = i
        line = _lstrip(_chomp(lines[i]))
        i += 1
        joined, done = _trim_continuation("" if line.startswith("#") else line, escape)
        if done and not joined:
            continue
        while not done and i < len(lines):
            raw = _chomp(lines[i])
            i += 1
            if _lstrip(raw).startswith("#") or not _lstrip(raw):
                continue  # comment and empty lines inside an instruction are skipped
            part, done = _trim_continuation(raw, escape)
            joined += part
        for doc in _line_heredocs(joined):
            while i < len(lines):
                body = _chomp(lines[i])
                i += 1
                if (body.lstrip("\t") if doc.chomp else body) == doc.name:
                    break
        yield start + 1, i


def _parse_alone(lines: Sequence[str], escape: str) -> tuple[_syntax.Command, ...]:
    header = "# escape=`\n" if escape == "`" else ""
    return _syntax.parse_string(header + "".join(lines))


def _failure_line(message: str, lines: Sequence[str], escape: str) -> int:
    """The line of the instruction the package rejected: it reports no line, so each
    instruction is parsed on its own until one fails."""
    if message.startswith("dockerfile line greater than"):
        return next((n for n, line in enumerate(lines, 1) if len(line.encode()) > 65535), len(lines))
    for first, last in _instruction_spans(lines, escape):
        try:
            _parse_alone(lines[first - 1:last], escape)
        except _syntax.GoParseError:
            return first
    return max(len(lines), 1)  # "file with no instructions": BuildKit points at the end


# --- parse ----------------------------------------------------------------------------------------

_ONBUILD_PREFIX = re.compile(rf"(?i)^{_GO_SPACE}*ONBUILD{_GO_SPACE}*")


class _Builder:
    """Turns the package's commands into a Dockerfile, checking each as BuildKit does."""

    def __init__(self, filename: str, lines: Sequence[str], escape: str) -> None:
        self.filename = filename
        self.lines = lines
        self.escape = escape
        self.meta_args: list[Instruction] = []
        self.stages: list[Stage] = []

    def error(self, message: str, line: int) -> DockerfileError:
        return DockerfileError(message, file=self.filename, line=line)

    def add(self, found: _syntax.Command) -> None:
        ins = self.instruction(found)
        if ins.keyword == "FROM":
            self.open_stage(ins)
        elif self.stages:
            self.stages[-1].instructions.append(ins)
        elif ins.keyword == "ARG":
            self.meta_args.append(ins)
        else:
            raise self.error("no build stage in current context", ins.line)

    def instruction(self, found: _syntax.Command) -> Instruction:
        # A lone continuation at the end of the file makes a node with no keyword (None here);
        # BuildKit reports it as an unknown instruction.
        written = found.cmd or ""
        keyword = written.upper()
        # Node.Original is the instruction line; the package appends heredoc bodies to it.
        original = (found.original or "").split("\n", 1)[0].strip()
        sub = found.sub_cmd
        args = tuple(found.value)
        if keyword == "ONBUILD":
            args = (sub, *args) if sub is not None else ()
        cmd = _Command(keyword, written, args, tuple(found.flags), found.json, sub)
        try:
            flags = _CHECKS.get(keyword, _check_unknown)(cmd)
        except _Invalid as exc:
            raise self.error(str(exc), found.start_line) from None
        heredocs = _heredocs(original, found.heredocs) if found.heredocs else ()
        json_form = found.json
        if keyword == "ONBUILD":
            heredocs = self.onbuild_heredocs(found, original)
            args, json_form = (self.onbuild_expression(original, heredocs),), False
        return Instruction(keyword, original, found.start_line, found.end_line, flags, args, json_form,
                           heredocs)

    def onbuild_heredocs(self, found: _syntax.Command, original: str) -> tuple[Heredoc, ...]:
        # The package drops the heredocs of an ONBUILD's trigger: parse the trigger on its own.
        if (found.sub_cmd or "").upper() not in ("RUN", "COPY", "ADD") or found.end_line == found.start_line:
            return ()
        first, *rest = self.lines[found.start_line - 1:found.end_line]
        trigger = _ONBUILD_PREFIX.sub("", first.removeprefix("\ufeff"), count=1)
        try:
            reparsed = _parse_alone([trigger, *rest], self.escape)
        except _syntax.GoParseError:
            return ()
        return _heredocs(original, reparsed[0].heredocs) if reparsed else ()

    @staticmethod
    def onbuild_expression(original: str, heredocs: Sequence[Heredoc]) -> str:
        """The trigger as the image config stores it: the line after ONBUILD, heredocs after it."""
        expression = _ONBUILD_PREFIX.sub("", original, count=1)
        for doc in heredocs:
            expression += "\n" + doc.content + doc.name
        return expression

    def open_stage(self, ins: Instruction) -> None:
        name = _stage_name(ins.args)
        previous = next((s for s in self.stages if name is not None and s.name == name), None)
        if previous is not None:
            # BuildKit only warns (lint rule DuplicateStageName) and lets the last one win for
            # --from; a studio that explains builds refuses the ambiguity instead.
            raise self.error(f"Duplicate stage name {_go_quote(name or '')}, stage names should be unique "
                             f"(first used on line {previous.line})", ins.line)
        self.stages.append(Stage(index=len(self.stages), name=name, base=ins.args[0],
                                 platform=ins.flag("platform"), line=ins.line, original=ins.original,
                                 from_instruction=ins))

    def finish(self) -> Dockerfile:
        if not self.stages:
            raise self.error("dockerfile contains no stages to build", 1)
        return Dockerfile(self.meta_args, self.stages, escape=self.escape, filename=self.filename)


def _check_text(text: str, filename: str) -> None:
    """Refuse what the package cannot take: it reads the text as a C string (a NUL would
    silently end the file) and crashes the whole process on text that is not UTF-8."""
    position = text.find("\x00")
    message = "the Dockerfile contains a NUL character"
    if position < 0:
        try:
            text.encode("utf-8")
            return
        except UnicodeEncodeError as exc:
            position, message = exc.start, "the Dockerfile is not valid UTF-8 text"
    raise DockerfileError(message, file=filename, line=text.count("\n", 0, position) + 1)


def parse(text: str, *, filename: str = "Dockerfile") -> Dockerfile:
    """Parse and validate. Raises DockerfileError naming the line for: a syntax error, an unknown
    instruction, an instruction with missing or malformed arguments, an instruction before the
    first FROM other than ARG, an unknown flag for an instruction, a duplicate stage name."""
    _check_text(text, filename)
    lines = _physical_lines(text)
    escape = _escape_directive(lines, filename)
    try:
        commands = _syntax.parse_string(text)
    except _syntax.GoParseError as exc:
        raise DockerfileError(str(exc), file=filename, line=_failure_line(str(exc), lines, escape)) from None
    builder = _Builder(filename, lines, escape)
    for found in commands:
        builder.add(found)
    return builder.finish()
