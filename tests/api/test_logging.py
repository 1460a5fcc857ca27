"""Rule H-3: ID and phone numbers are masked in logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from api.logging import PiiMaskingFilter, configure_logging

ID_NUMBER = "11010519491231002X"
PHONE = "13812345678"


@pytest.fixture
def masked_root(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    configure_logging(logging.INFO)
    yield
    root.setLevel(level)
    for handler in root.handlers:
        for f in [f for f in handler.filters if isinstance(f, PiiMaskingFilter)]:
            handler.removeFilter(f)


@pytest.mark.usefixtures("masked_root")
def test_id_and_phone_are_masked_in_message_and_args(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("loanflow.test")

    logger.info(f"applicant {ID_NUMBER} phone {PHONE}")
    logger.info("applicant %s phone %s, %d guarantors", ID_NUMBER, PHONE, 2)
    logger.info("payload %(body)s", {"body": {"id_number": ID_NUMBER}})

    assert ID_NUMBER not in caplog.text and PHONE not in caplog.text
    assert "1101**********002X" in caplog.text
    assert "138****5678" in caplog.text
    assert "2 guarantors" in caplog.text
    assert len(caplog.records) == 3


@pytest.mark.usefixtures("masked_root")
def test_tracebacks_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise ValueError(f"bad applicant {ID_NUMBER}")
    except ValueError:
        logging.getLogger("loanflow.test").exception("intake failed")

    assert ID_NUMBER not in caplog.text
    assert "1101**********002X" in caplog.text


def test_filter_is_installed_once(masked_root: None) -> None:
    configure_logging(logging.INFO)

    for handler in logging.getLogger().handlers:
        assert sum(isinstance(f, PiiMaskingFilter) for f in handler.filters) == 1
