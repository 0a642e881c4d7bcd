"""Finding heredocs (`<<EOF`) in an instruction's words."""

from __future__ import annotations

import re
from collections.abc import Sequence

from . import syntax as _syntax
from .model import Heredoc
from .words import Lexer, LexError

# The package's BuildKit (v0.12) wants the delimiter right after << (newer ones allow blanks).
_HEREDOC_WORD = re.compile(r"^([0-9]*)<<(-?)([^<]*)$")


def heredoc_word(word: str) -> Heredoc | None:
    """The heredoc a word such as `<<EOF`, `<<-"EOF"` or `3<<EOF` opens (content left empty)."""
    match = _HEREDOC_WORD.match(word)
    if match is None or not match.group(3):
        return None
    rest = match.group(3)
    try:
        plain = Lexer(rest, {}, skip_unset=True).run()[1]
        raw = Lexer(rest, {}, raw_quotes=True, skip_unset=True).run()[1]
    except LexError:
        return None
    if len(plain) != 1 or len(raw) != 1:
        return None
    # A quote anywhere in the delimiter (<<"EOF", <<E'O'F) turns expansion of the body off.
    quotes = (plain[0].count("'") + plain[0].count('"'), raw[0].count("'") + raw[0].count('"'))
    return Heredoc(plain[0], "", quotes[0] == quotes[1], match.group(2) == "-", int(match.group(1) or 0))


def heredoc_words(line: str) -> list[Heredoc]:
    try:
        words = Lexer(line, {}, raw_quotes=True, raw_escapes=True, skip_unset=True).run()[1]
    except LexError:
        return []  # BuildKit ignores the error here: such a line opens no heredoc
    return [doc for doc in map(heredoc_word, words) if doc is not None]


def read_heredocs(line: str, found: Sequence[_syntax.Heredoc]) -> tuple[Heredoc, ...]:
    """The package reports each heredoc's name and content; quoting and <<- come from the line."""
    declared = heredoc_words(line)
    docs = []
    for doc in found:
        spec = next((d for d in declared if d.name == doc.name), None)
        if spec is not None:
            declared.remove(spec)
        docs.append(Heredoc(doc.name, doc.content, spec.expand if spec else True,
                            spec.chomp if spec else False, doc.file_descriptor))
    return tuple(docs)

