"""The Chinese names staff read on the pages, for the codes the system stores."""

from __future__ import annotations

from domain.loan import (
    CLASS_NAMES,
    DecisionOutcome,
    GuaranteeType,
    Purpose,
    Recommendation,
    RepaymentMethod,
    ReviewOutcome,
    Role,
    Stage,
)

STAGES = {
    Stage.APPLIED: "已受理",
    Stage.MATERIALS_INCOMPLETE: "待补材料",
    Stage.INVESTIGATION: "贷前调查",
    Stage.REVIEW: "审查",
    Stage.BRANCH_CONFIRMATION: "行长确认",
    Stage.PREFECTURE_REVIEW: "二级分行审查",
    Stage.APPROVAL: "审批",
    Stage.SIGNING: "签约",
    Stage.DISBURSING: "放款中",
    Stage.DISBURSED: "已放款",
    Stage.REPAYING: "还款中",
    Stage.CLOSED: "已结清",
    Stage.WRITTEN_OFF: "已核销",
    Stage.REFUSED: "不予受理",
    Stage.REJECTED: "已否决",
    Stage.WITHDRAWN: "已撤回",
    Stage.LAPSED: "批复失效",
}

ROLES = {
    Role.LOAN_OFFICER: "客户经理",
    Role.REVIEWER: "审查岗",
    Role.APPROVER: "审批人",
    Role.BRANCH_HEAD: "行长",
    Role.POST_LOAN_MANAGER: "贷后管理岗",
    Role.TELLER: "柜员",
    Role.AUDITOR: "稽核",
    Role.ADMIN: "管理员",
}

TASK_KINDS = {
    "supply_materials": "补充材料",
    "investigate": "贷前调查",
    "review": "审查",
    "prefecture_review": "二级分行审查",
    "confirm_as_branch_head": "行长确认",
    "approve": "审批",
    "sign_contract": "签约确认",
    "inspection": "贷后检查",
    "village_inspection": "整村贷后检查",
    "collect": "逾期催收",
    "notice_follow_up": "催收回执跟进",
    "warning": "预警处置",
    "warning_escalated": "预警处置（已上报）",
    "consent_prepayment": "提前还款审批",
    "approve_write_off": "核销审批",
    "final_evaluation": "结清后评价",
}


PURPOSES = {
    Purpose.CROP: "种植",
    Purpose.FORESTRY: "林业",
    Purpose.LIVESTOCK: "养殖",
    Purpose.FISHERY: "渔业",
    Purpose.FARM_MACHINERY: "农机",
    Purpose.INDUSTRY: "加工",
    Purpose.TRADE: "商贸",
    Purpose.TRANSPORT: "运输",
    Purpose.SERVICES: "服务业",
    Purpose.EDUCATION: "助学",
    Purpose.MEDICAL: "医疗",
    Purpose.DURABLE_GOODS: "耐用消费品",
    Purpose.HOUSE_REPAIR: "建房修房",
    Purpose.WEDDING_FUNERAL: "婚丧",
}
GUARANTEES = {
    GuaranteeType.CREDIT: "信用",
    GuaranteeType.GUARANTEE: "保证",
    GuaranteeType.MORTGAGE: "抵押",
    GuaranteeType.PLEDGE: "质押",
    GuaranteeType.GROUP: "联保",
}
METHODS = {
    RepaymentMethod.LUMP_SUM: "利随本清",
    RepaymentMethod.INTEREST_MONTHLY: "按月结息，到期还本",
    RepaymentMethod.INTEREST_QUARTERLY: "按季结息，到期还本",
    RepaymentMethod.EQUAL_INSTALLMENT: "等额本息",
    RepaymentMethod.EQUAL_PRINCIPAL: "等额本金",
}
RECOMMENDATIONS = {
    Recommendation.APPROVE: "同意贷款",
    Recommendation.REDUCE: "减额贷款",
    Recommendation.REJECT: "不同意",
}
REVIEW_OUTCOMES = {ReviewOutcome.FORWARD: "同意，提交下一环节", ReviewOutcome.RETURN: "退回调查"}
DECISIONS = {
    DecisionOutcome.APPROVE: "批准",
    DecisionOutcome.RETURN: "退回",
    DecisionOutcome.REJECT: "否决",
}
# What a code means, whichever of these lists it comes from.
CODES = {
    str(code): name
    for names in (PURPOSES, GUARANTEES, METHODS, RECOMMENDATIONS, REVIEW_OUTCOMES, DECISIONS)
    for code, name in names.items()
} | {
    "review": "审查",
    "confirm": "行长确认",
    "decision": "审批",
    "signing": "签约",
    "signed": "已签约",
}


def code_name(code: object) -> str:
    text = str(getattr(code, "value", code))
    return CODES.get(text, text)


def stage_name(code: str) -> str:
    try:
        return STAGES[Stage(code)]
    except ValueError:
        return code


def role_name(code: str) -> str:
    try:
        return ROLES[Role(code)]
    except ValueError:
        return code


def task_name(kind: str) -> str:
    return TASK_KINDS.get(kind, kind)


def class_name(code: str | None) -> str:
    if not code:
        return "—"
    return next((name for cls, name in CLASS_NAMES.items() if cls.value == code), code)
