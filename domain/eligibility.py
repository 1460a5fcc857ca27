"""Eligibility (准入), rules E-1 to E-15: what an application must satisfy at intake.

Every check returns a list of refusals (empty when the rule holds) so an officer
sees every problem at once, not one per attempt.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.bounds import check_bounds
from domain.errors import Refusal, ViolationKind
from domain.ids import parse_resident_id
from domain.loan import (
    CreditGrade,
    CreditReport,
    GuaranteeType,
    HouseholdStanding,
    LoanApplication,
    Material,
    Purpose,
    RepaymentMethod,
)
from domain.money import has_at_most_cents
from domain.policy import EligibilityPolicy, Policy

_GRADE_ORDER = list(CreditGrade)  # best first

SHORT_TERM_METHODS = frozenset(
    {RepaymentMethod.LUMP_SUM, RepaymentMethod.INTEREST_MONTHLY, RepaymentMethod.INTEREST_QUARTERLY}
)
LONG_TERM_METHODS = frozenset({RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL})

PRODUCTION_OR_BUSINESS = frozenset(
    {
        Purpose.CROP,
        Purpose.FORESTRY,
        Purpose.LIVESTOCK,
        Purpose.FISHERY,
        Purpose.FARM_MACHINERY,
        Purpose.INDUSTRY,
        Purpose.TRADE,
        Purpose.TRANSPORT,
        Purpose.SERVICES,
    }
)
LONG_CYCLE_PURPOSES = frozenset({Purpose.CROP, Purpose.FORESTRY})
ALWAYS_REQUIRED = (
    Material.ID_CARD,
    Material.HOUSEHOLD_REGISTER,
    Material.INCOME_PROOF,
    Material.CREDIT_RECORD,
)


def yuan(amount: Decimal) -> str:
    """``12,345.60`` for messages."""
    return f"{amount:,.2f}"


def _plain(number: Decimal) -> str:
    """A Decimal without exponent or trailing zeros: 10, 1.5, 0.58."""
    text = f"{number:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(ratio: Decimal) -> str:
    """``0.125`` -> ``12.5%`` for messages."""
    return _plain(ratio * 100) + "%"


def _refusal(
    rule: str, message: str, field: str | None, kind: ViolationKind = ViolationKind.INVALID
) -> Refusal:
    return Refusal(rule=rule, message=message, field=field, kind=kind)


# --- E-4 grades ---


def credit_grade(score: int, policy: EligibilityPolicy) -> CreditGrade:
    """The grade of a score (rule E-4): floors inclusive, below the lowest floor is C."""
    for grade in _GRADE_ORDER:
        floor = policy.grade_floors.get(grade)
        if floor is not None and score >= floor:
            return grade
    return CreditGrade.C


def grade_at_least(grade: CreditGrade, minimum: CreditGrade) -> bool:
    """True when ``grade`` is ``minimum`` or better (AAA best, C worst)."""
    return _GRADE_ORDER.index(grade) <= _GRADE_ORDER.index(minimum)


def age_on(birth: date, on: date) -> int:
    """Age in full years (周岁) on a day."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


# --- E-8, E-10, E-13, E-14 lookups ---


def is_production_or_business(purpose: Purpose) -> bool:
    """Farm production or non-farm business, as opposed to consumption (rule E-8)."""
    return purpose in PRODUCTION_OR_BUSINESS


def allowed_methods(term_months: int, policy: EligibilityPolicy) -> frozenset[RepaymentMethod]:
    """Repayment methods a term allows (rule E-14)."""
    if term_months <= policy.short_term_max_months:
        return SHORT_TERM_METHODS
    return LONG_TERM_METHODS


def max_term_for(app: LoanApplication, policy: EligibilityPolicy) -> int:
    """Longest term the application may ask for (rule E-10): long-cycle crops go further."""
    if app.long_cycle_crop is not None and app.purpose in LONG_CYCLE_PURPOSES:
        return policy.max_term_months_long_cycle
    return policy.max_term_months


def missing_materials(app: LoanApplication) -> list[Material]:
    """Required materials not yet supplied (rule E-13), in the order of ``Material``."""
    required = set(ALWAYS_REQUIRED)
    if is_production_or_business(app.purpose):
        required.add(Material.BUSINESS_PROOF)
    if app.guarantee_type.secured:
        required.add(Material.COLLATERAL_TITLE)
    supplied = set(app.materials)
    return [m for m in Material if m in required and m not in supplied]


# --- the application on its own ---


def check_application(app: LoanApplication, policy: Policy, today: date) -> list[Refusal]:
    """Every application-only rule (E-1..E-4, E-8..E-12, E-14); all failures listed.

    An amount or term out of the policy's bounds is refused alone: no rule reads it."""
    rules = policy.eligibility
    out_of_bounds = check_bounds(app, rules)
    if out_of_bounds:
        return out_of_bounds
    return [
        *_check_age(app, rules, today),
        *_check_identity(app, today),
        *_check_residence(app, rules),
        *_check_rating(app, rules, today),
        *_check_purpose(app),
        *_check_amount(app, rules),
        *_check_term(app, rules),
        *_check_guarantee(app, rules),
        *_check_group(app, rules),
        *_check_method(app, rules),
    ]


def _check_identity(app: LoanApplication, today: date) -> list[Refusal]:
    """Rule E-2: a valid resident ID matching the stated birth date; full civil capacity."""
    out: list[Refusal] = []
    person = app.applicant
    try:
        id_birth = parse_resident_id(person.id_number)
    except ValueError as exc:
        out.append(_refusal("E-2", str(exc), "applicant.id_number"))
    else:
        if id_birth != person.birth_date:
            out.append(
                _refusal(
                    "E-2",
                    f"birth date {id_birth} in the resident ID does not match "
                    f"the stated birth date {person.birth_date}",
                    "applicant.birth_date",
                )
            )
    if person.birth_date > today:
        out.append(
            _refusal(
                "E-2", f"birth date {person.birth_date} is in the future", "applicant.birth_date"
            )
        )
    if not person.full_civil_capacity:
        out.append(
            _refusal(
                "E-2",
                "applicant does not have full civil capacity (完全民事行为能力)",
                "applicant.full_civil_capacity",
            )
        )
    return out


def _check_age(app: LoanApplication, rules: EligibilityPolicy, today: date) -> list[Refusal]:
    """Rule E-1: adult, and age plus term (in years, exact) within the limit."""
    birth = app.applicant.birth_date
    if birth > today:
        return []  # no meaningful age; E-2 refuses the date
    out: list[Refusal] = []
    age = age_on(birth, today)
    if age < rules.min_age:
        out.append(
            _refusal(
                "E-1", f"age {age} is under the minimum age {rules.min_age}", "applicant.birth_date"
            )
        )
    years = Decimal(app.term_months) / 12
    total = age + years
    if total > rules.max_age_plus_term:
        shown = _plain(years.quantize(Decimal("0.01")))
        shown_total = _plain(total.quantize(Decimal("0.01")))
        out.append(
            _refusal(
                "E-1",
                f"age {age} + term {shown} years = {shown_total} exceeds {rules.max_age_plus_term}",
                "term_months",
            )
        )
    return out


def _check_residence(app: LoanApplication, rules: EligibilityPolicy) -> list[Refusal]:
    """Rule E-3: resident in the service area long enough, with a fixed residence."""
    out: list[Refusal] = []
    months = app.applicant.resident_months
    if months < rules.min_residence_months:
        out.append(
            _refusal(
                "E-3",
                f"resident {months} months in the service area; "
                f"at least {rules.min_residence_months} months required",
                "applicant.resident_months",
            )
        )
    if not app.applicant.fixed_residence:
        out.append(_refusal("E-3", "applicant has no fixed residence", "applicant.fixed_residence"))
    return out


def _check_rating(app: LoanApplication, rules: EligibilityPolicy, today: date) -> list[Refusal]:
    """Rule E-4: score high enough, rating current."""
    out: list[Refusal] = []
    rating = app.credit_rating
    if rating.score < rules.min_credit_score:
        out.append(
            _refusal(
                "E-4",
                f"credit score {rating.score} is below the minimum {rules.min_credit_score}",
                "credit_rating.score",
            )
        )
    if rating.rated_on > today:
        out.append(
            _refusal(
                "E-4",
                f"credit rating date {rating.rated_on} is in the future (today is {today})",
                "credit_rating.rated_on",
            )
        )
    else:
        age_days = (today - rating.rated_on).days
        if age_days > rules.rating_valid_days:
            out.append(
                _refusal(
                    "E-4",
                    f"credit rating of {rating.rated_on} is {age_days} days old; "
                    f"a rating is valid for {rules.rating_valid_days} days",
                    "credit_rating.rated_on",
                )
            )
    return out


def _check_purpose(app: LoanApplication) -> list[Refusal]:
    """Rule E-8: a long-cycle crop only goes with crop or forestry production."""
    if app.long_cycle_crop is not None and app.purpose not in LONG_CYCLE_PURPOSES:
        return [
            _refusal(
                "E-8",
                f"long-cycle crop {app.long_cycle_crop} does not fit purpose {app.purpose}; "
                "only crop or forestry production has long-cycle crops",
                "long_cycle_crop",
            )
        ]
    return []


def _check_amount(app: LoanApplication, rules: EligibilityPolicy) -> list[Refusal]:
    """Rule E-9: amount within bounds, income ratio and, for credit loans, the grade's line."""
    out: list[Refusal] = []
    amount = app.amount
    if not has_at_most_cents(amount):
        out.append(_refusal("E-9", f"amount {amount} has more than two decimals", "amount"))
    if amount < rules.min_amount:
        out.append(
            _refusal(
                "E-9",
                f"amount {yuan(amount)} is below the minimum {yuan(rules.min_amount)}",
                "amount",
            )
        )
    if amount > rules.max_amount:
        out.append(
            _refusal(
                "E-9",
                f"amount {yuan(amount)} exceeds the maximum {yuan(rules.max_amount)}",
                "amount",
            )
        )
    cap = app.household_annual_income * rules.max_income_ratio
    if amount > cap:
        out.append(
            _refusal(
                "E-9",
                f"amount {yuan(amount)} exceeds {percent(rules.max_income_ratio)} of "
                f"household annual income {yuan(app.household_annual_income)} ({yuan(cap)})",
                "amount",
            )
        )
    if app.guarantee_type is GuaranteeType.CREDIT:
        grade = credit_grade(app.credit_rating.score, rules)
        line = rules.credit_line_by_grade[grade]
        if amount > line:
            out.append(
                _refusal(
                    "E-9",
                    f"credit loan of {yuan(amount)} exceeds the credit line {yuan(line)} "
                    f"of grade {grade} (score {app.credit_rating.score})",
                    "amount",
                )
            )
    return out


def _check_term(app: LoanApplication, rules: EligibilityPolicy) -> list[Refusal]:
    """Rule E-10: term within bounds; long-cycle crops may go longer."""
    term = app.term_months
    if term < rules.min_term_months:
        return [
            _refusal(
                "E-10",
                f"term {term} months is below the minimum {rules.min_term_months} months",
                "term_months",
            )
        ]
    limit = max_term_for(app, rules)
    if term > limit:
        note = (
            ""
            if limit == rules.max_term_months_long_cycle
            else f" ({rules.max_term_months_long_cycle} for orchards, rubber or medicinal herbs)"
        )
        return [
            _refusal(
                "E-10",
                f"term {term} months exceeds the maximum {limit} months{note}",
                "term_months",
            )
        ]
    return []


def _check_guarantee(app: LoanApplication, rules: EligibilityPolicy) -> list[Refusal]:
    """Rule E-11: grade for credit loans; guarantor or collateral details for the others."""
    out: list[Refusal] = []
    kind = app.guarantee_type
    if kind is GuaranteeType.CREDIT:
        grade = credit_grade(app.credit_rating.score, rules)
        minimum = rules.min_grade_for_credit_loan
        if not grade_at_least(grade, minimum):
            out.append(
                _refusal(
                    "E-11",
                    f"credit (unsecured) loans need grade {minimum} or better; "
                    f"the household is graded {grade} (score {app.credit_rating.score})",
                    "guarantee_type",
                )
            )
    elif kind is GuaranteeType.GUARANTEE:
        if not app.guarantors:
            out.append(
                _refusal("E-11", "a guaranteed loan needs at least one guarantor", "guarantors")
            )
        for i, guarantor in enumerate(app.guarantors):
            try:
                parse_resident_id(guarantor.id_number)
            except ValueError as exc:
                out.append(
                    _refusal(
                        "E-11",
                        f"guarantor {guarantor.name}: {exc}",
                        f"guarantors.{i}.id_number",
                    )
                )
            if guarantor.household_id == app.applicant.household_id:
                out.append(
                    _refusal(
                        "E-11",
                        f"guarantor {guarantor.name} belongs to the applicant's household "
                        f"{app.applicant.household_id}",
                        f"guarantors.{i}.household_id",
                    )
                )
    elif kind.secured and not app.collateral:
        out.append(
            _refusal("E-11", f"a {kind} loan needs at least one item of collateral", "collateral")
        )
    return out


def _check_group(app: LoanApplication, rules: EligibilityPolicy) -> list[Refusal]:
    """Rule E-12: a joint-liability group (联保小组) of enough distinct, unrelated households."""
    if app.guarantee_type is not GuaranteeType.GROUP:
        if app.group_members:
            # Members would be locked into a group the loan does not have.
            return [
                _refusal(
                    "E-12",
                    f"group members are only for a group (联保) loan, not a {app.guarantee_type}",
                    "group_members",
                )
            ]
        return []
    out: list[Refusal] = []
    own = app.applicant.household_id
    seen: set[str] = set()
    repeated: list[str] = []
    for member in app.group_members:
        hid = member.household_id
        if hid == own:
            out.append(
                _refusal(
                    "E-12",
                    f"group member {member.name} is of the applicant's own household {own}",
                    "group_members",
                )
            )
        elif hid in seen:
            repeated.append(hid)
        seen.add(hid)
        if member.relative_of_applicant:
            out.append(
                _refusal(
                    "E-12",
                    f"group member {member.name} is a relative of the applicant",
                    "group_members",
                )
            )
    if repeated:
        out.append(
            _refusal(
                "E-12",
                "households appear more than once in the group: "
                + ", ".join(sorted(set(repeated))),
                "group_members",
            )
        )
    households = 1 + len(seen - {own})
    if households < rules.group_min_members:
        out.append(
            _refusal(
                "E-12",
                f"the group has {households} households including the applicant's; "
                f"at least {rules.group_min_members} required",
                "group_members",
            )
        )
    return out


def _check_method(app: LoanApplication, rules: EligibilityPolicy) -> list[Refusal]:
    """Rule E-14: the repayment method fits the term."""
    allowed = allowed_methods(app.term_months, rules)
    if app.repayment_method in allowed:
        return []
    return [method_refusal(app.repayment_method, app.term_months, rules, "repayment_method")]


def method_refusal(
    method: RepaymentMethod, term_months: int, rules: EligibilityPolicy, field: str | None
) -> Refusal:
    """The E-14 refusal for a method the term does not allow (shared with approval)."""
    allowed = allowed_methods(term_months, rules)
    names = ", ".join(m.value for m in RepaymentMethod if m in allowed)
    side = "up to" if term_months <= rules.short_term_max_months else "over"
    return _refusal(
        "E-14",
        f"repayment method {method} is not allowed for a term of {term_months} months; "
        f"terms {side} {rules.short_term_max_months} months allow: {names}",
        field,
    )


# --- the credit bureau and the register ---


def check_credit_report(report: CreditReport) -> list[Refusal]:
    """Rules E-5 (no overdue loan) and E-6 (prohibited borrowers) on the bureau's report."""
    out: list[Refusal] = []
    if report.overdue_loans > 0 and not report.overdue_from_declared_disaster:
        out.append(
            _refusal(
                "E-5",
                f"credit report {report.report_id} shows {report.overdue_loans} overdue loan(s) "
                "not caused by a declared disaster or policy",
                None,
                ViolationKind.CONFLICT,
            )
        )
    flags = (
        (report.fraud_or_debt_evasion, "a record of defrauding a bank or evading debt"),
        (report.criminal_record, "a criminal record"),
        (report.gambling_or_drugs, "a record of gambling or drug use"),
        (report.banned_business, "a banned business"),
    )
    for flagged, what in flags:
        if flagged:
            out.append(
                _refusal(
                    "E-6",
                    f"credit report {report.report_id} shows {what}",
                    None,
                    ViolationKind.CONFLICT,
                )
            )
    return out


def check_household(
    app: LoanApplication, standing: HouseholdStanding, policy: Policy
) -> list[Refusal]:
    """Rules E-7 (one loan per household), E-12 (group register) and E-15 (no splitting)."""
    # approval imports this module for its E-9/E-10/E-14 re-checks.
    from domain.approval import approval_tier, tier_at_least

    out: list[Refusal] = []
    household = app.applicant.household_id
    if standing.claimed_by_other_loan:
        out.append(
            _refusal(
                "E-7",
                f"household {household} already has an open application or loan "
                f"({standing.claimed_by_other_loan}); only one member may borrow at a time",
                "applicant.household_id",
                ViolationKind.CONFLICT,
            )
        )
    if standing.group_conflicts:
        out.append(
            _refusal(
                "E-12",
                "joint-liability group conflicts: " + "; ".join(standing.group_conflicts),
                "group_members",
                ViolationKind.CONFLICT,
            )
        )
    if standing.recent_amounts:
        recent = sum(standing.recent_amounts, Decimal(0))
        total = recent + app.amount
        alone = approval_tier(app.amount, policy)
        combined = approval_tier(total, policy)
        if not tier_at_least(alone, combined):
            out.append(
                _refusal(
                    "E-15",
                    f"with the household's other applications of the last "
                    f"{policy.eligibility.split_window_days} days ({yuan(recent)}), the total "
                    f"{yuan(total)} needs {combined} approval, while {yuan(app.amount)} alone "
                    f"needs {alone} approval; splitting a loan (化整为零) is refused",
                    "amount",
                    ViolationKind.CONFLICT,
                )
            )
    return out


def group_households(app: LoanApplication) -> list[str]:
    """E-12: the households a group loan binds, the applicant's first; none for other loans."""
    if app.guarantee_type is not GuaranteeType.GROUP:
        return []
    return [app.applicant.household_id, *(m.household_id for m in app.group_members)]


def check_register_credit(
    register_score: int | None, blacklisted: bool, policy: Policy
) -> list[Refusal]:
    """Rules E-4 and E-6 against the cooperative's own register: a household on the D-5
    blacklist is refused, and a score lowered by F-2 events counts instead of the rating's."""
    out: list[Refusal] = []
    if blacklisted:
        out.append(
            _refusal(
                "E-6",
                "the household is on the internal blacklist of wilful defaulters (D-5)",
                "applicant.household_id",
                ViolationKind.CONFLICT,
            )
        )
    floor = policy.eligibility.min_credit_score
    if register_score is not None and register_score < floor:
        out.append(
            _refusal(
                "E-4",
                f"the household's credit score in the register is {register_score} after "
                f"overdue loans (F-2), below the minimum {floor}",
                "credit_rating.score",
                ViolationKind.CONFLICT,
            )
        )
    return out
