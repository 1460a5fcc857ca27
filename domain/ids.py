"""Resident ID numbers (居民身份证号码) and masking of personal data.

Rule E-2: an 18-character ID per GB 11643-1999 with a real birth date.
Rule H-3: ID and phone numbers are masked in logs, notices and lists.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"  # indexed by the weighted sum mod 11

_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
# [0-9] rather than \d: \d also matches full-width and other Unicode digits.
_ID_IN_TEXT = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_MOBILE_IN_TEXT = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def check_char(first17: str) -> str:
    """The GB 11643 check character (校验码) for the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"expected 17 digits, got {first17!r}")
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def parse_resident_id(id_number: str) -> date:
    """Validate a resident ID (rule E-2) and return the birth date it encodes.

    Raises ValueError with a message a loan officer can act on.
    """
    value = id_number.upper()
    if len(value) != 18:
        raise ValueError(f"resident ID must have 18 characters, got {len(value)}")
    if not _ID_SHAPE.fullmatch(value):
        raise ValueError("resident ID must be 17 digits followed by a digit or X")
    expected = check_char(value[:17])
    if value[17] != expected:
        raise ValueError(
            f"resident ID check character is {value[17]}, expected {expected} (GB 11643 checksum)"
        )
    digits = value[6:14]
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise ValueError(f"resident ID birth date {digits} is not a real date") from None


def make_resident_id(region: str, birth: date, seq: str) -> str:
    """Build a valid ID from a 6-digit region code, a birth date and a 3-digit sequence."""
    if len(region) != 6 or not region.isdigit():
        raise ValueError(f"region must be 6 digits, got {region!r}")
    if len(seq) != 3 or not seq.isdigit():
        raise ValueError(f"sequence must be 3 digits, got {seq!r}")
    body = f"{region}{birth.year:04d}{birth.month:02d}{birth.day:02d}{seq}"
    return body + check_char(body)


def _mask_keep(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        # Too short to keep both ends; keep at most the last 4 and never the whole value.
        keep = min(tail, len(value) // 2)
        return "*" * (len(value) - keep) + value[len(value) - keep :]
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def mask_id_number(id_number: str) -> str:
    """``4101**********1234``: first 4 and last 4 kept, same length (rule H-3)."""
    return _mask_keep(id_number, 4, 4)


def mask_phone(phone: str) -> str:
    """``138****5678`` for a mainland mobile; otherwise all but the last 4 masked (rule H-3)."""
    if _MOBILE.fullmatch(phone):
        return _mask_keep(phone, 3, 4)
    return _mask_keep(phone, 0, 4)


def mask_pii(text: str) -> str:
    """Mask every resident ID and mainland mobile number found in free text (rule H-3)."""
    text = _ID_IN_TEXT.sub(lambda m: mask_id_number(m.group()), text)
    return _MOBILE_IN_TEXT.sub(lambda m: mask_phone(m.group()), text)


def mask_pii_deep(value: Any) -> Any:
    """``mask_pii`` through every string of JSON-like data (dicts, lists, strings)."""
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, dict):
        return {key: mask_pii_deep(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_pii_deep(item) for item in value]
    return value
