"""SMS segment counting: GSM-7 160 / 153 per part, UCS-2 70 / 67 per part."""

from __future__ import annotations

import pytest

from domain.sms import sms_encoding, sms_segments


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Hello, world! @£$¥ 0-9", "GSM-7"),
        ("{[~]}|^€", "GSM-7"),  # the extension table is still GSM-7
        ("", "GSM-7"),
        ("您好", "UCS-2"),
        ("Loan LN1 approved。", "UCS-2"),  # one Chinese full stop is enough
        ("café", "GSM-7"),  # é is in the GSM alphabet
        ("naïve", "UCS-2"),  # ï is not
    ],
)
def test_encoding(text: str, encoding: str) -> None:
    assert sms_encoding(text) == encoding


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_single_160_then_153_per_part(length: int, segments: int) -> None:
    assert sms_segments("a" * length) == segments


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_single_70_then_67_per_part(length: int, segments: int) -> None:
    assert sms_segments("贷" * length) == segments


def test_one_chinese_character_makes_the_whole_text_ucs2() -> None:
    assert sms_segments("a" * 70) == 1
    assert sms_segments("a" * 69 + "元") == 1
    assert sms_segments("a" * 70 + "元") == 2


def test_extension_characters_cost_two_septets_and_are_never_split() -> None:
    assert sms_segments("€" * 80) == 1  # 160 septets
    assert sms_segments("€" * 81) == 2
    assert sms_segments("a" * 151 + "€" + "a" * 153) == 2  # 153 + 153 septets
    # The same 306 septets, but the escape pair would straddle the first part's end.
    assert sms_segments("a" * 152 + "€" + "a" * 152) == 3


def test_surrogate_pairs_count_two_units_and_are_never_split() -> None:
    assert sms_segments("😀" * 35) == 1  # 70 units
    assert sms_segments("😀" * 36) == 2
    assert sms_segments("😀" * 66) == 2  # 33 pairs per 67-unit part
    assert sms_segments("😀" * 67) == 3  # 134 units, but a pair never straddles two parts


def test_empty_text_is_one_message() -> None:
    assert sms_segments("") == 1
