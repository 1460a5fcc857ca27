"""What a borrower may be told about a refusal.

Credit grades and scores are internal (H-3), so a borrower hears which condition
was not met, in plain Chinese, never the figures behind it.
"""

from __future__ import annotations

from domain.errors import Refusal

RULE_LABELS_ZH = {
    "E-1": "年龄条件",
    "E-2": "身份信息",
    "E-3": "居住条件",
    "E-4": "信用条件",
    "E-5": "存在逾期贷款",
    "E-6": "不符合准入条件",
    "E-7": "同一农户已有贷款申请或贷款",
    "E-8": "贷款用途",
    "E-9": "贷款金额",
    "E-10": "贷款期限",
    "E-11": "担保条件",
    "E-12": "联保小组条件",
    "E-13": "申请资料",
    "E-14": "还款方式",
    "E-15": "拆分申请",
    "C-1": "未在规定期限内签订合同",
}


def borrower_reasons(refusals: list[Refusal]) -> str:
    """Distinct conditions not met, in rulebook order of appearance, e.g. '年龄条件、贷款金额'."""
    labels: list[str] = []
    for refusal in refusals:
        label = RULE_LABELS_ZH.get(refusal.rule)
        if label and label not in labels:
            labels.append(label)
    return "、".join(labels) if labels else "不符合贷款条件"


TASK_LABELS_ZH = {
    "supply_materials": "补充申请资料",
    "investigate": "贷前调查",
    "review": "审查",
    "confirm_as_branch_head": "行长确认",
    "prefecture_review": "二级分行审查",
    "approve": "审批",
    "sign_contract": "签订合同",
}


def task_labels(kinds: list[str]) -> str:
    """Task kinds as staff read them in a reminder, e.g. '贷前调查、审查'."""
    labels: list[str] = []
    for kind in kinds:
        label = TASK_LABELS_ZH.get(kind, kind)
        if label not in labels:
            labels.append(label)
    return "、".join(labels)
