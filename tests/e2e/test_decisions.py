"""Consent → application → status → explanation → notice, for every kind of outcome.

Staged by stub fixtures (who the applicants are) and by a fault (the degraded server's credit
report hangs), on the real server under gunicorn with two workers, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from xml.etree import ElementTree

import pytest
import requests

from tests.e2e.applicants import (
    APPROVED,
    DEFERRED,
    KNOCKED_OUT,
    SCOPES,
    SCORE_DECLINED,
    Applicant,
    consent_body,
    personal_data,
)
from tests.e2e.conftest import (
    CHANNEL,
    DEGRADED_DEADLINE_S,
    PII_KEY,
    Deployment,
    apply,
    assert_envelope,
)
from tests.treeshap import ReferenceExplainer

pytestmark = pytest.mark.slow

SCORED_STEPS = ["received", "consent_checked", "sources_gathered", "features_built", "scored",
                "policy_applied", "explained", "recourse_sought", "audited"]
DEFERRED_STEPS = ["received", "consent_checked", "sources_gathered", "audited"]
POLICY_VERSION = "2026.11"
PD_CUTOFF = 0.08
TOLERANCE = 1e-4


@dataclass
class Walk:
    """Everything an applicant's walk through the API answered."""

    applicant: Applicant
    consent: requests.Response
    decided: requests.Response
    status: requests.Response
    explanation: requests.Response
    svg: requests.Response
    notice: requests.Response

    @property
    def answer(self) -> dict:
        return self.decided.json()

    @property
    def application_id(self) -> str:
        return self.answer["application_id"]


def walk(deployment: Deployment, applicant: Applicant, *, degraded: bool = False) -> Walk:
    """Consent and apply as the channel, then read everything as the roles that may."""
    channel = deployment.client("channel")
    consent = channel.post("/v1/consents", json=consent_body(applicant, CHANNEL))
    assert consent.status_code == 201, consent.text
    deciding = deployment.client("channel", deployment.degraded if degraded else None)
    decided = apply(deciding, applicant, consent.json()["consent_id"])
    assert decided.status_code == 201, decided.text
    path = f"/v1/applications/{decided.json()['application_id']}"
    officer = deployment.client("risk_officer")
    return Walk(
        applicant=applicant, consent=consent, decided=decided,
        status=channel.get(path),
        explanation=officer.get(path + "/explanation"),
        svg=deployment.client("auditor").get(path + "/explanation.svg"),
        notice=channel.get(path + "/notice"),
    )


@pytest.fixture(scope="module")
def walks(deployment: Deployment) -> dict[str, Walk]:
    return {
        "approved": walk(deployment, APPROVED),
        "knocked_out": walk(deployment, KNOCKED_OUT),
        "score_declined": walk(deployment, SCORE_DECLINED),
        "deferred": walk(deployment, DEFERRED, degraded=True),
    }


@pytest.fixture(scope="module")
def active_model(deployment: Deployment) -> str:
    response = deployment.client(None).get("/readyz")
    assert response.status_code == 200, response.text
    return response.json()["checks"]["model"]


@pytest.fixture(scope="module")
def reference(active_model: str) -> ReferenceExplainer:
    return ReferenceExplainer(active_model)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_timeline(answer: dict, steps: list[str]) -> None:
    """Steps in order, each time consistent with the durations, summing to elapsed_ms."""
    timeline = answer["timeline"]
    assert [s["step"] for s in timeline] == steps
    assert all(s["ms"] >= 0 for s in timeline), timeline
    times = [_time(s["at"]) for s in timeline]
    assert times == sorted(times), timeline
    assert _time(answer["created_at"]) <= times[0]
    for before, after, step in zip(times, times[1:], timeline[1:], strict=False):
        gap_ms = (after - before).total_seconds() * 1000
        assert math.isclose(gap_ms, step["ms"], abs_tol=1.0), (step, gap_ms)
    total = sum(s["ms"] for s in timeline)
    assert answer["elapsed_ms"] > 0
    assert math.isclose(answer["elapsed_ms"], total, abs_tol=1.0), (answer["elapsed_ms"], total)


def check_common(w: Walk, active_model: str) -> None:
    """What every decided application answers, whatever its outcome."""
    answer = w.answer
    assert w.status.status_code == 200, w.status.text
    assert w.status.json() == answer, "the status must be the answer recorded at decision time"
    assert answer["application_id"].startswith("a_")
    assert answer["decided_by"] == "model"
    decision = answer["decision"]
    if decision is not None:
        assert decision["model_version"] == active_model
        assert decision["policy_version"] == POLICY_VERSION
        assert decision["reasons"], "a decision names at least one reason"
        assert len(decision["reasons"]) <= 4, decision["reasons"]
        for reason in decision["reasons"]:
            assert set(reason) == {"code", "text_zh", "text_en"}
            assert reason["code"] and reason["text_zh"] and reason["text_en"]
            assert any("\u4e00" <= ch <= "\u9fff" for ch in reason["text_zh"]), reason
    assert w.notice.status_code == 200, w.notice.text
    notice = w.notice.json()
    assert notice["application_id"] == w.application_id
    assert notice["status"] == answer["status"]
    assert notice["summary"]["zh"] and notice["summary"]["en"]
    review = notice["right_to_review"]
    assert "第二十四条" in review["zh"] and "人工复核" in review["zh"], review
    assert "Article 24" in review["en"] and "review" in review["en"], review
    expected_reasons = decision["reasons"] if decision is not None else []
    assert notice["reasons"] == expected_reasons


def check_explanation(w: Walk, reference: ReferenceExplainer, active_model: str) -> dict:
    """The explanation adds up, and equals an independent TreeSHAP on the recorded values."""
    assert w.explanation.status_code == 200, w.explanation.text
    explanation = w.explanation.json()
    decision = w.answer["decision"]
    assert explanation["application_id"] == w.application_id
    assert explanation["model_version"] == active_model
    assert explanation["outcome"] == w.answer["status"]
    assert explanation["pd"] == decision["pd"]
    assert explanation["score"] == decision["score"]
    assert explanation["grade"] == decision["grade"]
    assert [(r["code"], r["text_zh"], r["text_en"]) for r in explanation["reasons"]] == [
        (r["code"], r["text_zh"], r["text_en"]) for r in decision["reasons"]]
    features = explanation["features"]
    assert [f["name"] for f in features] == reference.feature_names
    total = explanation["base_value"] + sum(f["contribution"] for f in features)
    assert math.isclose(total, explanation["margin"], abs_tol=TOLERANCE)

    base, contributions = reference.explain({f["name"]: f["value"] for f in features})
    assert math.isclose(base, explanation["base_value"], abs_tol=TOLERANCE)
    off = {f["name"]: (f["contribution"], contributions[f["name"]]) for f in features
           if not math.isclose(f["contribution"], contributions[f["name"]], abs_tol=TOLERANCE)}
    assert not off, f"contributions differ from an independent TreeSHAP: {off}"
    assert math.isclose(base + sum(contributions.values()), explanation["margin"],
                        abs_tol=TOLERANCE)
    return explanation


def check_svg(w: Walk) -> None:
    assert w.svg.status_code == 200, w.svg.text
    assert w.svg.headers["Content-Type"].split(";")[0] == "image/svg+xml"
    root = ElementTree.fromstring(w.svg.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    title = root.find("{http://www.w3.org/2000/svg}title")
    assert title is not None and w.application_id in (title.text or "")


def test_approved_walk(walks: dict[str, Walk], reference: ReferenceExplainer,
                       active_model: str) -> None:
    w = walks["approved"]
    check_common(w, active_model)
    answer = w.answer
    assert answer["status"] == "approved", answer
    assert answer["missing_sources"] == []
    check_timeline(answer, SCORED_STEPS)
    decision = answer["decision"]
    assert 3000 <= decision["credit_limit"] <= 200_000
    assert decision["credit_limit"] % 1000 == 0
    assert 0 < decision["annual_rate"] <= 0.24
    assert decision["terms_months"] == [3, 6, 12, 24, 36]
    assert decision["pd"] <= PD_CUTOFF
    assert decision["grade"] in "ABCDE"
    assert not any(r["code"].startswith("K") for r in decision["reasons"])
    explanation = check_explanation(w, reference, active_model)
    assert explanation["rules_fired"] == []
    check_svg(w)
    summary = w.notice.json()["summary"]
    assert f"¥{decision['credit_limit']:,.0f}" in summary["zh"]
    assert f"¥{decision['credit_limit']:,.0f}" in summary["en"]


def test_knock_out_decline_walk(walks: dict[str, Walk], reference: ReferenceExplainer,
                                active_model: str) -> None:
    w = walks["knocked_out"]
    check_common(w, active_model)
    answer = w.answer
    assert answer["status"] == "declined", answer
    check_timeline(answer, SCORED_STEPS)
    decision = answer["decision"]
    assert decision["credit_limit"] == 0
    assert decision["annual_rate"] is None
    assert decision["terms_months"] == []
    assert decision["reasons"][0]["code"] == "K01", decision["reasons"]
    assert "失信被执行人" in decision["reasons"][0]["text_zh"]
    explanation = check_explanation(w, reference, active_model)
    assert explanation["rules_fired"][0] == "court_listing", explanation["rules_fired"]
    assert explanation["reasons"][0]["source"] == "rule"
    check_svg(w)
    assert w.notice.json()["reasons"][0]["code"] == "K01"


def test_score_decline_walk(walks: dict[str, Walk], reference: ReferenceExplainer,
                            active_model: str) -> None:
    w = walks["score_declined"]
    check_common(w, active_model)
    answer = w.answer
    assert answer["status"] == "declined", answer
    check_timeline(answer, SCORED_STEPS)
    decision = answer["decision"]
    assert decision["pd"] > PD_CUTOFF
    assert decision["credit_limit"] == 0
    assert not any(r["code"].startswith("K") for r in decision["reasons"])
    explanation = check_explanation(w, reference, active_model)
    assert explanation["rules_fired"] == ["score"]
    assert all(r["source"] == "model" and r["contribution"] > 0
               for r in explanation["reasons"]), explanation["reasons"]
    check_svg(w)


def test_deferred_walk(walks: dict[str, Walk], active_model: str) -> None:
    w = walks["deferred"]
    check_common(w, active_model)
    answer = w.answer
    assert answer["status"] == "deferred", answer
    assert answer["decision"] is None
    assert answer["missing_sources"] == ["credit_report"]
    check_timeline(answer, DEFERRED_STEPS)
    gathered_ms = answer["timeline"][2]["ms"]
    deadline_ms = DEGRADED_DEADLINE_S * 1000
    assert deadline_ms * 0.95 <= gathered_ms <= deadline_ms + 1500, gathered_ms
    assert_envelope(w.explanation, 404, "not_scored")
    assert_envelope(w.svg, 404, "not_scored")
    notice = w.notice.json()
    assert notice["reasons"] == []
    assert notice["what_you_can_do"], notice


def test_every_decision_is_on_an_intact_audit_chain(deployment: Deployment,
                                                     walks: dict[str, Walk]) -> None:
    from audit import AuditQuery, Pseudonymiser

    verdict = deployment.store.verify()
    assert verdict.ok, verdict
    pseudonym = Pseudonymiser(PII_KEY)
    for name, w in walks.items():
        records = list(deployment.store.iter_records(
            AuditQuery(application_id=w.application_id)))
        # One record per decision, holding the application and every source's outcome.
        assert [r.kind for r in records] == ["decision.made"], name
        made = records[0].payload
        assert made["subject"] == pseudonym.national_id(w.applicant.national_id), name
        fetched = made["sources"]
        assert set(fetched) == set(SCOPES)
        assert made["outcome"] == w.answer["status"]
        assert made["consent_id"] == w.consent.json()["consent_id"]
        if name == "deferred":
            assert fetched["credit_report"]["status"] in ("timeout", "circuit_open"), fetched
            assert all(fetched[s]["status"] == "ok" for s in SCOPES if s != "credit_report")
            assert "features" not in made
            continue
        assert all(p["status"] == "ok" for p in fetched.values()), fetched
        explanation = w.explanation.json()
        assert {f["name"]: f["value"] for f in explanation["features"]}.items() <= (
            made["features"].items())
        assert made["contributions"] == {f["name"]: f["contribution"]
                                         for f in explanation["features"]}
        assert made["reason_codes"] == [r["code"] for r in explanation["reasons"]]


def test_auditors_verify_the_chain_and_replay_every_decision(deployment: Deployment,
                                                             walks: dict[str, Walk]) -> None:
    auditor = deployment.client("auditor")
    verdict = auditor.get("/v1/audit/verify")
    assert verdict.status_code == 200, verdict.text
    assert verdict.json()["ok"] is True, verdict.json()
    for name, w in walks.items():
        replay = auditor.post(f"/v1/audit/replay/{w.application_id}")
        assert replay.status_code == 200, replay.text
        assert replay.json()["match"] is True, (name, replay.json())


def test_personal_data_is_never_stored_or_logged_in_clear(deployment: Deployment,
                                                          walks: dict[str, Walk]) -> None:
    from sqlalchemy import text

    assert len(walks) == 4
    dumps = {}
    with deployment.store.engine.connect() as conn:
        for table in ("audit_records", "applications", "consents"):
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()
            assert rows, table
            dumps[table] = json.dumps([list(map(str, row)) for row in rows], ensure_ascii=False)
    dumps["server logs"] = deployment.logs()
    for where, content in dumps.items():
        leaked = [value for value in personal_data() if value in content]
        assert not leaked, f"{where} holds personal data in clear: {leaked}"
