"""How many SMS segments (短信条数) a text costs.

A text in the GSM 03.38 alphabet goes as GSM-7: 160 characters in one message, 153 per
part once it is split (the rest of each part carries the concatenation header). Anything
else, any Chinese character among it, goes as UCS-2: 70 UTF-16 units in one message, 67 per
part. Every part is billed and a long text may arrive in pieces on old handsets, so a
text to a borrower or guarantor must fit in ``MAX_SMS_SEGMENTS``.
"""

from __future__ import annotations

from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

MAX_SMS_SEGMENTS = 2

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Sent as an escape plus a character: two septets, never split across parts.
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

_SINGLE = {"GSM-7": 160, "UCS-2": 70}
_PER_PART = {"GSM-7": 153, "UCS-2": 67}


def sms_encoding(text: str) -> Encoding:
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENDED for ch in text):
        return "GSM-7"
    return "UCS-2"


def _units(ch: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if ch in _GSM7_EXTENDED else 1
    return 2 if ord(ch) > 0xFFFF else 1  # a surrogate pair, never split across parts


def sms_segments(text: str) -> int:
    """The number of messages ``text`` is sent as (an empty text is still one message)."""
    encoding = sms_encoding(text)
    units = [_units(ch, encoding) for ch in text]
    if sum(units) <= _SINGLE[encoding]:
        return 1
    parts, used = 1, 0
    for unit in units:
        if used + unit > _PER_PART[encoding]:
            parts, used = parts + 1, 0
        used += unit
    return parts
