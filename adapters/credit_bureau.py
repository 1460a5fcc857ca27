"""The credit-bureau port (征信) and its embedded default, a deterministic fixture file (I-4)."""

from __future__ import annotations

import abc
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

from domain.loan import CreditReport


class CreditBureau(abc.ABC):
    @abc.abstractmethod
    def fetch(self, id_number: str, on: date) -> CreditReport: ...


def report_id(id_number: str, on: date) -> str:
    return "CR-" + hashlib.sha256((id_number + on.isoformat()).encode()).hexdigest()[:12]


class FixtureCreditBureau(CreditBureau):
    """A clean report for everyone, except the IDs the JSON file overrides.

    The file maps resident ID numbers to CreditReport fields; keys starting with
    "_" (such as "_comment") are ignored.
    """

    def __init__(self, path: Path) -> None:
        raw: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
        self._overrides = {k.upper(): v for k, v in raw.items() if not k.startswith("_")}
        # Fail at start-up, not on a loan: every override must be a valid report.
        for id_number in self._overrides:
            self.fetch(id_number, date(2000, 1, 1))

    def fetch(self, id_number: str, on: date) -> CreditReport:
        id_number = id_number.strip().upper()
        fields = {
            **self._overrides.get(id_number, {}),
            "report_id": report_id(id_number, on),
            "fetched_on": on,
        }
        return CreditReport.model_validate(fields)
