"""Resident IDs (rule E-2) and masking of personal data (rule H-3)."""

from __future__ import annotations

from datetime import date

import pytest

from domain.ids import (
    check_char,
    make_resident_id,
    mask_id_number,
    mask_phone,
    mask_pii,
    parse_resident_id,
)

# A widely published GB 11643 worked example: weighted sum of the first 17 digits
# 11010519491231002 is 167; 167 mod 11 = 2 -> check character "X".
KNOWN_GOOD = "11010519491231002X"


def test_e2_checksum_of_known_example() -> None:
    assert check_char(KNOWN_GOOD[:17]) == "X"
    assert parse_resident_id(KNOWN_GOOD) == date(1949, 12, 31)


def test_e2_accepts_lowercase_x() -> None:
    assert parse_resident_id(KNOWN_GOOD.lower()) == date(1949, 12, 31)


def test_e2_make_resident_id_round_trips() -> None:
    for birth in (date(1960, 1, 1), date(1988, 2, 29), date(2000, 12, 31)):
        for seq in ("001", "123", "999"):
            number = make_resident_id("410105", birth, seq)
            assert len(number) == 18
            assert parse_resident_id(number) == birth


def test_e2_refuses_bad_checksum() -> None:
    good = make_resident_id("410105", date(1980, 5, 20), "123")
    wrong = "0" if good[-1] != "0" else "1"
    with pytest.raises(ValueError, match="check character"):
        parse_resident_id(good[:17] + wrong)


def test_e2_refuses_wrong_length_and_letters() -> None:
    with pytest.raises(ValueError, match="18 characters"):
        parse_resident_id("41010519800520123")
    with pytest.raises(ValueError, match="17 digits"):
        parse_resident_id("4101051980052012AX")
    with pytest.raises(ValueError, match="17 digits"):
        parse_resident_id("４１０１０５１９８００５２０１２３Ｘ")  # full-width digits


def test_e2_refuses_impossible_birth_date() -> None:
    body = "410105" + "19990230" + "123"
    with pytest.raises(ValueError, match="19990230 is not a real date"):
        parse_resident_id(body + check_char(body))


def test_e2_make_resident_id_refuses_bad_parts() -> None:
    with pytest.raises(ValueError):
        make_resident_id("4101", date(1980, 1, 1), "123")
    with pytest.raises(ValueError):
        make_resident_id("410105", date(1980, 1, 1), "12")


def test_h3_mask_id_number() -> None:
    assert mask_id_number("410105198005201234") == "4101**********1234"
    assert len(mask_id_number(KNOWN_GOOD)) == 18


def test_h3_mask_phone() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("0371-6543210") == "********3210"
    assert mask_phone("1234") == "**34"


def test_h3_mask_pii_in_free_text() -> None:
    number = make_resident_id("410105", date(1980, 5, 20), "123")
    text = f"借款人张三，身份证{number}，手机13812345678，联系人电话 15900001111。"
    masked = mask_pii(text)
    assert number not in masked
    assert "13812345678" not in masked
    assert "15900001111" not in masked
    assert f"身份证{mask_id_number(number)}，" in masked
    assert "手机138****5678，" in masked
    assert "159****1111。" in masked


def test_h3_mask_pii_lowercase_x_and_letters_around() -> None:
    masked = mask_pii(f"id={KNOWN_GOOD.lower()}abc")
    assert masked == "id=1101**********002xabc"


def test_h3_mask_pii_leaves_other_numbers_alone() -> None:
    text = "account 6228480012345678901 amount 12000.00 loan L-2026-000123 phone 12345678901"
    # A 19-digit account is no ID; 12345678901 is no mainland mobile (second digit 2).
    assert mask_pii(text) == text


def test_h3_mask_pii_ignores_mobile_inside_longer_digit_run() -> None:
    assert mask_pii("ref 9913812345678") == "ref 9913812345678"
