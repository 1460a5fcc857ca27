"""Logging with personal data masked (rule H-3): ID and phone numbers never reach a log."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from domain.ids import mask_pii

# uvicorn's loggers do not propagate to the root, and the access log carries request paths.
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_UNTOUCHED = (int, float, bool, type(None))  # formatters may rely on these, e.g. %d


def _mask_arg(value: Any) -> Any:
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, _UNTOUCHED):
        return value
    # An object whose text holds personal data (a model, an exception) is replaced by its
    # masked text; anything else is kept so that formatters reading the args still work.
    text = str(value)
    masked = mask_pii(text)
    return value if masked == text else masked


class PiiMaskingFilter(logging.Filter):
    """Masks resident ID and mobile numbers in a record's message, arguments and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_pii(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {key: _mask_arg(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_mask_arg(value) for value in record.args)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_pii(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_pii(record.stack_info)
        return True


def install_pii_filter() -> None:
    """Put the masking filter on the root's and uvicorn's handlers; safe to call again.

    Handler filters (unlike logger filters) also see records propagated from child loggers.
    """
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in _SERVER_LOGGERS]
    handlers = [handler for logger in loggers for handler in logger.handlers]
    if logging.lastResort is not None:  # used while the root has no handler of its own
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, PiiMaskingFilter) for f in handler.filters):
            handler.addFilter(PiiMaskingFilter())


def configure_logging(level: int | str = logging.INFO) -> None:
    """Log to stderr at ``level`` with personal data masked."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
    install_pii_filter()
