"""Text as people type it (文本规范): one line, or a comment of several lines.

Every text field of a request (an API body, a web form, a workflow step) is one of the two
types below, so what reaches the register, the inbox, an SMS or the log is clean: control
characters are refused (422 naming the field; a NUL in a name would otherwise travel
everywhere), line breaks and tabs are allowed only in comments, and the text is
normalised to NFC and trimmed before the field's own limits (length, pattern) apply.

A field keeps its limits by putting them before the type's validator, e.g.
``Annotated[str, StringConstraints(max_length=100), ONE_LINE]``, or in the field's own
``Field(max_length=...)``: they are then checked on the cleaned text, with pydantic's usual
messages.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

# Bidirectional embeddings, overrides and isolates: they reorder what the reader sees.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_SEPARATORS = frozenset("\u2028\u2029")
_LINE_BREAKS = frozenset("\n\r") | _LINE_SEPARATORS
_NAMES = {"\t": "tab", **dict.fromkeys(_LINE_BREAKS, "line break")}
_COMMENT_LAYOUT = _LINE_BREAKS | {"\t"}


def _refuse_controls(text: str, allowed: frozenset[str]) -> None:
    for position, char in enumerate(text, start=1):
        if char in allowed:
            continue
        if (
            unicodedata.category(char) in ("Cc", "Cs")
            or char in _BIDI_CONTROLS
            or char in _LINE_SEPARATORS
        ):
            what = _NAMES.get(char, "control character")
            where = "; this field takes one line" if char in _NAMES else ""
            raise PydanticCustomError(
                "control_character",
                "{what} U+{code} at character {position} is not allowed{where}",
                {"what": what, "code": f"{ord(char):04X}", "position": position, "where": where},
            )


def one_line(value: Any) -> Any:
    """A single line: no control character at all; NFC, trimmed."""
    if not isinstance(value, str):
        return value  # the string schema names the wrong type
    _refuse_controls(value, frozenset())
    return unicodedata.normalize("NFC", value).strip()


def several_lines(value: Any) -> Any:
    """A comment: line breaks (any convention, kept as ``\\n``) and tabs allowed; NFC, trimmed."""
    if not isinstance(value, str):
        return value
    _refuse_controls(value, _COMMENT_LAYOUT)
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    for separator in _LINE_SEPARATORS:
        text = text.replace(separator, "\n")
    return unicodedata.normalize("NFC", text).strip()


ONE_LINE = BeforeValidator(one_line)
SEVERAL_LINES = BeforeValidator(several_lines)

Text = Annotated[str, ONE_LINE]
"""One line of text: names, numbers, codes, keys, short answers."""

CommentText = Annotated[str, SEVERAL_LINES]
"""Free text of several lines: comments, notes, reasons, assessments, evaluations."""
