"""The applicant's notice: the outcome and its reasons in plain words, and their rights."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from datasources.base import INCOME_SCOPES
from datasources.consent import NOT_YET_VALID, Consent
from scoring.online.spec import FeatureSpec

# Each source as the applicant knows it.
SOURCE_NAMES = {
    "provident_fund": ("住房公积金", "the housing provident fund"),
    "social_security": ("社会保险", "social security"),
    "income_tax": ("个人所得税", "income tax"),
    "credit_report": ("人民银行征信报告", "the central bank's credit report"),
    "court_records": ("法院执行记录", "court enforcement records"),
}

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
}
# K07 (too few sources show income): what helps depends on what the applicant authorised.
AUTHORISE_INCOME = ("授权{zh}等可核实收入的数据来源有助于审批。",
                    "Authorising {en}, which show{s} your income, helps.")
INCOME_ON_RECORD = ("您已授权全部可核实收入的数据来源；这些来源能够核实的收入记录（如依法申报个税、"
                    "连续缴纳公积金或社保）有助于今后的申请。",
                    "You authorised every source that shows income; income those sources can "
                    "confirm (income tax filed, provident fund or social security paid) helps a "
                    "future application.")
DEFERRED_REVIEW = {
    "zh": "本申请尚未作出决定，因此暂无可供人工复核的决定。作出决定后，根据《个人信息保护法》"
          "第二十四条，您有权要求我们予以说明，并有权申请人工复核。",
    "en": "No decision has been made yet, so there is none for a person to review. Once it is "
          "made, under Article 24 of the Personal Information Protection Law you may ask us to "
          "explain it and have a person review it.",
}


def _money(value: float) -> str:
    return f"¥{value:,.0f}"


def _names(scopes: list[str]) -> tuple[str, str]:
    """The sources, named for the applicant: ``("征信报告、…", "the credit report and …")``."""
    zh = [SOURCE_NAMES[s][0] for s in scopes]
    en = [SOURCE_NAMES[s][1] for s in scopes]
    english = en[0] if len(en) == 1 else ", ".join(en[:-1]) + " and " + en[-1]
    return "、".join(zh), english


def _consent_state(consent: Consent | None) -> str | None:
    if consent is None:
        return None
    # The consent rule's own reading (datasources.consent), in the notice's words.
    state = consent.state_at(datetime.now(UTC))
    return "not yet in force" if state == NOT_YET_VALID else state


def _deferred(missing: list[str], consent: Consent | None
              ) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The summary and the next step of a deferred application: which source did not answer,
    that it is not held against the applicant, and what happens now."""
    zh, en = _names(missing) if missing else ("部分数据来源", "some data sources")
    summary = {"zh": f"我们暂时无法作出决定：{zh}未能及时返回数据。这是数据来源的问题，"
                     "不是对您的评价：不会对您产生任何不利记录，也不会影响您今后的申请。",
               "en": f"We could not decide yet: {en} did not answer in time. This is a problem "
                     "with the source, not a judgement of you: nothing adverse is recorded "
                     "against you, and it does not count against any future application."}
    state = _consent_state(consent)
    if consent is not None and state == "live":
        until = consent.expires_at.astimezone(UTC).strftime("%Y-%m-%d")
        step = {"zh": f"您无需重新申请。在您的授权有效期内（至{until}），提交申请的渠道会在数据来源"
                      "恢复后为您重新查询，并作出决定。",
                "en": f"You need not apply again. While your authorisation lasts (until "
                      f"{until}), the channel where you applied will ask again once the source "
                      "answers, and you will get a decision."}
    elif state is not None:
        zh_state = {"withdrawn": "已撤回", "expired": "已过期"}.get(state, "尚未生效")
        step = {"zh": f"您的授权{zh_state}，因此我们不会再查询您的数据，本申请也不会再作出决定。"
                      "如需申请，请重新授权后再次提交。",
                "en": f"Your authorisation is {state}, so we will not read your data again "
                      "and this application will not be decided. To apply, authorise again "
                      "and submit a new application."}
    else:
        step = {"zh": "提交申请的渠道会在数据来源恢复后为您重新查询，并作出决定。",
                "en": "The channel where you applied will ask again once the source answers, "
                      "and you will get a decision."}
    return summary, [step]


def _income_advice(consent: Consent | None) -> dict[str, str]:
    """What helps when too few sources showed income: authorising one the applicant did not,
    never one they did."""
    unauthorised = [s for s in INCOME_SCOPES if consent is not None and s not in consent.scopes]
    if not unauthorised:
        return {"zh": INCOME_ON_RECORD[0], "en": INCOME_ON_RECORD[1]}
    zh, en = _names(unauthorised)
    return {"zh": AUTHORISE_INCOME[0].format(zh=zh),
            "en": AUTHORISE_INCOME[1].format(en=en, s="" if len(unauthorised) > 1 else "s")}


def _recourse_advice(recourse: dict[str, Any]) -> list[dict[str, str]]:
    """What would lead to approval, as found at decision time: the note, then each option."""
    advice = [{"zh": recourse["note_zh"], "en": recourse["note_en"]}]
    for n, option in enumerate(recourse["suggestions"], start=1):
        advice.append({"zh": f"方案{n}：{option['text_zh']}。",
                       "en": f"Option {n}: {option['text_en']}."})
    return advice


def build_notice(application_id: str, answer: dict[str, Any], explanation: dict | None,
                 spec: FeatureSpec, decided_at: str, consent: Consent | None = None
                 ) -> dict[str, Any]:
    """Return the notice of an application for its applicant.

    ``consent`` is the consent the application cites: what the applicant authorised, and
    whether it still holds, decide what the notice advises.
    """
    status = answer["status"]
    decision = answer.get("decision") or {}
    missing = list(answer.get("missing_sources") or [])
    advice: list[dict[str, str]] = []
    if status == "approved":
        summary = {
            "zh": f"您的申请已获批准：授信额度{_money(decision['credit_limit'])}，"
                  f"年化利率{decision['annual_rate'] * 100:.2f}%。",
            "en": f"Your application was approved: a credit line of "
                  f"{_money(decision['credit_limit'])} at {decision['annual_rate'] * 100:.2f}% "
                  "a year.",
        }
        partial = decision.get("partial")
        if partial is not None:
            summary = {
                "zh": summary["zh"] + f"您申请的金额为{_money(partial['requested_amount'])}，"
                      f"本次为部分批准：{partial['text_zh']}。",
                "en": summary["en"] + f" You asked for {_money(partial['requested_amount'])}: "
                      f"this is a partial approval. {partial['text_en']}.",
            }
    elif status == "declined":
        summary = {"zh": "很抱歉，您的申请未获批准。主要原因如下。",
                   "en": "We are sorry: your application was not approved, for the main "
                         "reasons below."}
    else:
        summary, advice = _deferred(missing, consent)
    # A source that did not answer says nothing about the applicant: no reason or advice
    # rests on its features.
    unheard = {r["code"] for r in (explanation or {}).get("reasons", [])
               if r.get("source") == "model" and r.get("group") in missing}
    reasons = [{"code": r["code"], "text_zh": r["text_zh"], "text_en": r["text_en"]}
               for r in decision.get("reasons", []) if r["code"] not in unheard]
    recourse = decision.get("recourse")
    if recourse is not None:
        advice.extend(_recourse_advice(recourse))
    if status == "declined" and explanation is not None:
        for reason in explanation["reasons"]:
            if reason["code"] in unheard:
                continue
            if reason["source"] == "rule" and reason["code"] == "K07":
                advice.append(_income_advice(consent))
            elif reason["source"] == "rule" and reason["code"] in RULE_ADVICE:
                zh, en = RULE_ADVICE[reason["code"]]
                advice.append({"zh": zh, "en": en})
            elif (reason["source"] == "model" and spec.by_name(reason["feature"]).actionable
                  and (recourse is None or recourse["status"] != "offered")):
                # Without checked options, the reasons the applicant can act on.
                advice.append({"zh": f"改善这一方面有助于今后的申请：{reason['text_zh']}。",
                               "en": f"Improving this may help a future application: "
                                     f"{reason['text_en']}."})
    right = dict(DEFERRED_REVIEW if status == "deferred" else RIGHT_TO_REVIEW)
    if answer.get("decided_by") == "person":
        right = {"zh": REVIEWED["zh"] + right["zh"], "en": REVIEWED["en"] + " " + right["en"]}
    return {"application_id": application_id, "status": status,
            "decided_by": answer.get("decided_by", "model"), "summary": summary,
            "reasons": reasons, "what_you_can_do": advice, "right_to_review": right,
            "decided_at": decided_at}
