"""`{{ text|lesson_markdown }}`: a lesson's Markdown as HTML for the class pages and the studio's
lesson panel. CommonMark with raw HTML off: a teacher's text can format, never inject markup, and
links that are not http(s) or relative are refused by the parser's own link check."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

register = template.Library()
_MARKDOWN = MarkdownIt("commonmark", {"html": False})


@register.filter
def lesson_markdown(text: object) -> SafeString:
    # Safe: raw HTML is off, so the parser escapes any markup in the text.
    return mark_safe(_MARKDOWN.render(str(text or "")))
