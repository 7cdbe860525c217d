"""The applicant's notice: the outcome and its reasons in plain words, and their rights."""

from __future__ import annotations

from typing import Any

from scoring.spec import FeatureSpec

RIGHT_TO_REVIEW = {
    "zh": "本决定由系统自动作出。根据《个人信息保护法》第二十四条，您有权要求我们对决定予以说明，"
          "并有权拒绝仅通过自动化决策方式作出的决定。您可以通过提交申请的渠道申请人工复核，"
          "复核将由风险管理人员完成。",
    "en": "This decision was made automatically. Under Article 24 of the Personal Information "
          "Protection Law you may ask us to explain it and refuse a decision made solely by "
          "automated means. You can ask for a review by a person through the channel where you "
          "applied; a risk officer will look at your application again.",
}
REVIEWED = {
    "zh": "本决定已由风险管理人员人工复核。",
    "en": "This decision has been reviewed by a person.",
}
# What an applicant can do about a rule that declined them.
RULE_ADVICE = {
    "K02": ("请先结清当前逾期款项，再重新申请。", "Repay what is overdue, then apply again."),
    "K06": ("本产品仅用于个人消费，请按实际消费用途申请。",
            "This product is for personal consumption; apply for a consumption purpose."),
    "K08": ("请选择本产品提供的期限（3、6、12、24或36个月）。",
            "Choose a term this product offers (3, 6, 12, 24 or 36 months)."),
    "K05": ("连续缴纳住房公积金或社会保险满6个月后可再次申请。",
            "You may apply again after 6 months of continuous provident fund or social "
            "security contributions."),
    "K07": ("授权更多可核实收入的数据来源（如个税）有助于审批。",
            "Authorising more sources that show your income (such as income tax) helps."),
}


def _money(value: float) -> str:
    return f"¥{value:,.0f}"


def build_notice(application_id: str, answer: dict[str, Any], explanation: dict | None,
                 spec: FeatureSpec, decided_at: str) -> dict[str, Any]:
    """Return the notice of an application for its applicant."""
    status = answer["status"]
    decision = answer.get("decision") or {}
    if status == "approved":
        summary = {
            "zh": f"您的申请已获批准：授信额度{_money(decision['credit_limit'])}，"
                  f"年化利率{decision['annual_rate'] * 100:.2f}%。",
            "en": f"Your application was approved: a credit line of "
                  f"{_money(decision['credit_limit'])} at {decision['annual_rate'] * 100:.2f}% "
                  "a year.",
        }
    elif status == "declined":
        summary = {"zh": "很抱歉，您的申请未获批准。主要原因如下。",
                   "en": "We are sorry: your application was not approved, for the main "
                         "reasons below."}
    else:
        summary = {"zh": "我们暂时无法作出决定：部分数据来源未能及时返回。"
                         "此次申请不会对您产生不利记录，您可以稍后重新申请。",
                   "en": "We could not decide yet because some data sources did not answer in "
                         "time. Nothing adverse is recorded against you; you can apply again "
                         "later."}
    reasons = [{"code": r["code"], "text_zh": r["text_zh"], "text_en": r["text_en"]}
               for r in decision.get("reasons", [])]
    advice: list[dict[str, str]] = []
    if status == "declined" and explanation is not None:
        for reason in explanation["reasons"]:
            if reason["source"] == "rule" and reason["code"] in RULE_ADVICE:
                zh, en = RULE_ADVICE[reason["code"]]
                advice.append({"zh": zh, "en": en})
            elif reason["source"] == "model" and spec.by_name(reason["feature"]).actionable:
                advice.append({"zh": f"改善这一方面有助于今后的申请：{reason['text_zh']}。",
                               "en": f"Improving this may help a future application: "
                                     f"{reason['text_en']}."})
    elif status == "deferred":
        advice.append({"zh": "请稍后重新提交申请。", "en": "Please apply again later."})
    right = dict(RIGHT_TO_REVIEW)
    if answer.get("decided_by") == "person":
        right = {"zh": REVIEWED["zh"] + right["zh"], "en": REVIEWED["en"] + " " + right["en"]}
    return {"application_id": application_id, "status": status,
            "decided_by": answer.get("decided_by", "model"), "summary": summary,
            "reasons": reasons, "what_you_can_do": advice, "right_to_review": right,
            "decided_at": decided_at}
