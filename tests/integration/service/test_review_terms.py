"""Partial approvals and the terms a risk officer sets on review, over HTTP."""

from __future__ import annotations

import pytest

from audit import AuditQuery


def records(client, **filters):
    return list(client.app.extensions["flashloan"].store.iter_records(AuditQuery(**filters)))


def first(client, people, status, **request):
    for nid in people:
        answer = client.apply(nid, **request).get_json()
        if answer["status"] == status:
            return answer
    pytest.fail(f"no applicant of the population is {status}")


def review(client, answer) -> str:
    r = client.post(f"/v1/applications/{answer['application_id']}/review-requests",
                    {"reason": "please look again"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["review_id"]


def resolve(client, review_id, **body):
    return client.post(f"/v1/reviews/{review_id}/resolution",
                       {"note": "checked against payslips", **body}, who="risk_officer")


def test_a_line_below_the_amount_asked_is_a_partial_approval_with_its_bound(client, people):
    answer = first(client, people, "approved", amount=200_000, term_months=12)
    decision = answer["decision"]
    assert decision["requested_amount"] == 200_000
    partial = decision["partial"]
    assert decision["credit_limit"] < 200_000
    assert partial["credit_limit"] == decision["credit_limit"]
    assert partial["requested_amount"] == 200_000
    assert partial["bound"] in ("income_multiple", "debt_service")
    assert partial["code"] in ("L01", "L02") and partial["text_en"] and partial["text_zh"]
    notice = client.get(f"/v1/applications/{answer['application_id']}/notice").get_json()
    assert "200,000" in notice["summary"]["en"] and "200,000" in notice["summary"]["zh"]
    assert partial["text_en"] in notice["summary"]["en"]
    # The record keeps which bound set the line.
    made = records(client, application_id=answer["application_id"],
                   kinds=("decision.made",))[0].payload
    assert made["decision"]["line_bound"] == partial["bound"]


def test_a_line_that_covers_the_amount_is_no_partial_approval(client, people):
    answer = first(client, people, "approved", amount=3000, term_months=36)
    assert answer["decision"]["partial"] is None
    assert answer["decision"]["requested_amount"] == 3000


def test_an_officer_overturns_a_decline_on_terms_of_their_choosing(client, people):
    answer = first(client, people, "declined")
    review_id = review(client, answer)
    r = resolve(client, review_id, outcome="overturned",
                terms={"credit_limit": 12_000, "annual_rate": 0.18})
    assert r.status_code == 200, r.get_json()
    aid = answer["application_id"]
    now = client.get(f"/v1/applications/{aid}").get_json()
    assert (now["status"], now["decided_by"]) == ("approved", "person")
    decision = now["decision"]
    assert (decision["credit_limit"], decision["annual_rate"], decision["grade"]) == (
        12_000, 0.18, "E")
    assert [r["code"] for r in decision["reasons"]] == ["H01"]
    assert decision.get("recourse") is None
    resolved = records(client, application_id=aid, kinds=("review.resolved",))[0]
    assert resolved.payload["decision"]["credit_limit"] == 12_000
    assert resolved.payload["terms_chosen_by"] == "person"
    assert resolved.payload["before"]["credit_limit"] == 0.0
    assert resolved.payload["note"] == "checked against payslips"
    # The terms were checked against the decision's own policy, which the record names.
    made = records(client, application_id=aid, kinds=("decision.made",))[0].payload
    assert (resolved.payload["policy_version"], resolved.payload["policy_digest"]) == (
        made["policy_version"], made["policy_digest"])
    notice = client.get(f"/v1/applications/{aid}/notice").get_json()
    assert notice["decided_by"] == "person" and "¥12,000" in notice["summary"]["en"]
    assert "18.00%" in notice["summary"]["en"]


def test_an_officer_amends_an_approvals_line(client, people):
    answer = first(client, people, "approved")
    before = answer["decision"]["credit_limit"]
    review_id = review(client, answer)
    new_line = 3000 if before > 3000 else 4000
    r = resolve(client, review_id, outcome="amended",
                terms={"credit_limit": new_line, "annual_rate": 0.126})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["outcome"] == "amended"
    now = client.get(f"/v1/applications/{answer['application_id']}").get_json()
    assert (now["status"], now["decided_by"]) == ("approved", "person")
    assert (now["decision"]["credit_limit"], now["decision"]["annual_rate"]) == (new_line,
                                                                                 0.126)
    assert [r["code"] for r in now["decision"]["reasons"]] == ["H02"]
    resolved = records(client, application_id=answer["application_id"],
                       kinds=("review.resolved",))[0].payload
    assert resolved["resolution"] == "amended" and resolved["before"]["credit_limit"] == before
    assert client.app.extensions["flashloan"].store.verify().ok


@pytest.mark.parametrize(("terms", "field"), [
    ({"credit_limit": 12_500, "annual_rate": 0.18}, "terms.credit_limit"),
    ({"credit_limit": 250_000, "annual_rate": 0.18}, "terms.credit_limit"),
    ({"credit_limit": 12_000, "annual_rate": 0.30}, "terms.annual_rate"),
    ({"credit_limit": 12_000, "annual_rate": 0.10}, "terms.annual_rate"),
    ({"credit_limit": "12000", "annual_rate": 0.18}, "terms.credit_limit"),  # not a number
    ({"credit_limit": 12_000, "annual_rate": True}, "terms.annual_rate"),
])
def test_terms_outside_the_policy_are_refused_and_nothing_changes(client, people, terms,
                                                                   field):
    answer = first(client, people, "declined")
    review_id = review(client, answer)
    count = len(records(client, application_id=answer["application_id"]))
    r = resolve(client, review_id, outcome="overturned", terms=terms)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["fields"]
    assert len(records(client, application_id=answer["application_id"])) == count
    still = client.get(f"/v1/reviews/{review_id}", who="risk_officer").get_json()
    assert still["state"] == "open"
    assert client.get(f"/v1/applications/{answer['application_id']}").get_json()[
        "status"] == "declined"


def test_resolutions_that_do_not_fit_the_decision_are_refused(client, people):
    declined = first(client, people, "declined")
    approved = first(client, people, "approved")
    on_decline, on_approval = review(client, declined), review(client, approved)
    terms = {"credit_limit": 12_000, "annual_rate": 0.18}
    r = resolve(client, on_decline, outcome="amended", terms=terms)
    assert r.status_code == 409 and "outcome" in r.get_json()["error"]["fields"]
    r = resolve(client, on_approval, outcome="overturned")
    assert r.status_code == 409
    r = resolve(client, on_approval, outcome="amended")
    assert r.status_code == 422 and "terms" in r.get_json()["error"]["fields"]
    r = resolve(client, on_approval, outcome="upheld", terms=terms)
    assert r.status_code == 422 and "terms" in r.get_json()["error"]["fields"]
    r = resolve(client, on_approval, outcome="amended", terms={"credit_limit": 5000})
    assert r.status_code == 422
