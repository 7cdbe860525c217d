"""The console shows what would lead to approval, partial approvals, and terms set on review."""

from __future__ import annotations

from datasources.stub.world import population_ids

PEOPLE = population_ids(120, 2031)


def test_a_declines_options_are_shown_with_their_checks(console):
    officer = console.user("risk_officer")
    for nid in PEOPLE:
        answer = console.apply(nid)
        recourse = (answer["decision"] or {}).get("recourse") or {}
        if answer["status"] == "declined" and recourse.get("status") == "offered":
            break
    else:
        raise AssertionError("no decline of 120 applicants could be lifted")
    page = officer.text(f"/console/applications/{answer['application_id']}")
    assert 'id="recourse"' in page and "What would lead to approval" in page
    first = recourse["suggestions"][0]
    assert f"Option 1: {first['text_en']}" in page and first["text_zh"] in page
    assert "Checked by deciding the changed application again: approved" in page
    # The notice beside it tells the applicant the same options.
    assert f"Option 1: {first['text_en']}." in page


def test_a_partial_approval_says_what_set_the_line(console):
    officer = console.user("risk_officer")
    for nid in PEOPLE:
        answer = console.apply(nid, amount=60_000)
        if answer["status"] == "approved" and answer["decision"]["partial"]:
            break
    else:
        raise AssertionError("no partial approval among 120 applicants")
    partial = answer["decision"]["partial"]
    page = officer.text(f"/console/applications/{answer['application_id']}")
    assert 'id="partial"' in page and "Asked for ¥60,000" in page
    assert partial["code"] in page and partial["text_en"].replace("'", "&#39;") in page
    assert "What would lead to the amount asked for" in page


def test_an_officer_amends_a_line_through_the_form(console):
    officer = console.user("risk_officer")
    approved = next(a for a in (console.apply(nid) for nid in PEOPLE)
                    if a["status"] == "approved")
    review = console.request_review(approved["application_id"], "额度太低，请复核")
    form = officer.text("/console/reviews")
    assert 'name="credit_limit"' in form and 'name="annual_rate"' in form
    response = officer.post(f"/console/reviews/{review['review_id']}/resolution", {
        "outcome": "amended", "note": "a loan was repaid last month",
        "credit_limit": "8000", "annual_rate": "0.156"})
    assert response.status_code == 303
    page = officer.text(response.headers["Location"])
    assert "the terms changed" in page and "¥8,000 at 15.60% a year" in page
    assert "decided by a person" in page
    resolved = console.records("review.resolved")[-1].payload
    assert resolved["decision"] == {"grade": "D", "credit_limit": 8000.0, "annual_rate": 0.156,
                                    "terms_months": [3, 6, 12, 24, 36]}
    assert resolved["before"]["credit_limit"] == approved["decision"]["credit_limit"]
