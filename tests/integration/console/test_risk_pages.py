"""The risk officer's pages: searching applications, one application, reviews, model cards."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

from tests.integration.console.conftest import first

SVG = re.compile(r"<svg\b.*?</svg>", re.S)
LISTED = re.compile(r'href="/console/applications/(a_[0-9a-f]{32})"')
NEXT = re.compile(r'href="([^"]+)" rel="next"')


def listed(page: str) -> list[str]:
    return LISTED.findall(page)


def svgs(page: str) -> list[ElementTree.Element]:
    return [ElementTree.fromstring(found) for found in SVG.findall(page)]


def test_applications_are_searchable_by_outcome_grade_date_and_reason(decided_on_any_db):
    console, answers = decided_on_any_db
    officer = console.user("risk_officer")
    everything = listed(officer.text("/console/applications"))
    # Newest first.
    assert everything == [a["application_id"] for a in reversed(answers)]
    for outcome in ("approved", "declined"):
        ids = listed(officer.text(f"/console/applications?outcome={outcome}"))
        assert sorted(ids) == sorted(a["application_id"] for a in answers
                                     if a["status"] == outcome)
    grade = first(answers, "approved")["decision"]["grade"]
    ids = listed(officer.text(f"/console/applications?grade={grade}"))
    assert ids and sorted(ids) == sorted(
        a["application_id"] for a in answers
        if a["decision"] and a["decision"]["grade"] == grade)
    declined = first(answers, "declined")
    code = declined["decision"]["reasons"][0]["code"]
    ids = listed(officer.text(f"/console/applications?outcome=declined&reason={code.lower()}"))
    assert declined["application_id"] in ids
    assert set(ids) == {a["application_id"] for a in answers if a["status"] == "declined"
                        and code in [r["code"] for r in a["decision"]["reasons"]]}
    today = datetime.now(UTC).date()
    assert len(listed(officer.text(f"/console/applications?since={today}&until={today}"))) == 12
    tomorrow = today + timedelta(days=1)
    page = officer.text(f"/console/applications?since={tomorrow}")
    assert listed(page) == [] and "No application matches these filters" in page
    page = officer.text(f"/console/applications?application_id={declined['application_id']}")
    assert listed(page) == [declined["application_id"]]
    bad = officer.get("/console/applications?outcome=maybe&since=yesterday&grade=Z")
    text = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "must be a date" in text and "must be one of" in text


def test_long_lists_of_applications_paginate(console, people):
    answers = [console.apply(nid) for nid in people[:30]]
    officer = console.user("risk_officer")
    page = officer.text("/console/applications")
    seen = listed(page)
    assert len(seen) == 25 and "First page" not in page
    while (found := NEXT.search(page)):
        page = officer.text(html.unescape(found.group(1)))
        seen += listed(page)
    assert "Last page" in page and "First page" in page
    assert seen == [a["application_id"] for a in reversed(answers)]
    assert officer.get("/console/applications?cursor=not-a-cursor").status_code == 400


def test_empty_states_say_what_to_do_next(console):
    officer = console.user("risk_officer")
    page = officer.text("/console/applications")
    assert "No applications yet" in page and "POST /v1/applications" in page
    page = officer.text("/console/reviews")
    assert "No review is waiting" in page and "review-requests" in page
    page = officer.text("/console/reviews?state=resolved")
    assert "No review has been resolved yet" in page
    assert officer.get("/console/reviews?state=sideways").status_code == 400


def test_a_declined_application_shows_decision_reasons_sources_timeline_chart_features(decided):
    console, answers = decided
    declined = first(answers, "declined")
    aid = declined["application_id"]
    page = console.user("risk_officer").text(f"/console/applications/{aid}")
    assert "拒绝 declined" in page
    text = html.unescape(page)
    for reason in declined["decision"]["reasons"]:
        assert reason["text_zh"] in text and reason["text_en"] in text
    for source in ("公积金", "社保", "个税", "征信", "司法", "Credit report"):
        assert source in page
    assert page.count(" ms</td>") >= 5 + len(declined["timeline"])
    for step in declined["timeline"]:
        assert step["step"].replace("_", " ") in page
    chart, = svgs(page)
    ns = "{http://www.w3.org/2000/svg}"
    bars = chart.findall(f".//{ns}rect")
    assert len(bars) > 10 and aid in chart.find(f"{ns}title").text
    spec = console.wired.engine.model.spec
    assert all(f'<td class="mono">{name}</td>' in page for name in spec.names)
    assert "We are sorry: your application was not approved" in page
    assert "No review was requested" in page
    # The audit trail is an auditor's: a risk officer gets no link to it.
    assert "/console/audit?" not in page
    # An auditor reads the explanation and the reasons, as the API lets it, and the trail;
    # not what the applicant is told, nor the reviews, which the API does not give it either.
    audited = html.unescape(console.user("auditor").text(f"/console/applications/{aid}"))
    assert "/console/audit?" in audited and svgs(audited)
    assert all(reason["text_en"] in audited for reason in declined["decision"]["reasons"])
    assert "We are sorry" not in audited and 'id="h-reviews"' not in audited
    assert console.user("risk_officer").get("/console/applications/a_nope").status_code == 404


def test_a_deferred_application_has_no_chart_and_says_why(make_console, people):
    console = make_console(stub_faults="credit_report=error:1", deadline_s=2.0)
    answer = console.apply(people[0])
    assert answer["status"] == "deferred"
    page = console.user("risk_officer").text(f"/console/applications/{answer['application_id']}")
    assert "Deferred before scoring" in page and "credit_report" in page
    assert svgs(page) == [] and "暂缓 deferred" in page


def test_a_review_request_resolved_in_the_console_changes_status_and_notice(decided_on_any_db):
    console, answers = decided_on_any_db
    declined = first(answers, "declined")
    aid = declined["application_id"]
    review = console.request_review(aid)
    officer = console.user("risk_officer")
    queue = officer.text("/console/reviews")
    assert review["review_id"] in queue and "我的收入比记录的高" in queue
    assert f'/console/reviews/{review["review_id"]}/resolution' in queue
    assert "resolve in the queue" in officer.text(f"/console/applications/{aid}")

    response = officer.post(f"/console/reviews/{review['review_id']}/resolution",
                            {"outcome": "overturned", "note": "收入已核实 income verified"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/console/applications/{aid}"
    page = officer.text(response.headers["Location"])
    assert "the decline was overturned" in page and "批准 approved" in page
    assert "人工 decided by a person" in page
    assert "This decision has been reviewed by a person." in page
    assert "The model's original reasons" in page and "H01" in page

    status = console.call("GET", f"/v1/applications/{aid}").get_json()
    assert status["status"] == "approved" and status["decided_by"] == "person"
    assert status["review"] == {"review_id": review["review_id"], "state": "resolved",
                                "outcome": "overturned"}
    notice = console.call("GET", f"/v1/applications/{aid}/notice").get_json()
    assert notice["status"] == "approved" and notice["decided_by"] == "person"
    requested, = console.records("review.requested")
    resolved, = console.records("review.resolved")
    assert requested.application_id == resolved.application_id == aid
    assert requested.actor.startswith("channel:")
    assert resolved.actor == f"risk_officer:{officer_key_id(console)}"
    assert resolved.payload["resolution"] == "overturned"
    assert resolved.payload["outcome"] == "approved" and resolved.seq > requested.seq

    assert "No review is waiting" in officer.text("/console/reviews")
    done = officer.text("/console/reviews?state=resolved")
    assert review["review_id"] in done and "income verified" in done
    again = officer.post(f"/console/reviews/{review['review_id']}/resolution",
                         {"outcome": "upheld", "note": "again"})
    assert again.status_code == 303 and again.headers["Location"] == "/console/reviews"
    assert "already resolved" in officer.text("/console/reviews")
    assert len(console.records("review.resolved")) == 1


def officer_key_id(console) -> str:
    return console.keys["risk_officer"].split("_")[1]


def test_the_resolve_form_explains_what_is_wrong(decided):
    console, answers = decided
    approved = first(answers, "approved")
    review = console.request_review(approved["application_id"], "请再看一下")
    officer = console.user("risk_officer")
    path = f"/console/reviews/{review['review_id']}/resolution"
    form = officer.text("/console/reviews")
    # An approval may be amended, not overturned.
    assert 'value="amended"' in form and 'value="overturned"' not in form
    for body, message in (({"note": "x"}, "Choose whether to uphold, overturn or amend"),
                          ({"outcome": "upheld", "note": "  "}, "Write a note"),
                          ({"outcome": "overturned", "note": "x"}, "only a decline can be"),
                          ({"outcome": "amended", "note": "x"}, "needs the terms"),
                          ({"outcome": "amended", "note": "x", "credit_limit": "5000"},
                           "Give both the credit line and the rate"),
                          ({"outcome": "amended", "note": "x", "credit_limit": "lots",
                            "annual_rate": "0.126"}, "must be numbers"),
                          ({"outcome": "amended", "note": "x", "credit_limit": "5500",
                            "annual_rate": "0.126"}, "in steps of 1,000")):
        response = officer.post(path, body)
        assert response.status_code == 303
        assert message in officer.text("/console/reviews"), message
    assert console.wired.reviews.get(review["review_id"])["state"] == "open"
    assert console.records("review.resolved") == []
    # The form shows the approval's terms as they stand; a browser sends them when upholding.
    line = approved["decision"]["credit_limit"]
    assert f'value="{line:.0f}"' in form
    response = officer.post(path, {"outcome": "upheld", "note": "the decision stands",
                                   "credit_limit": f"{line:.0f}",
                                   "annual_rate": str(approved["decision"]["annual_rate"])})
    page = officer.text(response.headers["Location"])
    assert "the decision was upheld" in page and "批准 approved" in page
    missing = officer.post("/console/reviews/r_missing/resolution",
                           {"outcome": "upheld", "note": "x"})
    assert missing.status_code == 303
    assert "no such review" in officer.text("/console/reviews")


def test_the_model_page_shows_metrics_and_a_calibration_chart(console):
    officer = console.user("risk_officer")
    listing = officer.text("/console/models")
    assert 'href="/console/models/v1"' in listing and "0.8052" in listing
    page = officer.text("/console/models/v1")
    card = console.wired.engine.model.card
    for label in ("AUC", "Oracle AUC", "KS", "Gini", "Brier score"):
        assert f"<th scope=\"row\">{label}</th>" in page
    assert f"{card['metrics']['auc']:.4f}" in page
    ns = "{http://www.w3.org/2000/svg}"
    chart, = (svg for svg in svgs(page) if svg.find(f"{ns}title").text.startswith("Calibration"))
    table = card["metrics"]["calibration_table"]
    assert len(chart.findall(f".//{ns}circle")) == len(table) == 10
    assert page.count("<td class=\"num\">") >= 6 * len(table)
    assert officer.get("/console/models/v0").status_code == 404
    assert console.user("auditor").get("/console/models/v1").status_code == 200
