"""Policy as data: the published file loads, and a bad file is refused naming the bad key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from domain.policy import PolicyFileError, load_policy
from settings import PROJECT_DIR

PUBLISHED = PROJECT_DIR / "policy" / "loanflow-2026.1.toml"


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = PUBLISHED.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "policy.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_published_policy_loads_with_the_rulebook_defaults() -> None:
    policy = load_policy(PUBLISHED)
    assert policy.version == "2026.1"
    assert policy.approval.county_authority_limit == Decimal("50000")  # rule A-2
    assert policy.contract.signing_window_days == 30  # rule C-1


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = _variant(tmp_path, "max_age_plus_term = 60", "max_age_plus_trem = 60")
    with pytest.raises(PolicyFileError, match=r"key 'eligibility\.max_age_plus_trem'"):
        load_policy(path)


def test_wrong_value_is_named(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'max_amount = "200000"', 'max_amount = "lots"')
    with pytest.raises(PolicyFileError, match=r"key 'eligibility\.max_amount'"):
        load_policy(path)


def test_inconsistent_values_are_refused(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'min_amount = "1000"', 'min_amount = "300000"')
    with pytest.raises(PolicyFileError, match="min_amount must not exceed max_amount"):
        load_policy(path)


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="does not exist"):
        load_policy(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("version = ", encoding="utf-8")
    with pytest.raises(PolicyFileError, match="not valid TOML"):
        load_policy(broken)


def test_post_loan_sections_default_to_the_rulebook() -> None:
    """Loans pinned to a file without these sections read the rulebook's numbers."""
    policy = load_policy(PUBLISHED)
    assert policy.repayment.interest_reminder_days == 5  # rule P-3
    assert policy.repayment.penalty_rate_multiplier == Decimal("1.5")  # rule P-5
    assert policy.inspection.first_check_days == 15  # rule K-1
    assert policy.collection.overdue_notice_days == 15  # rule D-2
    assert policy.classification.doubtful_max_dpd == 360  # rule F-1
    assert policy.extension.max_extensions == 1  # rule X-7


def test_allocation_order_names_each_bucket_once(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        PUBLISHED.read_text(encoding="utf-8")
        + '\n[repayment]\nallocation_order = ["penalty_interest", "penalty_interest"]\n',
        encoding="utf-8",
    )
    with pytest.raises(PolicyFileError, match="allocation_order"):
        load_policy(path)
