"""What would lead to approval, over HTTP: the answer, the record, the explanation, the notice."""

from __future__ import annotations

import json

from audit import AuditQuery
from datasources.stub.world import generate, population_ids
from scoring.online.spec import load_spec

SPEC = load_spec()
PEOPLE = population_ids(400, 2031)


def record(client, application_id: str) -> dict:
    store = client.app.extensions["flashloan"].store
    return list(store.iter_records(AuditQuery(application_id=application_id,
                                              kinds=("decision.made",))))[-1].payload


def decided(client, **request) -> list[dict]:
    return [client.apply(nid, **request).get_json() for nid in PEOPLE[:120]]


def test_a_decline_comes_with_checked_options_the_applicant_can_read(client):
    answers = decided(client)
    offered = [a for a in answers if a["status"] == "declined"
               and (a["decision"]["recourse"] or {}).get("status") == "offered"]
    assert offered, "no decline of 120 applicants could be lifted"
    answer = offered[0]
    shown = answer["decision"]["recourse"]
    assert shown["target"] == "approval" and 1 <= len(shown["suggestions"]) <= 3
    assert all(s["text_zh"] and s["text_en"] and s["steps"] for s in shown["suggestions"])
    # The channel reads texts only: no feature name, no model internals.
    text = json.dumps(answer, ensure_ascii=False)
    assert not any(f'"{name}"' in text for name in SPEC.names)
    assert '"changes"' not in text and '"features"' not in text
    # The record keeps every change, what it moved and what the engine decided on it.
    kept = record(client, answer["application_id"])["recourse"]
    assert kept["status"] == "offered"
    assert [s["text_en"] for s in kept["suggestions"]] == [s["text_en"]
                                                            for s in shown["suggestions"]]
    for suggestion in kept["suggestions"]:
        assert suggestion["result"]["outcome"] == "approved"
        assert all(SPEC.by_name(name).actionable for name in suggestion["features"])
    # The risk officer's explanation holds the record's; the notice lists the options.
    explained = client.get(f"/v1/applications/{answer['application_id']}/explanation",
                           who="risk_officer").get_json()
    assert explained["recourse"] == kept
    notice = client.get(f"/v1/applications/{answer['application_id']}/notice").get_json()
    todo = [a["en"] for a in notice["what_you_can_do"]]
    assert todo[0] == shown["note_en"]
    assert f"Option 1: {shown['suggestions'][0]['text_en']}." in todo


def test_a_listing_gets_no_option_and_says_so(client):
    people = population_ids(5000, 2031)
    world = generate(people)
    listed = [nid for nid, on in zip(people, world["court_dishonest_debtor"], strict=True)
              if on][:3]
    assert listed, "the stub world lists no dishonest debtor among 5,000 people"
    for nid in listed:
        answer = client.apply(nid).get_json()
        assert answer["status"] == "declined"
        assert "K01" in [r["code"] for r in answer["decision"]["reasons"]]
        shown = answer["decision"]["recourse"]
        assert shown["status"] == "none_possible" and not shown["suggestions"]
        assert "No change you could make now" in shown["note_en"]
        kept = record(client, answer["application_id"])["recourse"]
        assert "K01" in {r["code"] for r in kept["blocking_rules"]}


def test_a_full_approval_needs_no_option_and_a_partial_one_reaches_for_the_amount(client):
    answers = decided(client, amount=60_000, term_months=12)
    full = [a for a in answers if a["status"] == "approved" and a["decision"]["partial"] is None]
    partial = [a for a in answers if a["status"] == "approved" and a["decision"]["partial"]]
    assert full and partial
    assert all(a["decision"]["recourse"] is None for a in full)
    assert all(record(client, a["application_id"])["recourse"]["status"] == "not_needed"
               for a in full[:3])
    targets = {a["decision"]["recourse"]["target"] for a in partial}
    assert targets == {"requested_amount"}
    reached = [a for a in partial if a["decision"]["recourse"]["status"] == "offered"]
    assert reached
    for answer in reached[:5]:
        for suggestion in record(client, answer["application_id"])["recourse"]["suggestions"]:
            assert suggestion["result"]["credit_limit"] >= 60_000
            # Asking for less is no way to the amount asked.
            assert all(c["lever"] != "amount" for c in suggestion["changes"])
