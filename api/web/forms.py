"""The forms that complete each human step in the browser, one per task kind or loan action.

A form is a list of fields and the model they must make; what the model makes goes to the
loan's workflow through the same services as the JSON API (``loans.perform_step``), so the
workflow's validators judge a browser step exactly as an API call. The page's request id is
the step's Idempotency-Key: a form submitted twice takes effect once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session
from starlette.datastructures import FormData
from temporalio.client import Client

from api.services import loans
from api.web import labels
from domain.inspection import InspectionFindings, WarningMeasure, WarningSignal
from domain.loan import (
    Actor,
    ContractSigning,
    Decision,
    InvestigationReport,
    LoanApplication,
    Material,
    Review,
    Role,
)
from domain.text import ONE_LINE, SEVERAL_LINES, Text
from workflows.loan import LoanWorkflow
from workflows.messages import (
    ConfirmAsBranchHead,
    DecideLoan,
    DecidePrepayment,
    DecideWarning,
    DecideWriteOff,
    LoanStatus,
    RaiseWarning,
    RecordCollectionAction,
    RecordPayment,
    ReportInspection,
    RequestExtension,
    SignContract,
    SubmitFinalEvaluation,
    SubmitInvestigation,
    SubmitReview,
    SupplyMaterials,
)
from workflows.servicing import LoanServicingWorkflow

FieldKind = Literal[
    "text", "textarea", "money", "int", "percent", "date", "bool", "select", "multi", "lines"
]
Note = Annotated[str, Field(min_length=1, max_length=2000), SEVERAL_LINES]


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: FieldKind = "text"
    options: tuple[tuple[str, str], ...] = ()
    required: bool = True
    hint: str = ""


@dataclass(frozen=True)
class StepCall:
    """Who sends which step to which loan, under which request id."""

    session: Session
    client: Client
    actor: Actor
    loan_id: str
    task_key: str | None
    request_id: str | None


@dataclass(frozen=True)
class FormSpec:
    """Fields, and the model they must make."""

    title: str
    rule: str
    fields: tuple[FormField, ...]
    model: type[BaseModel]


@dataclass(frozen=True)
class StepForm(FormSpec):
    """A form whose model goes to the loan's workflow as a step."""

    send: Callable[[StepCall, Any], Awaitable[LoanStatus]]


def _choices(pairs: dict[Any, str]) -> tuple[tuple[str, str], ...]:
    return tuple((str(getattr(code, "value", code)), label) for code, label in pairs.items())


YES_NO = (("true", "同意"), ("false", "不同意"))
MATERIALS = _choices(
    {
        Material.ID_CARD: "身份证",
        Material.HOUSEHOLD_REGISTER: "户口簿",
        Material.INCOME_PROOF: "收入证明",
        Material.BUSINESS_PROOF: "经营证明（土地承包、种养合同）",
        Material.CREDIT_RECORD: "信用记录",
        Material.COLLATERAL_TITLE: "抵押物权属证明",
    }
)
RECOMMENDATIONS = _choices(labels.RECOMMENDATIONS)
REVIEW_OUTCOMES = _choices(labels.REVIEW_OUTCOMES)
DECISIONS = _choices(labels.DECISIONS)
METHODS = (("", "按申请"), *_choices(labels.METHODS))
SIGNALS = _choices(
    {
        WarningSignal.OVERDUE_OR_ARREARS: "逾期、欠息",
        WarningSignal.MISUSE_OF_FUNDS: "挪用贷款",
        WarningSignal.DEATH_ILLNESS_INCAPACITY: "死亡、重病、丧失行为能力",
        WarningSignal.MOVED_OR_OUT_OF_CONTACT: "外出务工、失联",
        WarningSignal.LAWSUIT: "涉诉",
        WarningSignal.GRADE_DOWNGRADE: "信用等级下调",
        WarningSignal.GUARANTEE_WEAKENED: "担保人或抵押物风险",
        WarningSignal.NATURAL_DISASTER: "自然灾害",
        WarningSignal.DEBTS_ELSEWHERE: "他行债务",
    }
)
MEASURES = _choices(
    {
        WarningMeasure.DEMAND_CORRECTION: "限期纠正",
        WarningMeasure.ADD_GUARANTEE_OR_COLLATERAL: "追加担保",
        WarningMeasure.STOP_UNDRAWN_CREDIT: "停止发放未用额度",
        WarningMeasure.CALL_IN_EARLY: "提前收回",
    }
)

AMOUNT = FormField("amount", "金额（元）", "money", required=False)
TERM = FormField("term_months", "期限（月）", "int", required=False)
RATE = FormField("annual_rate", "年利率（%）", "percent", required=False, hint="如 7.2")


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MaterialsForm(_Form):
    materials: list[Material] = Field(min_length=1)


class CollectionForm(_Form):
    actions: list[Annotated[str, Field(min_length=1, max_length=200), ONE_LINE]] = Field(
        min_length=1, max_length=10
    )
    outcome: Note


class MeasureForm(_Form):
    measure: WarningMeasure
    note: Note


class ConsentForm(_Form):
    consent: bool
    note: Note


class WriteOffForm(_Form):
    approve: bool
    note: Note


class EvaluationForm(_Form):
    evaluation: Note


class PaymentForm(_Form):
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    reference: Text = Field(min_length=1, max_length=64)  # the payment's key (issue 9)


class WarningForm(_Form):
    signal: WarningSignal
    note: Note


class ExtensionForm(_Form):
    months: int = Field(gt=0, le=120)
    reason: Note
    guarantor_consent: bool


async def _origination(call: StepCall, update: Any, step: Any) -> LoanStatus:
    return await loans.perform_step(
        call.session, call.client, call.actor, call.loan_id, update, step, call.request_id
    )


async def _servicing(
    call: StepCall, update: Any, step: Any, *, allow_closed: bool = False
) -> LoanStatus:
    return await loans.perform_step(
        call.session,
        call.client,
        call.actor,
        call.loan_id,
        update,
        step,
        call.request_id,
        servicing=True,
        allow_closed=allow_closed,
    )


def _task_key(call: StepCall) -> str:
    assert call.task_key is not None, "a task's form always knows its task"
    return call.task_key


REVIEW_FIELDS = (
    FormField("outcome", "审查意见", "select", REVIEW_OUTCOMES),
    FormField("comment", "意见说明", "textarea"),
)
INSPECTION_FIELDS = (
    FormField("purpose_kept", "按约定用途使用贷款", "bool"),
    FormField("business_normal", "生产经营正常", "bool"),
    FormField("household_income", "家庭收入情况", "textarea"),
    FormField("health", "健康状况", "text"),
    FormField("marriage", "婚姻状况", "text"),
    FormField("contact_details_current", "联系方式有效", "bool"),
    FormField("signals", "预警信号（W-1）", "multi", SIGNALS, required=False),
    FormField("notes", "其他情况", "textarea", required=False),
)

TASK_FORMS: dict[str, StepForm] = {
    "supply_materials": StepForm(
        "补充申请材料",
        "E-13",
        (FormField("materials", "已补交的材料", "multi", MATERIALS),),
        MaterialsForm,
        lambda call, m: _origination(
            call,
            LoanWorkflow.supply_materials,
            SupplyMaterials(actor=call.actor, materials=m.materials),
        ),
    ),
    "investigate": StepForm(
        "贷前调查报告",
        "I-1",
        (
            FormField("interview_confirmed_by_borrower", "已面谈，借款人本人确认", "bool"),
            FormField("materials_genuine", "材料真实", "bool"),
            FormField("purpose_legal", "用途合法", "bool"),
            FormField("family_consent_recorded", "已取得家庭成员同意（I-3）", "bool"),
            FormField("household_assets_and_credit", "家庭资产与信用状况", "textarea"),
            FormField("business_and_cash_flow", "生产经营与现金流", "textarea"),
            FormField("repayment_ability_and_willingness", "还款能力与意愿", "textarea"),
            FormField("guarantor_assessment", "保证人评价", "textarea", required=False),
            FormField("collateral_assessment", "抵押物评价", "textarea", required=False),
            FormField("recommendation", "调查结论", "select", RECOMMENDATIONS),
            AMOUNT,
            TERM,
            RATE,
            FormField("comment", "其他说明", "textarea", required=False),
        ),
        InvestigationReport,
        lambda call, m: _origination(
            call,
            LoanWorkflow.submit_investigation,
            SubmitInvestigation(actor=call.actor, report=m, task_key=call.task_key),
        ),
    ),
    "review": StepForm(
        "审查",
        "A-2",
        REVIEW_FIELDS,
        Review,
        lambda call, m: _origination(
            call, LoanWorkflow.review_loan, SubmitReview(actor=call.actor, review=m)
        ),
    ),
    "confirm_as_branch_head": StepForm(
        "行长确认",
        "A-2",
        REVIEW_FIELDS,
        Review,
        lambda call, m: _origination(
            call,
            LoanWorkflow.confirm_as_branch_head,
            ConfirmAsBranchHead(actor=call.actor, review=m),
        ),
    ),
    "approve": StepForm(
        "审批决定",
        "A-3",
        (
            FormField("outcome", "决定", "select", DECISIONS),
            AMOUNT,
            TERM,
            RATE,
            FormField("repayment_method", "还款方式", "select", METHODS, required=False),
            FormField("conditions", "放款条件（每行一条）", "lines", required=False),
            FormField("reason", "理由（退回、否决时必填）", "textarea", required=False),
        ),
        Decision,
        lambda call, m: _origination(
            call, LoanWorkflow.decide_loan, DecideLoan(actor=call.actor, decision=m)
        ),
    ),
    "sign_contract": StepForm(
        "签约确认",
        "C-1",
        (
            FormField("contract_number", "合同编号"),
            FormField("signed_on", "签订日期", "date"),
            FormField("guarantee_contracts_signed", "保证合同已签订", "bool"),
            FormField("collateral_registered", "抵押已登记", "bool"),
            FormField("conditions_met", "已落实的放款条件（每行一条）", "lines", required=False),
        ),
        ContractSigning,
        lambda call, m: _origination(
            call, LoanWorkflow.sign_contract, SignContract(actor=call.actor, signing=m)
        ),
    ),
    "inspection": StepForm(
        "贷后检查报告",
        "K-5",
        INSPECTION_FIELDS,
        InspectionFindings,
        lambda call, m: _servicing(
            call,
            LoanServicingWorkflow.report_inspection,
            ReportInspection(actor=call.actor, task_key=_task_key(call), findings=m),
        ),
    ),
    "collect": StepForm(
        "催收记录",
        "D-1",
        (
            FormField("actions", "采取的措施（每行一条）", "lines"),
            FormField("outcome", "结果", "textarea"),
        ),
        CollectionForm,
        lambda call, m: _servicing(
            call,
            LoanServicingWorkflow.record_collection_action,
            RecordCollectionAction(
                actor=call.actor, task_key=_task_key(call), actions=m.actions, outcome=m.outcome
            ),
        ),
    ),
    "warning": StepForm(
        "预警处置措施",
        "W-2",
        (
            FormField("measure", "处置措施", "select", MEASURES),
            FormField("note", "说明", "textarea"),
        ),
        MeasureForm,
        lambda call, m: _servicing(
            call,
            LoanServicingWorkflow.decide_warning,
            DecideWarning(
                actor=call.actor, task_key=_task_key(call), measure=m.measure, note=m.note
            ),
        ),
    ),
    "consent_prepayment": StepForm(
        "提前还款审批",
        "P-4",
        (FormField("consent", "是否同意", "select", YES_NO), FormField("note", "说明", "textarea")),
        ConsentForm,
        lambda call, m: _servicing(
            call,
            LoanServicingWorkflow.decide_prepayment,
            DecidePrepayment(actor=call.actor, consent=m.consent, note=m.note),
        ),
    ),
    "approve_write_off": StepForm(
        "核销审批",
        "Z-1",
        (FormField("approve", "是否批准", "select", YES_NO), FormField("note", "说明", "textarea")),
        WriteOffForm,
        lambda call, m: _servicing(
            call,
            LoanServicingWorkflow.decide_write_off,
            DecideWriteOff(actor=call.actor, approve=m.approve, note=m.note),
        ),
    ),
    "final_evaluation": StepForm(
        "结清后评价",
        "P-7",
        (FormField("evaluation", "评价", "textarea"),),
        EvaluationForm,
        lambda call, m: _servicing(
            call,
            LoanServicingWorkflow.submit_final_evaluation,
            SubmitFinalEvaluation(actor=call.actor, evaluation=m.evaluation),
            allow_closed=True,
        ),
    ),
}
# The same step under another name: a prefecture's review, a village's check of one
# household, a notice whose receipt never came back, a signal escalated (W-2).
TASK_FORMS["prefecture_review"] = TASK_FORMS["review"]
TASK_FORMS["village_inspection"] = TASK_FORMS["inspection"]
TASK_FORMS["notice_follow_up"] = TASK_FORMS["collect"]
TASK_FORMS["warning_escalated"] = TASK_FORMS["warning"]


# Applying starts the loan's workflow (api.services.applications.apply_for_loan), not a step in it.
APPLICATION = FormSpec(
    "借款申请",
    "E-1",
    (
        FormField("applicant.name", "借款人姓名"),
        FormField("applicant.id_number", "身份证号"),
        FormField("applicant.birth_date", "出生日期", "date"),
        FormField("applicant.phone", "手机号码"),
        FormField("applicant.household_id", "农户编号"),
        FormField("applicant.village", "所在村"),
        FormField("applicant.resident_months", "在本地居住（月）", "int"),
        FormField("applicant.fixed_residence", "有固定住所", "bool"),
        FormField("applicant.full_civil_capacity", "具有完全民事行为能力", "bool"),
        FormField("applicant.remote_area", "偏远地区", "bool"),
        FormField("applicant.settlement_account", "结算账号"),
        FormField("household_annual_income", "家庭年收入（元）", "money"),
        FormField("amount", "申请金额（元）", "money"),
        FormField("term_months", "期限（月）", "int"),
        FormField("purpose", "用途", "select", _choices(labels.PURPOSES)),
        FormField("repayment_method", "还款方式", "select", _choices(labels.METHODS)),
        FormField("guarantee_type", "担保方式", "select", _choices(labels.GUARANTEES)),
        FormField("guarantors.0.name", "保证人姓名", required=False),
        FormField("guarantors.0.id_number", "保证人身份证号", required=False),
        FormField("guarantors.0.phone", "保证人手机号码", required=False),
        FormField("guarantors.0.household_id", "保证人农户编号", required=False),
        FormField("credit_rating.score", "信用评分（0–100）", "int"),
        FormField("credit_rating.rated_on", "评级日期", "date"),
        FormField("materials", "已收材料", "multi", MATERIALS, required=False),
    ),
    LoanApplication,
)

# Steps taken on a loan without a task waiting: who may take each, and its form.
LOAN_ACTIONS: dict[str, tuple[Role, StepForm]] = {
    "payment": (
        Role.TELLER,
        StepForm(
            "柜面还款",
            "P-2",
            (
                FormField("amount", "还款金额（元）", "money"),
                FormField("reference", "收款凭证号"),
            ),
            PaymentForm,
            lambda call, m: _servicing(
                call,
                LoanServicingWorkflow.record_payment,
                RecordPayment(actor=call.actor, amount=m.amount, reference=m.reference),
            ),
        ),
    ),
    "warning": (
        Role.LOAN_OFFICER,
        StepForm(
            "报告预警信号",
            "W-1",
            (
                FormField("signal", "预警信号", "select", SIGNALS),
                FormField("note", "情况说明", "textarea"),
            ),
            WarningForm,
            lambda call, m: _servicing(
                call,
                LoanServicingWorkflow.raise_warning,
                RaiseWarning(actor=call.actor, signal=m.signal, note=m.note),
            ),
        ),
    ),
    "extension": (
        Role.LOAN_OFFICER,
        StepForm(
            "展期申请",
            "X-1",
            (
                FormField("months", "展期期限（月）", "int"),
                FormField("reason", "展期原因", "textarea"),
                FormField("guarantor_consent", "已取得保证人书面同意", "bool"),
            ),
            ExtensionForm,
            lambda call, m: _servicing(
                call,
                LoanServicingWorkflow.request_extension,
                RequestExtension(
                    actor=call.actor,
                    months=m.months,
                    reason=m.reason,
                    guarantor_consent=m.guarantor_consent,
                ),
            ),
        ),
    ),
}


def _percent_to_rate(raw: str) -> str:
    """Staff type 7.2 (per cent); the domain keeps 0.072."""
    try:
        return str(Decimal(raw) / 100)
    except InvalidOperation:
        return raw  # the model names it as not a number


def read_form(form: FormSpec, data: FormData) -> dict[str, Any]:
    """The fields' values as the model takes them; a blank optional field is left out.

    Dotted names nest (``applicant.name``); a number in the path is a list's item, left out
    when none of its fields was filled in (an optional guarantor)."""
    flat = _read_fields(form, data)
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return _lists(nested)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        items = [_lists(node[key]) for key in sorted(node, key=int)]
        return [item for item in items if any(v not in ("", False, []) for v in item.values())]
    return {key: _lists(value) for key, value in node.items()}


def _read_fields(form: FormSpec, data: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in form.fields:
        if field.kind == "bool":
            values[field.name] = data.get(field.name) == "on"
        elif field.kind == "multi":
            values[field.name] = [str(v) for v in data.getlist(field.name)]
        elif field.kind == "lines":
            text = str(data.get(field.name) or "")
            values[field.name] = [line.strip() for line in text.splitlines() if line.strip()]
        else:
            raw = str(data.get(field.name) or "").strip()
            if raw:
                values[field.name] = _percent_to_rate(raw) if field.kind == "percent" else raw
    return values


def field_errors(form: FormSpec, error: ValidationError) -> dict[str, str]:
    """Each error under its field's name ("" for the form as a whole), in the staff's words.

    A nested field is named by its path (``applicant.phone``)."""
    names = {f.name for f in form.fields}
    errors: dict[str, str] = {}
    for item in error.errors():
        path = [str(part) for part in item["loc"]]
        name = next(
            (".".join(path[:n]) for n in range(len(path), 0, -1) if ".".join(path[:n]) in names),
            "",
        )
        message = str(item["msg"]).removeprefix("Value error, ")
        errors[name] = f"{errors[name]}；{message}" if name in errors else message
    return errors


def echo(form: FormSpec, data: FormData) -> dict[str, Any]:
    """What was typed, to fill the form again after a refusal."""
    shown: dict[str, Any] = {}
    for field in form.fields:
        shown[field.name] = (
            data.getlist(field.name) if field.kind == "multi" else data.get(field.name)
        )
    return shown
