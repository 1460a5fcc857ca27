"""Credit-bureau activities: the credit record is pulled, never typed by hand (rule I-4)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from temporalio import activity

from adapters.credit_bureau import CreditBureau
from domain.calendar import china_date
from domain.ids import mask_id_number
from domain.loan import CreditReport


class CreditReportRequest(BaseModel):
    loan_id: str
    id_number: str


class CreditBureauActivities:
    def __init__(self, bureau: CreditBureau) -> None:
        self._bureau = bureau

    @activity.defn
    def fetch_credit_report(self, inp: CreditReportRequest) -> CreditReport:
        report = self._bureau.fetch(inp.id_number, china_date(datetime.now(UTC)))
        activity.logger.info(
            "credit report %s for loan %s, borrower %s",
            report.report_id,
            inp.loan_id,
            mask_id_number(inp.id_number),  # rule H-3
        )
        return report
