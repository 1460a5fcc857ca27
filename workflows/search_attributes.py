"""Search attributes the loan workflow keeps current, so the Temporal UI and the API can list loans.

The run command registers them on the embedded dev server; on an existing cluster
`python manage.py register-search-attributes` does it once.
"""

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.common import SearchAttributeKey

LOAN_STAGE = SearchAttributeKey.for_keyword("LoanStage")
LOAN_BRANCH = SearchAttributeKey.for_keyword("LoanBranch")
PENDING_ROLE = SearchAttributeKey.for_keyword("LoanPendingRole")
LOAN_OFFICER = SearchAttributeKey.for_keyword("LoanOfficer")

ALL_KEYS = (LOAN_STAGE, LOAN_BRANCH, PENDING_ROLE, LOAN_OFFICER)


def registrations() -> dict[str, IndexedValueType.ValueType]:
    """The attributes as the operator service registers them (all keywords)."""
    return {key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in ALL_KEYS}
