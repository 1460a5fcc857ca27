"""The loan's vocabulary: who acts, what is applied for, what each step records.

These are plain pydantic models (snapshots). They cross every boundary: the API
validates requests with them, the workflow carries them in its history, and
the rules read them. None of them is a database row.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from domain.text import ONE_LINE, SEVERAL_LINES, Text

# Yuan. Documented as what clients should send, a decimal string ("" is no amount); a JSON
# number is still accepted.
MONEY_PATTERN = r"^-?\d{1,12}(\.\d{1,2})?$"
Money = Annotated[
    Decimal,
    Field(max_digits=14, decimal_places=2),
    WithJsonSchema({"type": "string", "pattern": MONEY_PATTERN, "examples": ["30000.00"]}),
]
Rate = Annotated[Decimal, Field(gt=0, lt=1, max_digits=7, decimal_places=6)]
# Text fields: one line, or a comment of several lines (domain.text); limits come first.
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=100), ONE_LINE]
Comment = Annotated[str, StringConstraints(max_length=2000), SEVERAL_LINES]
# A person's name: no digits, so a phone or ID number never hides in it (H-3).
PersonName = Annotated[
    str, StringConstraints(min_length=1, max_length=50, pattern=r"^\D+$"), ONE_LINE
]
HouseholdId = Annotated[str, StringConstraints(min_length=4, max_length=32), ONE_LINE]
IdNumber = Annotated[str, StringConstraints(to_upper=True), ONE_LINE]
Phone = Annotated[str, StringConstraints(pattern=r"^1\d{10}$"), ONE_LINE]
# No policy may allow a longer term (EligibilityPolicy); longer is refused before any rule.
MAX_TERM_MONTHS = 600
TermMonths = Annotated[int, Field(ge=1, le=MAX_TERM_MONTHS)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Role(StrEnum):
    LOAN_OFFICER = "loan_officer"  # 客户经理
    REVIEWER = "reviewer"  # 审查岗
    APPROVER = "approver"  # 审批人
    BRANCH_HEAD = "branch_head"  # 支行行长 / 网点负责人
    POST_LOAN_MANAGER = "post_loan_manager"  # 贷后管理岗
    TELLER = "teller"  # 柜员: takes repayments at the counter
    AUDITOR = "auditor"  # 稽核
    ADMIN = "admin"


class Tier(StrEnum):
    """The two approval tiers of rule A-2."""

    COUNTY = "county"  # 县级支行
    PREFECTURE = "prefecture"  # 二级分行


class CreditGrade(StrEnum):
    """E-4 grades, best first."""

    AAA = "AAA"
    AA = "AA"
    A = "A"
    BBB = "BBB"
    BB = "BB"
    B = "B"
    C = "C"


class LoanClass(StrEnum):
    """Five-level classification (五级分类), F-1; best first."""

    NORMAL = "normal"  # 正常
    SPECIAL_MENTION = "special_mention"  # 关注
    SUBSTANDARD = "substandard"  # 次级
    DOUBTFUL = "doubtful"  # 可疑
    LOSS = "loss"  # 损失


CLASS_NAMES = {  # the Chinese names staff and notices use
    LoanClass.NORMAL: "正常",
    LoanClass.SPECIAL_MENTION: "关注",
    LoanClass.SUBSTANDARD: "次级",
    LoanClass.DOUBTFUL: "可疑",
    LoanClass.LOSS: "损失",
}


class Bucket(StrEnum):
    """Days-past-due buckets of the register, D-4."""

    CURRENT = "current"
    M1 = "M1"  # 1-30 days
    M2 = "M2"  # 31-60
    M3 = "M3"  # 61-90
    M3_PLUS = "M3+"  # over 90


class Purpose(StrEnum):
    """E-8 purposes."""

    CROP = "crop"
    FORESTRY = "forestry"
    LIVESTOCK = "livestock"
    FISHERY = "fishery"
    FARM_MACHINERY = "farm_machinery"
    INDUSTRY = "industry"
    TRADE = "trade"
    TRANSPORT = "transport"
    SERVICES = "services"
    EDUCATION = "education"
    MEDICAL = "medical"
    DURABLE_GOODS = "durable_goods"
    HOUSE_REPAIR = "house_repair"
    WEDDING_FUNERAL = "wedding_funeral"


class LongCycleCrop(StrEnum):
    """E-10: purposes that may run to the long-cycle term limit."""

    ORCHARD = "orchard"
    RUBBER = "rubber"
    MEDICINAL_HERBS = "medicinal_herbs"


class RepaymentMethod(StrEnum):
    """E-14 methods."""

    LUMP_SUM = "lump_sum"  # 利随本清
    INTEREST_MONTHLY = "interest_monthly"  # 按月结息, 到期还本
    INTEREST_QUARTERLY = "interest_quarterly"  # 按季结息, 到期还本
    EQUAL_INSTALLMENT = "equal_installment"  # 等额本息
    EQUAL_PRINCIPAL = "equal_principal"  # 等额本金


class GuaranteeType(StrEnum):
    """E-11 guarantee types."""

    CREDIT = "credit"  # 信用
    GUARANTEE = "guarantee"  # 保证
    MORTGAGE = "mortgage"  # 抵押
    PLEDGE = "pledge"  # 质押
    GROUP = "group"  # 联保

    @property
    def secured(self) -> bool:
        return self in (GuaranteeType.MORTGAGE, GuaranteeType.PLEDGE)


class Material(StrEnum):
    """E-13 application materials."""

    ID_CARD = "id_card"
    HOUSEHOLD_REGISTER = "household_register"
    INCOME_PROOF = "income_proof"
    BUSINESS_PROOF = "business_proof"  # land contract, planting/breeding contract
    CREDIT_RECORD = "credit_record"
    COLLATERAL_TITLE = "collateral_title"


class Applicant(_Model):
    name: PersonName
    id_number: IdNumber
    birth_date: date
    phone: Phone
    household_id: HouseholdId
    village: ShortText
    resident_months: int = Field(ge=0, le=1500)
    fixed_residence: bool
    full_civil_capacity: bool
    remote_area: bool = False
    settlement_account: Annotated[str, StringConstraints(pattern=r"^\d{8,30}$"), ONE_LINE]


class CreditRating(_Model):
    """The household's internal credit rating (信用等级评定), E-4."""

    score: int = Field(ge=0, le=100)
    rated_on: date


class Guarantor(_Model):
    name: PersonName
    id_number: IdNumber
    phone: Phone
    household_id: HouseholdId


class Collateral(_Model):
    description: ShortText
    title_number: ShortText
    location: ShortText
    appraised_value: Money = Field(gt=0)


class GroupMember(_Model):
    """A household of a joint-liability group (联保小组), E-12."""

    name: PersonName
    household_id: HouseholdId
    relative_of_applicant: bool = False


class LoanApplication(_Model):
    """What the household applies for (借款申请)."""

    applicant: Applicant
    household_annual_income: Money = Field(ge=0)
    amount: Money
    term_months: TermMonths
    purpose: Purpose
    long_cycle_crop: LongCycleCrop | None = None
    repayment_method: RepaymentMethod
    guarantee_type: GuaranteeType
    guarantors: list[Guarantor] = Field(default_factory=list, max_length=10)
    collateral: list[Collateral] = Field(default_factory=list, max_length=10)
    group_members: list[GroupMember] = Field(default_factory=list, max_length=30)
    credit_rating: CreditRating
    materials: list[Material] = Field(default_factory=list, max_length=len(Material))


class Actor(_Model):
    """The person acting, as the API's token identifies them; never from a request body."""

    username: Text
    name: Text
    role: Role
    branch: Text
    tier: Tier | None = None
    approval_limit: Money | None = None
    household_id: HouseholdId | None = None


class Stage(StrEnum):
    """Where a loan is; terminal stages end the workflow."""

    APPLIED = "applied"
    MATERIALS_INCOMPLETE = "materials_incomplete"
    INVESTIGATION = "investigation"
    REVIEW = "review"
    BRANCH_CONFIRMATION = "branch_confirmation"
    PREFECTURE_REVIEW = "prefecture_review"
    APPROVAL = "approval"
    SIGNING = "signing"
    DISBURSING = "disbursing"
    DISBURSED = "disbursed"  # paid out; loans from before servicing existed wait here
    REPAYING = "repaying"  # 还款中: post-loan management (贷后管理) runs the schedule
    CLOSED = "closed"  # 结清: everything repaid (P-7)
    WRITTEN_OFF = "written_off"  # 核销: off the balance sheet, still recovered (Z-1)
    REFUSED = "refused"  # failed eligibility at intake
    REJECTED = "rejected"  # rejected by an approver
    WITHDRAWN = "withdrawn"
    LAPSED = "lapsed"  # approval lapsed unsigned (C-1)

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STAGES


TERMINAL_STAGES = frozenset({Stage.REFUSED, Stage.REJECTED, Stage.WITHDRAWN, Stage.LAPSED})
# Stages in which a loan takes no more steps: ended unfunded, or repaid in full.
ENDED_STAGES = TERMINAL_STAGES | {Stage.CLOSED}
DECISION_STAGES = frozenset(
    {
        Stage.MATERIALS_INCOMPLETE,
        Stage.INVESTIGATION,
        Stage.REVIEW,
        Stage.BRANCH_CONFIRMATION,
        Stage.PREFECTURE_REVIEW,
        Stage.APPROVAL,
    }
)


class Recommendation(StrEnum):
    """I-2 recommendations."""

    APPROVE = "approve"
    REDUCE = "reduce"
    REJECT = "reject"


class InvestigationReport(_Model):
    """One officer's on-site investigation (贷前调查报告), I-1..I-3."""

    materials_genuine: bool
    household_assets_and_credit: Comment = Field(min_length=1)
    business_and_cash_flow: Comment = Field(min_length=1)
    purpose_legal: bool
    repayment_ability_and_willingness: Comment = Field(min_length=1)
    guarantor_assessment: Comment = ""
    collateral_assessment: Comment = ""
    family_consent_recorded: bool  # I-3
    interview_confirmed_by_borrower: bool  # I-1
    recommendation: Recommendation
    amount: Money | None = Field(default=None, gt=0)
    term_months: TermMonths | None = None
    annual_rate: Rate | None = None
    comment: Comment = ""

    @model_validator(mode="after")
    def _terms_when_lending(self) -> InvestigationReport:
        if self.recommendation is not Recommendation.REJECT and (
            self.amount is None or self.term_months is None or self.annual_rate is None
        ):
            raise ValueError("a recommendation to lend states amount, term_months and annual_rate")
        return self


class ReviewOutcome(StrEnum):
    FORWARD = "forward"  # pass on to the next step with an opinion
    RETURN = "return"  # back to investigation


class Review(_Model):
    """A reviewer's or branch head's opinion (审查意见 / 行长确认)."""

    outcome: ReviewOutcome
    comment: Comment = Field(min_length=1)


class DecisionOutcome(StrEnum):
    APPROVE = "approve"
    RETURN = "return"
    REJECT = "reject"


class Decision(_Model):
    """An approver's decision (审批决定), A-3."""

    outcome: DecisionOutcome
    amount: Money | None = Field(default=None, gt=0)
    term_months: TermMonths | None = None
    annual_rate: Rate | None = None
    # A shorter term may need another method (E-14); None keeps the one applied for.
    repayment_method: RepaymentMethod | None = None
    conditions: list[ShortText] = Field(default_factory=list, max_length=20)
    reason: Comment = ""

    @model_validator(mode="after")
    def _complete(self) -> Decision:
        if self.outcome is DecisionOutcome.APPROVE:
            if self.amount is None or self.term_months is None or self.annual_rate is None:
                raise ValueError("an approval states amount, term_months and annual_rate")
        elif not self.reason:
            raise ValueError("a return or rejection states its reason")
        return self


class ContractSigning(_Model):
    """Confirmation that the contracts are signed and conditions met (C-1, C-2)."""

    contract_number: ShortText
    signed_on: date
    guarantee_contracts_signed: bool = False
    collateral_registered: bool = False
    conditions_met: list[ShortText] = Field(default_factory=list, max_length=20)


class ApprovedTerms(_Model):
    """What was approved: the basis of the contract and the schedule."""

    amount: Money
    term_months: int
    annual_rate: Rate
    repayment_method: RepaymentMethod
    conditions: list[str] = Field(default_factory=list)
    approved_by: str
    approved_at: datetime


class Installment(_Model):
    """One line of the repayment schedule (还款计划), C-4."""

    number: int
    due_date: date
    principal: Money
    interest: Money
    payment: Money
    remaining_principal: Money
    days: int


class CreditReport(_Model):
    """The credit bureau's record of the borrower (征信报告), pulled by an activity (I-4)."""

    report_id: str
    fetched_on: date
    overdue_loans: int = Field(0, ge=0)  # E-5
    overdue_from_declared_disaster: bool = False  # E-5 exception: disaster or policy
    fraud_or_debt_evasion: bool = False  # E-6
    criminal_record: bool = False  # E-6, negligent offences excepted
    gambling_or_drugs: bool = False  # E-6
    banned_business: bool = False  # E-6
    outstanding_loans_elsewhere: Money = Decimal("0")
    remarks: list[str] = Field(default_factory=list)


class HouseholdStanding(_Model):
    """What the register says about the applying household (E-7, E-12, E-15, A-4)."""

    # E-7: another open application or loan of the household
    claimed_by_other_loan: str | None = None
    # E-15: the household's other applications within the window
    recent_amounts: list[Money] = Field(default_factory=list)
    # E-12: member households already in another group (or overdue)
    group_conflicts: list[str] = Field(default_factory=list)
    # the household has borrowed before
    returning_customer: bool = False
