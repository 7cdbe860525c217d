"""The applicant's notice says only what is true of the applicant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from datasources import SCOPES
from datasources.consent import Consent
from scoring.online.spec import load_spec
from service.usecases.notice import build_notice


@pytest.fixture(scope="module")
def spec():
    return load_spec()


def consent(scopes=SCOPES, **changes) -> Consent:
    now = datetime.now(UTC)
    return Consent(**{"consent_id": "c_1", "subject": "s" * 64, "scopes": frozenset(scopes),
                      "purpose": "credit_application", "granted_at": now - timedelta(days=1),
                      "expires_at": now + timedelta(days=29), "text_version": "v1",
                      "channel": "bank-app", **changes})


def reason(code: str, source: str, group: str, feature: str | None = None) -> dict:
    return {"code": code, "text_zh": f"{code}原因", "text_en": f"reason {code}",
            "group": group, "source": source, "feature": feature, "contribution": None}


def declined(reasons: list[dict], missing: list[str] = ()) -> tuple[dict, dict]:
    answer = {"status": "declined", "decided_by": "model", "missing_sources": list(missing),
              "decision": {"reasons": [{k: r[k] for k in ("code", "text_zh", "text_en")}
                                       for r in reasons]}}
    return answer, {"reasons": reasons}


def test_income_advice_never_asks_for_a_source_already_authorised(spec):
    answer, explanation = declined([reason("K07", "rule", "income")])
    notice = build_notice("a_1", answer, explanation, spec, "t", consent())
    [advice] = notice["what_you_can_do"]
    assert "Authorising" not in advice["en"] and "授权" + "个人所得税" not in advice["zh"]
    assert "You authorised every source that shows income" in advice["en"]


def test_income_advice_names_only_the_sources_not_authorised(spec):
    answer, explanation = declined([reason("K07", "rule", "income")])
    authorised = [s for s in SCOPES if s != "income_tax"]
    notice = build_notice("a_1", answer, explanation, spec, "t", consent(authorised))
    [advice] = notice["what_you_can_do"]
    assert advice["en"] == "Authorising income tax, which shows your income, helps."
    assert "个人所得税" in advice["zh"]
    for named in ("provident fund", "social security"):
        assert named not in advice["en"]


def test_no_reason_or_advice_rests_on_a_source_that_did_not_answer(spec):
    reasons = [reason("R_TAX", "model", "income_tax", "tax_monthly_salary"),
               reason("R_UTIL", "model", "credit_report", "cr_card_utilization")]
    answer, explanation = declined(reasons, missing=["income_tax"])
    notice = build_notice("a_1", answer, explanation, spec, "t", consent())
    assert [r["code"] for r in notice["reasons"]] == ["R_UTIL"]
    assert all("R_TAX" not in a["en"] for a in notice["what_you_can_do"])
    assert any("reason R_UTIL" in a["en"] for a in notice["what_you_can_do"])


def test_a_deferred_notice_names_each_missing_source_and_the_next_step(spec):
    answer = {"status": "deferred", "decided_by": "model", "decision": None,
              "missing_sources": ["credit_report", "court_records"]}
    notice = build_notice("a_1", answer, None, spec, "t", consent())
    assert ("the central bank's credit report and court enforcement records did not answer"
            in notice["summary"]["en"])
    assert "人民银行征信报告、法院执行记录" in notice["summary"]["zh"]
    assert "not a judgement of you" in notice["summary"]["en"]
    [step] = notice["what_you_can_do"]
    assert "the channel where you applied will ask again" in step["en"]
    assert "Please apply again" not in step["en"]
    assert "review" not in step["en"]


@pytest.mark.parametrize(("changes", "state", "zh"), [
    ({"withdrawn_at": datetime.now(UTC)}, "withdrawn", "已撤回"),
    ({"granted_at": datetime.now(UTC) - timedelta(days=40),
      "expires_at": datetime.now(UTC) - timedelta(days=1)}, "expired", "已过期"),
])
def test_a_deferred_notice_under_a_lapsed_consent_says_it_will_not_be_decided(
        spec, changes, state, zh):
    answer = {"status": "deferred", "decided_by": "model", "decision": None,
              "missing_sources": ["court_records"]}
    notice = build_notice("a_1", answer, None, spec, "t", consent(**changes))
    [step] = notice["what_you_can_do"]
    assert f"Your authorisation is {state}" in step["en"] and zh in step["zh"]
    assert "will not be decided" in step["en"]
