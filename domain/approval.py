"""Review, tiered approval and signing (审查, 审批, 签约): rules A-1..A-4, C-1, C-2.

Who may act is checked here too (A-1 separation of duties, A-2 authority
limits); those refusals are FORBIDDEN, the rest INVALID or CONFLICT.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from domain.calendar import WorkingCalendar
from domain.eligibility import allowed_methods, method_refusal, percent, yuan
from domain.errors import Refusal, ViolationKind
from domain.loan import (
    Actor,
    ContractSigning,
    Decision,
    DecisionOutcome,
    GuaranteeType,
    LoanApplication,
    Role,
    Stage,
    Tier,
)
from domain.policy import Policy

_TIER_ORDER = [Tier.COUNTY, Tier.PREFECTURE]  # lowest authority first

_STAGES = {
    Tier.COUNTY: [Stage.REVIEW, Stage.APPROVAL],
    Tier.PREFECTURE: [
        Stage.REVIEW,
        Stage.BRANCH_CONFIRMATION,
        Stage.PREFECTURE_REVIEW,
        Stage.APPROVAL,
    ],
}

# roles that must not have investigated the loan they act on.

_FORBIDDEN = ViolationKind.FORBIDDEN
_INVALID = ViolationKind.INVALID
_CONFLICT = ViolationKind.CONFLICT


def approval_tier(amount: Decimal, policy: Policy) -> Tier:
    """The tier that approves an amount (rule A-2)."""
    if amount > policy.approval.county_authority_limit:
        return Tier.PREFECTURE
    return Tier.COUNTY


def tier_at_least(tier: Tier, minimum: Tier) -> bool:
    """True when ``tier`` has at least the authority of ``minimum``."""
    return _TIER_ORDER.index(tier) >= _TIER_ORDER.index(minimum)


def decision_stages(tier: Tier) -> list[Stage]:
    """The route after investigation (rule A-2)."""
    return list(_STAGES[tier])


def sla_working_days(returning_customer: bool, remote_area: bool, policy: Policy) -> int:
    """Working days from complete materials to decision (rule A-4, 限时办结)."""
    rules = policy.approval
    days = rules.sla_working_days_returning if returning_customer else rules.sla_working_days_new
    if remote_area:
        days += rules.sla_extra_working_days_remote
    return days


def decision_deadline(
    materials_complete_on: date,
    returning_customer: bool,
    remote_area: bool,
    policy: Policy,
    calendar: WorkingCalendar,
) -> date:
    """The last day for the decision (rules A-4, A-5); the clock starts with complete materials."""
    days = sla_working_days(returning_customer, remote_area, policy)
    return calendar.add_working_days(materials_complete_on, days)


def check_separation(
    actor: Actor, *, borrower_household_id: str, investigators: set[str], reviewers: set[str]
) -> list[Refusal]:
    """Rule A-1 (审贷分离): investigator, reviewer and approver are different people,
    and nobody acts on a loan to their own household.

    Called for the review, confirmation and approval steps: an investigator is refused
    there whatever role they hold.
    """
    out: list[Refusal] = []
    if actor.username in investigators:
        out.append(
            Refusal(
                rule="A-1",
                message=f"{actor.name} ({actor.username}) investigated this loan "
                f"and may not act on it as {actor.role}",
                kind=_FORBIDDEN,
            )
        )
    if actor.role is Role.APPROVER and actor.username in reviewers:
        out.append(
            Refusal(
                rule="A-1",
                message=f"{actor.name} ({actor.username}) reviewed this loan "
                "and may not approve it",
                kind=_FORBIDDEN,
            )
        )
    if actor.household_id is not None and actor.household_id == borrower_household_id:
        out.append(
            Refusal(
                rule="A-1",
                message=f"{actor.name} ({actor.username}) belongs to the borrower's household "
                f"{borrower_household_id}; nobody acts on a loan to their own household",
                kind=_FORBIDDEN,
            )
        )
    return out


def check_authority(actor: Actor, amount: Decimal, tier: Tier) -> list[Refusal]:
    """Rule A-2 (and X-4 for an extension): the approver's personal limit covers ``amount``
    (the amount applied for: approving less must not route a loan around the approver it
    needs) and their tier is the loan's."""
    out: list[Refusal] = []
    if actor.approval_limit is None:
        out.append(
            Refusal(
                rule="A-2",
                message=f"{actor.name} ({actor.username}) has no approval limit",
                kind=_FORBIDDEN,
            )
        )
    elif amount > actor.approval_limit:
        out.append(
            Refusal(
                rule="A-2",
                message=f"a loan of {yuan(amount)} exceeds {actor.name}'s "
                f"approval limit {yuan(actor.approval_limit)}",
                kind=_FORBIDDEN,
            )
        )
    if actor.tier is None or not tier_at_least(actor.tier, tier):
        held = "no tier" if actor.tier is None else f"{actor.tier} tier"
        out.append(
            Refusal(
                rule="A-2",
                message=f"this loan needs {tier}-tier approval; {actor.name} holds {held}",
                kind=_FORBIDDEN,
            )
        )
    return out


def decision_actor(stage: Stage, tier: Tier, branch: str, prefecture: str) -> tuple[Role, str]:
    """Rule A-2: who acts at each step of the decision route, and at which branch."""
    if stage is Stage.REVIEW:
        return Role.REVIEWER, branch
    if stage is Stage.BRANCH_CONFIRMATION:
        return Role.BRANCH_HEAD, branch
    if stage is Stage.PREFECTURE_REVIEW:
        return Role.REVIEWER, prefecture
    if stage is Stage.APPROVAL:
        return Role.APPROVER, branch if tier is Tier.COUNTY else prefecture
    raise ValueError(f"{stage} is not a step of the decision route")


def check_decision(
    decision: Decision, actor: Actor, app: LoanApplication, tier: Tier, policy: Policy
) -> list[Refusal]:
    """Rules A-2 and A-3 on an approval, and E-9/E-10/E-14/P-1 on the approved terms.

    A return or rejection needs nothing beyond the model's own validation.
    """
    if decision.outcome is not DecisionOutcome.APPROVE:
        return []
    # The Decision model guarantees these on an approval.
    assert decision.amount is not None
    assert decision.term_months is not None
    assert decision.annual_rate is not None
    amount, term, rate = decision.amount, decision.term_months, decision.annual_rate
    # measured on the amount applied for, so approving less never bypasses an approver.
    out = check_authority(actor, max(amount, app.amount), tier)

    # an approval may lower the amount or term, never raise them.
    if amount > app.amount:
        out.append(
            Refusal(
                rule="A-3",
                message=f"approved amount {yuan(amount)} exceeds the requested {yuan(app.amount)}",
                field="decision.amount",
            )
        )
    if term > app.term_months:
        out.append(
            Refusal(
                rule="A-3",
                message=f"approved term {term} months exceeds the requested "
                f"{app.term_months} months",
                field="decision.term_months",
            )
        )

    # The approved terms must still be lendable.
    rules = policy.eligibility
    if amount < rules.min_amount:
        out.append(
            Refusal(
                rule="E-9",
                message=f"approved amount {yuan(amount)} is below the minimum "
                f"{yuan(rules.min_amount)}",
                field="decision.amount",
            )
        )
    if term < rules.min_term_months:
        out.append(
            Refusal(
                rule="E-10",
                message=f"approved term {term} months is below the minimum "
                f"{rules.min_term_months} months",
                field="decision.term_months",
            )
        )
    method = decision.repayment_method or app.repayment_method
    if method not in allowed_methods(term, rules):
        out.append(method_refusal(method, term, rules, "decision.repayment_method"))
    band = policy.interest
    if not band.min_annual_rate <= rate <= band.max_annual_rate:
        out.append(
            Refusal(
                rule="P-1",
                message=f"annual rate {percent(rate)} is outside the band "
                f"{percent(band.min_annual_rate)} to {percent(band.max_annual_rate)}",
                field="decision.annual_rate",
            )
        )
    return out


def signing_deadline(approved_at: date, policy: Policy) -> date:
    """The last day to sign the contracts (rule C-1); after it the approval lapses."""
    return approved_at + timedelta(days=policy.contract.signing_window_days)


def check_signing(
    signing: ContractSigning,
    app: LoanApplication,
    conditions: list[str],
    approved_on: date,
    policy: Policy,
) -> list[Refusal]:
    """Rules C-1 (signing window) and C-2 (conditions precedent to payout)."""
    out: list[Refusal] = []
    signed = signing.signed_on
    deadline = signing_deadline(approved_on, policy)
    if signed < approved_on:
        out.append(
            Refusal(
                rule="C-1",
                message=f"contract signed on {signed}, before the approval of {approved_on}",
                field="signing.signed_on",
                kind=_CONFLICT,
            )
        )
    elif signed > deadline:
        out.append(
            Refusal(
                rule="C-1",
                message=f"contract signed on {signed}, after the signing window closed on "
                f"{deadline} ({policy.contract.signing_window_days} days from approval "
                f"on {approved_on}); the approval has lapsed",
                field="signing.signed_on",
                kind=_CONFLICT,
            )
        )
    if app.guarantee_type is not GuaranteeType.CREDIT and not signing.guarantee_contracts_signed:
        out.append(
            Refusal(
                rule="C-2",
                message=f"the {app.guarantee_type} contracts are not signed",
                field="signing.guarantee_contracts_signed",
            )
        )
    if app.guarantee_type.secured and not signing.collateral_registered:
        out.append(
            Refusal(
                rule="C-2",
                message="the collateral is not registered",
                field="signing.collateral_registered",
            )
        )
    met = {c.strip() for c in signing.conditions_met}
    missing = [c for c in conditions if c.strip() not in met]
    if missing:
        out.append(
            Refusal(
                rule="C-2",
                message="approval conditions not met: " + "; ".join(missing),
                field="signing.conditions_met",
            )
        )
    return out
