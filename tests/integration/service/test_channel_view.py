"""A channel sees only the applicant-facing view: no feature, contribution or model hash.

Every answer a channel key can get is walked (consents, applications, read-backs, notices,
review requests, errors, health) and searched for what only risk officers and auditors may
read: the explanation's internals. What would lead to approval reaches the channel as words
for the applicant, which may cite the applicant's own figures the change is about (a card
utilisation, a balance to repay), never as features or values of the model's.
"""

from __future__ import annotations

from typing import Any

import pytest

# Keys of the explanation that the applicant-facing view never carries.
INTERNAL_KEYS = frozenset({"features", "contributions", "contribution", "margin",
                           "base_value", "model_sha256", "rules_fired"})


def _walk(node: Any, path: str = "$"):
    """Yield ``(path, key, value)`` for every member and item of a JSON value."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield path, None, value
            yield from _walk(value, f"{path}[{i}]")


def leaks(response, feature_names: frozenset[str], model_sha256: str) -> list[str]:
    """Return where an answer carries something only the full explanation may carry."""
    found = []
    text = response.get_data(as_text=True)
    if model_sha256 in text:
        found.append("the model's SHA-256")
    body = response.get_json(silent=True)
    for path, key, value in _walk(body):
        if key in INTERNAL_KEYS:
            found.append(f"{path}.{key}")
        if key in feature_names:
            found.append(f"{path}.{key} (a feature)")
        if isinstance(value, str) and value in feature_names:
            found.append(f"{path}: {value!r} (a feature)")
    return found


class ChannelWalk:
    """A channel's calls, each answer kept with what was asked."""

    def __init__(self, client) -> None:
        self.client = client
        self.answers: list[tuple[str, Any]] = []

    def keep(self, label: str, response, status: int):
        assert response.status_code == status, (label, response.get_json())
        self.answers.append((label, response))
        return response.get_json()

    def get(self, path: str, status: int = 200):
        return self.keep(f"GET {path}", self.client.get(path), status)

    def post(self, path: str, body, status: int, headers=None):
        return self.keep(f"POST {path}", self.client.post(path, body, headers=headers), status)

    def delete(self, path: str, status: int = 200):
        return self.keep(f"DELETE {path}", self.client.delete(path), status)


def test_every_answer_to_a_channel_is_applicant_facing(make_client, people):
    client = make_client()
    wired = client.app.extensions["flashloan"]
    feature_names = frozenset(wired.engine.model.spec.names)
    walk = ChannelWalk(client)

    # Consents: record, read, withdraw, and a refused one.
    consent = client.consent(people[0])
    walk.get(f"/v1/consents/{consent['consent_id']}")
    spare = client.consent(people[0])
    walk.delete(f"/v1/consents/{spare['consent_id']}")
    walk.post("/v1/consents", {"national_id": people[0]}, 422)

    # Applications until one of each decided outcome, with their read-backs and notices.
    decided: dict[str, str] = {}
    for nid in people[1:30]:
        consented = client.consent(nid)
        answer = walk.post("/v1/applications",
                           client.application(nid, consented["consent_id"]), 201,
                           headers={"Idempotency-Key": f"walk-{nid}"})
        decided.setdefault(answer["status"], answer["application_id"])
        if {"approved", "declined"} <= set(decided):
            # The same key and body again: the stored answer, as it was sent.
            walk.post("/v1/applications",
                      client.application(nid, consented["consent_id"]), 201,
                      headers={"Idempotency-Key": f"walk-{nid}"})
            break
    assert {"approved", "declined"} <= set(decided), decided
    deferring = make_client(stub_faults="credit_report=error:1.0")
    nid = people[31]
    consented = deferring.consent(nid)
    deferred = deferring.post("/v1/applications",
                              deferring.application(nid, consented["consent_id"]))
    walk.keep("POST /v1/applications (deferred)", deferred, 201)
    decided["deferred"] = deferred.get_json()["application_id"]

    for application_id in decided.values():
        walk.get(f"/v1/applications/{application_id}")
        walk.get(f"/v1/applications/{application_id}/notice")
    # Review requests: granted for decisions, refused twice over, and the read-back after.
    for outcome in ("approved", "declined"):
        path = f"/v1/applications/{decided[outcome]}/review-requests"
        walk.post(path, {"reason": "我的收入比记录的高，请人工复核。"}, 201)
        walk.post(path, {"reason": "again"}, 409)
        walk.get(f"/v1/applications/{decided[outcome]}")
        walk.get(f"/v1/applications/{decided[outcome]}/notice")
    walk.post(f"/v1/applications/{decided['deferred']}/review-requests", {"reason": "why"}, 409)
    walk.post(f"/v1/applications/{decided['declined']}/review-requests", {"reason": ""}, 422)

    # What a channel may not read, and what does not exist.
    declined = decided["declined"]
    for path in (f"/v1/applications/{declined}/explanation",
                 f"/v1/applications/{declined}/explanation.svg", "/v1/reviews",
                 "/v1/models", "/v1/audit/records"):
        walk.get(path, 403)
    walk.get("/v1/applications/a_00000000000000000000000000000000", 404)
    walk.keep("GET another channel's application",
              client.get(f"/v1/applications/{declined}", who="other_channel"), 404)
    walk.post("/v1/applications", {"request": {"amount": "lots"}}, 422)
    walk.get("/healthz")
    walk.get("/readyz")

    assert len(walk.answers) > 30
    for label, response in walk.answers:
        assert leaks(response, feature_names, wired.engine.model.sha256) == [], label


@pytest.mark.parametrize("role", ["risk_officer", "auditor"])
def test_the_full_explanation_is_still_theirs(client, people, role):
    """The check above is not vacuous: the explanation does carry what it looks for."""
    answer = client.apply(people[2]).get_json()
    response = client.get(f"/v1/applications/{answer['application_id']}/explanation", who=role)
    wired = client.app.extensions["flashloan"]
    found = leaks(response, frozenset(wired.engine.model.spec.names), wired.engine.model.sha256)
    assert "the model's SHA-256" in found
    assert {"$.margin", "$.base_value", "$.model_sha256"} <= set(found)
    assert any("(a feature)" in f for f in found)


def test_risk_officers_read_a_review_with_its_explanation(client, people):
    answer = client.apply(people[3]).get_json()
    requested = client.post(f"/v1/applications/{answer['application_id']}/review-requests",
                            {"reason": "请人工复核"})
    assert requested.status_code == 201
    review = client.get(f"/v1/reviews/{requested.get_json()['review_id']}",
                        who="risk_officer").get_json()
    assert review["explanation"]["model_sha256"] == client.app.extensions[
        "flashloan"].engine.model.sha256
    assert review["application"] == client.get(
        f"/v1/applications/{answer['application_id']}").get_json()
