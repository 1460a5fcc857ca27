"""Text hygiene (文本规范): one line, or a comment of several lines; control characters refused.

Every model of the API, the web forms and the workflow steps is walked in
``tests/api/test_input_hygiene.py``; here the two types themselves.
"""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import StringConstraints, TypeAdapter, ValidationError

from domain.text import ONE_LINE, CommentText, Text

ONE = TypeAdapter(Text)
COMMENT = TypeAdapter(CommentText)
SHORT = TypeAdapter(Annotated[str, StringConstraints(min_length=1, max_length=3), ONE_LINE])

# Each refused everywhere: C0 and C1 controls, DEL, a lone surrogate (from a JSON "\ud800"),
# and the bidirectional overrides and isolates that reorder what a reader sees.
CONTROLS = ["\x00", "\x07", "\x1b", "\x1f", "\x7f", "\x85", "\x9f", "\ud800", "\u202e", "\u2066"]
# Allowed in comments only.
LAYOUT = ["\n", "\t", "\r\n", "\u2028"]


def _refusal(adapter: TypeAdapter[str], value: str) -> str:
    with pytest.raises(ValidationError) as refused:
        adapter.validate_python(value)
    [error] = refused.value.errors()
    assert error["type"] == "control_character"
    return str(error["msg"])


@pytest.mark.parametrize("char", CONTROLS, ids=[f"U+{ord(c):04X}" for c in CONTROLS])
def test_control_characters_are_refused_in_every_kind_of_text(char: str) -> None:
    for adapter in (ONE, COMMENT):
        message = _refusal(adapter, f"张{char}三")
        assert f"U+{ord(char):04X} at character 2 is not allowed" in message


def test_a_nul_at_the_end_is_refused_not_trimmed_away() -> None:
    assert "U+0000 at character 3" in _refusal(ONE, "张三\x00")
    assert "U+001F at character 3" in _refusal(ONE, "张三\x1f")  # str.strip() would eat it
    assert "U+0000 at character 4" in _refusal(COMMENT, "甲\r\n\x00")  # as typed, CRLF and all


@pytest.mark.parametrize("layout", LAYOUT, ids=["LF", "TAB", "CRLF", "U+2028"])
def test_one_line_refuses_line_breaks_and_tabs(layout: str) -> None:
    message = _refusal(ONE, f"第一行{layout}第二行")
    assert message.endswith("this field takes one line")
    assert message.startswith("tab" if layout == "\t" else "line break")


def test_a_comment_keeps_its_lines_and_tabs_with_one_line_break_convention() -> None:
    typed = "  第一行\r\n\t第二行\r第三行\u2028第四行\u2029第五行\n  "
    assert COMMENT.validate_python(typed) == "第一行\n\t第二行\n第三行\n第四行\n第五行"


def test_text_is_normalised_to_nfc_and_trimmed() -> None:
    # An ideographic space and a no-break space around, an accent typed as a second code point.
    assert ONE.validate_python("\u3000 Jose\u0301 张三\u00a0 ") == "Jos\u00e9 张三"
    assert COMMENT.validate_python(" Jose\u0301\n ") == "Jos\u00e9"


def test_limits_apply_to_the_cleaned_text() -> None:
    assert SHORT.validate_python("  abc  ") == "abc"
    assert SHORT.validate_python("e\u0301e\u0301e\u0301") == "\u00e9" * 3  # 6 code points typed
    with pytest.raises(ValidationError, match="at least 1 character"):
        SHORT.validate_python(" \u3000 ")
    with pytest.raises(ValidationError, match="at most 3 characters"):
        SHORT.validate_python("abcd")


def test_other_types_are_left_to_the_string_schema() -> None:
    with pytest.raises(ValidationError, match="valid string"):
        ONE.validate_python(12)
