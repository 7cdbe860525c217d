"""A human review over real HTTP: requested by the channel, resolved by a risk officer."""

from __future__ import annotations

from tests.e2e.applicants import SCORE_DECLINED
from tests.e2e.conftest import Deployment, apply, assert_envelope, record_consent


def test_a_review_overturns_a_decline_and_every_step_is_audited(deployment: Deployment) -> None:
    channel = deployment.client("channel")
    officer = deployment.client("risk_officer")
    auditor = deployment.client("auditor")
    decided = apply(channel, SCORE_DECLINED, record_consent(channel, SCORE_DECLINED))
    assert decided.status_code == 201, decided.text
    answer = decided.json()
    assert answer["status"] == "declined"
    aid = answer["application_id"]

    filed = channel.post(f"/v1/applications/{aid}/review-requests",
                         json={"reason": "My income has risen since last year."})
    assert filed.status_code == 201, filed.text
    review_id = filed.json()["review_id"]
    assert_envelope(channel.post(f"/v1/applications/{aid}/review-requests",
                                 json={"reason": "again"}), 409)
    assert channel.get(f"/v1/applications/{aid}").json()["review"] == {
        "review_id": review_id, "state": "open", "outcome": None}

    queue = officer.get("/v1/reviews?state=open&limit=200").json()["items"]
    assert review_id in [item["review_id"] for item in queue]
    detail = officer.get(f"/v1/reviews/{review_id}").json()
    assert detail["explanation"]["outcome"] == "declined"
    resolved = officer.post(f"/v1/reviews/{review_id}/resolution",
                            json={"outcome": "overturned", "note": "Payslips checked."})
    assert resolved.status_code == 200, resolved.text

    status = channel.get(f"/v1/applications/{aid}").json()
    assert (status["status"], status["decided_by"]) == ("approved", "person")
    assert 0 < status["decision"]["credit_limit"] <= 200_000
    assert status["timeline"][-1]["step"] == "review_resolved"
    notice = channel.get(f"/v1/applications/{aid}/notice").json()
    assert notice["status"] == "approved" and notice["decided_by"] == "person"

    records = auditor.get(f"/v1/audit/records?application_id={aid}&limit=50").json()["items"]
    kinds = [r["kind"] for r in records]
    assert kinds[-2:] == ["review.requested", "review.resolved"]
    assert records[-1]["payload"]["resolution"] == "overturned"
    replay = auditor.post(f"/v1/audit/replay/{aid}").json()
    assert replay["match"] is True and replay["recorded"]["outcome"] == "declined"
    assert auditor.get("/v1/audit/verify").json()["ok"] is True
