"""Hostile input gets a 4xx in the one error envelope, never a 5xx, and changes nothing.

Every endpoint that reads a body or a date is sent, in place of each of its fields (or of the
whole body), JSON nested thousands deep, integers beyond any float, numbers beyond any float,
values of the wrong type, and times whose offset carries them outside what UTC can hold.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from service.persistence.tables import applications, loans, reviews
from tests.strategies import KNOWN_EXTREMES, extreme_time

HOSTILE = settings(max_examples=100, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow])
PLACEHOLDER = "\x00hostile\x00"


# -- hostile JSON, as text ---------------------------------------------------------------------

@st.composite
def deep_nesting(draw) -> str:
    """Arrays, objects or both, nested 10,000 to 30,000 levels deep."""
    shape = draw(st.sampled_from(["array", "object", "mixed"]))
    # An object level takes six bytes: keep under the 64 KiB body limit.
    levels = draw(st.integers(10_000, 30_000 if shape == "array" else 10_000))
    opening = {"array": "[", "object": '{"a":', "mixed": '[{"a":'}[shape]
    closing = {"array": "]", "object": "}", "mixed": "}]"}[shape]
    if shape == "mixed":
        levels //= 2
    return opening * levels + "0" + closing * levels


@st.composite
def huge_integer(draw) -> str:
    """An integer of 4,301 digits or more (beyond Python's integer-string limit), or of
    hundreds (beyond any float)."""
    digits = draw(st.one_of(st.integers(4_301, 20_000), st.integers(309, 4_300)))
    lead = draw(st.integers(1, 9))
    sign = draw(st.sampled_from(["", "-"]))
    return f"{sign}{lead}{'0' * (digits - 1)}"


HUGE_FLOATS = st.sampled_from(["1e400", "-1e400", "1E99999", "123456789e999999999"])


def wrong_types(kind: str):
    """JSON values of every type but ``kind``'s."""
    values = {"string": ['"30000"', '"x"'], "number": ["0", "-1", "12.5", "30000"],
              "boolean": ["true", "false"], "null": ["null"], "array": ["[]", "[1, 2]"],
              "object": ["{}", '{"a": 1}']}
    own = {"date": "string", "integer": "number", "days": "number"}.get(kind, kind)
    return st.sampled_from([v for k, vs in values.items() if k != own for v in vs])


def hostile(kind: str):
    """Hostile JSON text for a field of ``kind``."""
    classes = [deep_nesting(), huge_integer(), HUGE_FLOATS, wrong_types(kind)]
    if kind == "date":
        classes.append(extreme_time().map(json.dumps))
    if kind == "number":  # the amount: outside any product's range
        classes.append(st.sampled_from(["-5", "0", "1e300", '"30000"', "1000000000"]))
    if kind == "integer":  # the term: none a product offers
        classes.append(st.sampled_from(["7", "0", "-12", "12.0", '"12"', "100000"]))
    if kind == "days":  # days past due of a month `past_due`: none it can have
        classes.append(st.sampled_from(["0", "-3", "2.5", '"5"', "10000", "1e9"]))
    return st.one_of(*classes)


def _set(body: Any, path: str, value: Any) -> Any:
    if not path:
        return value
    head, _, rest = path.partition(".")
    if isinstance(body, list):
        copy = list(body)
        copy[int(head)] = _set(copy[int(head)], rest, value)
        return copy
    return {**body, head: _set(body.get(head), rest, value)}


def body_with(base: dict, path: str, fragment: str) -> str:
    """``base`` as JSON text with the value at ``path`` ("" for the body) replaced by
    ``fragment``, a piece of JSON text (a new member when the path names none)."""
    text = json.dumps(_set(base, path, PLACEHOLDER), ensure_ascii=False)
    return text.replace(json.dumps(PLACEHOLDER), fragment)


# A field whose rule is stated on another: a consent's two times are checked together.
CHECKED_WITH = {"granted_at": "expires_at", "expires_at": "granted_at"}


def assert_rejected(response, path: str) -> dict:
    """A 4xx in the envelope; a 422 names the field replaced (or one inside it, or the one
    it is checked with)."""
    assert 400 <= response.status_code < 500, (response.status_code,
                                                response.get_data(as_text=True)[:500])
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    error = body["error"]
    assert isinstance(error["message"], str) and isinstance(error["fields"], dict)
    if response.status_code == 422 and path:
        assert any(name in (path, CHECKED_WITH.get(path)) or name.startswith(f"{path}.")
                   for name in error["fields"]), (path, error)
    return error


# -- the endpoints -----------------------------------------------------------------------------

def consent_body(national_id: str) -> dict:
    now = datetime.now(UTC)
    return {"national_id": national_id, "scopes": ["credit_report", "court_records"],
            "purpose": "credit_application", "granted_at": now.isoformat(),
            "expires_at": (now + timedelta(days=30)).isoformat(), "text_version": "v1",
            "channel": "bank-app"}


# path -> kind of JSON value it holds ("" is the whole body).
CONSENT_FIELDS = {"": "object", "national_id": "string", "scopes": "array",
                  "scopes.0": "string", "purpose": "string", "granted_at": "date",
                  "expires_at": "date", "text_version": "string", "channel": "string",
                  "surplus": "string"}
APPLICATION_FIELDS = {"": "object", "applicant": "object", "applicant.national_id": "string",
                      "applicant.name": "string", "applicant.mobile": "string",
                      "request": "object", "request.amount": "number",
                      "request.term_months": "integer", "request.purpose": "string",
                      "consent_id": "string", "surplus": "string"}
REVIEW_FIELDS = {"": "object", "reason": "string", "surplus": "string"}
RESOLUTION_FIELDS = {"": "object", "outcome": "string", "note": "string", "surplus": "string"}
OUTCOME_FIELDS = {"": "object", "application_id": "string", "drawn": "boolean",
                  "drawn_at": "date", "amount": "number", "performance": "array",
                  "performance.0": "object", "performance.0.month": "string",
                  "performance.0.status": "string", "performance.0.days_past_due": "days",
                  "surplus": "string"}


def field_and_value(fields: dict[str, str]):
    return st.sampled_from(sorted(fields)).flatmap(
        lambda path: st.tuples(st.just(path), hostile(fields[path])))


@pytest.fixture
def scene(client, people):
    """A recorded consent, a decided application with an open review, and the counts of
    what is recorded, to check that hostile requests add nothing."""
    decided = client.apply(people[0]).get_json()
    spare = client.apply(people[1]).get_json()
    review = client.post(f"/v1/applications/{decided['application_id']}/review-requests",
                         {"reason": "请人工复核"}).get_json()
    consent = client.consent(people[2])
    return {"client": client, "consent_id": consent["consent_id"], "national_id": people[2],
            "application_id": spare["application_id"], "review_id": review["review_id"],
            "counts": counts(client)}


def counts(client) -> tuple[int, int, int]:
    store = client.app.extensions["flashloan"].store
    with store.engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(applications)).scalar_one(),
                conn.execute(select(func.count()).select_from(reviews)).scalar_one(),
                store.head().seq)


def post_text(client, path: str, text: str, who: str = "channel", headers=None):
    return client.http.post(path, data=text.encode(), headers={
        **client.headers(who), "Content-Type": "application/json", **(headers or {})})


@HOSTILE
@given(change=field_and_value(CONSENT_FIELDS))
@example(change=("granted_at", json.dumps(KNOWN_EXTREMES[0])))
@example(change=("expires_at", json.dumps(KNOWN_EXTREMES[1])))
@example(change=("", "[" * 30_000 + "]" * 30_000))
def test_consents_refuse_hostile_bodies(scene, change):
    path, fragment = change
    client = scene["client"]
    base = consent_body(scene["national_id"])
    response = post_text(client, "/v1/consents", body_with(base, path, fragment))
    assert_rejected(response, path)
    assert counts(client) == scene["counts"]


@HOSTILE
@given(change=field_and_value(APPLICATION_FIELDS))
@example(change=("request.amount", "9" * 4_301))
@example(change=("request.term_months", "1" + "0" * 4_300))
@example(change=("request", '{"a":' * 10_000 + "0" + "}" * 10_000))
def test_applications_refuse_hostile_bodies(scene, change):
    path, fragment = change
    client = scene["client"]
    base = client.application(scene["national_id"], scene["consent_id"])
    response = post_text(client, "/v1/applications", body_with(base, path, fragment),
                         headers={"Idempotency-Key": "hostile"})
    assert_rejected(response, path)
    assert counts(client) == scene["counts"]


@HOSTILE
@given(change=field_and_value(REVIEW_FIELDS))
@example(change=("reason", "[" * 20_000 + "]" * 20_000))
def test_review_requests_refuse_hostile_bodies(scene, change):
    path, fragment = change
    client = scene["client"]
    response = post_text(client, f"/v1/applications/{scene['application_id']}/review-requests",
                         body_with({"reason": "请人工复核"}, path, fragment))
    assert_rejected(response, path)
    assert counts(client) == scene["counts"]


@HOSTILE
@given(change=field_and_value(RESOLUTION_FIELDS))
@example(change=("note", "[" * 20_000 + "]" * 20_000))
def test_resolutions_refuse_hostile_bodies(scene, change):
    path, fragment = change
    client = scene["client"]
    response = post_text(client, f"/v1/reviews/{scene['review_id']}/resolution",
                         body_with({"outcome": "upheld", "note": "checked"}, path, fragment),
                         who="risk_officer")
    assert_rejected(response, path)
    assert counts(client) == scene["counts"]


@pytest.fixture
def loan_scene(client, people):
    """An approved application, and the counts of what is recorded (loans too)."""
    answers = (client.apply(nid).get_json() for nid in people[:8])
    approved = next(a for a in answers if a["status"] == "approved")
    return {"client": client, "application_id": approved["application_id"],
            "counts": (*counts(client), loan_count(client))}


def loan_count(client) -> int:
    with client.app.extensions["flashloan"].store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(loans)).scalar_one()


@HOSTILE
@given(change=field_and_value(OUTCOME_FIELDS))
@example(change=("amount", "9" * 4_301))
@example(change=("performance.0.days_past_due", "1" + "0" * 4_300))
@example(change=("drawn_at", json.dumps(KNOWN_EXTREMES[1])))
def test_outcomes_refuse_hostile_bodies(loan_scene, change):
    path, fragment = change
    client = loan_scene["client"]
    now = datetime.now(UTC)
    base = {"application_id": loan_scene["application_id"], "drawn": True,
            "drawn_at": now.isoformat(), "amount": 3000.0,
            "performance": [{"month": now.strftime("%Y-%m"), "status": "past_due",
                             "days_past_due": 3}]}
    response = post_text(client, "/v1/outcomes", body_with(base, path, fragment),
                         who="servicing")
    assert_rejected(response, path)
    assert (*counts(client), loan_count(client)) == loan_scene["counts"]


# -- bodies over the limit --------------------------------------------------------------------

def padded(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    return b'{"pad": "' + b"x" * (size - 11) + b'"}'


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_is_a_413_however_it_is_sent(client, chunked):
    """With a Content-Length, or chunked (no length: the server, as gunicorn does, says it
    ends the stream): a byte over the limit is refused whole, never read cut short."""
    limit = client.app.config["MAX_CONTENT_LENGTH"]

    def send(body: bytes):
        headers = {**client.headers("channel"), "Content-Type": "application/json"}
        if not chunked:
            return client.http.post("/v1/consents", data=body, headers=headers)
        return client.http.post("/v1/consents", input_stream=io.BytesIO(body),
                                headers={**headers, "Transfer-Encoding": "chunked"},
                                environ_overrides={"wsgi.input_terminated": True})

    for size in (limit + 1, 3 * limit):
        response = send(padded(size))
        assert response.status_code == 413, response.get_data(as_text=True)[:300]
        assert response.get_json()["error"]["code"] == "payload_too_large"
    # A body of the limit exactly is read whole: valid JSON, refused for its fields.
    whole = send(padded(limit))
    assert whole.status_code == 422 and "pad" in whole.get_json()["error"]["fields"]


# -- dates in the query string -----------------------------------------------------------------

def _in_utc(text: str) -> bool:
    try:
        datetime.fromisoformat(text).astimezone(UTC)
    except OverflowError:
        return False
    return True


# (text, whether it is a well-formed time with an offset)
QUERY_TIMES = st.one_of(
    extreme_time().map(lambda text: (text, True)),
    st.sampled_from(["", "0", "yesterday", "9" * 5_000, "-1", "2026-13-01T00:00:00Z",
                     "2026-01-01T00:00:00+24:00", "2026-01-01", "0000-01-01T00:00:00Z",
                     "10000-01-01T00:00:00Z"]).map(lambda text: (text, False)))


@HOSTILE
@given(endpoint=st.sampled_from(["/v1/audit/records", "/v1/audit/export"]),
       name=st.sampled_from(["since", "until"]), time=QUERY_TIMES)
@example(endpoint="/v1/audit/records", name="since", time=(KNOWN_EXTREMES[0], True))
@example(endpoint="/v1/audit/records", name="until", time=(KNOWN_EXTREMES[1], True))
@example(endpoint="/v1/audit/export", name="since", time=(KNOWN_EXTREMES[0], True))
@example(endpoint="/v1/audit/export", name="until", time=(KNOWN_EXTREMES[1], True))
def test_audit_searches_refuse_times_utc_cannot_hold(client, endpoint, name, time):
    value, well_formed = time
    response = client.http.get(endpoint, query_string={name: value},
                               headers=client.headers("auditor"))
    response.get_data()  # an export streams: read it whole
    if well_formed and _in_utc(value):
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        return
    error = assert_rejected(response, name)
    assert response.status_code == 422 and name in error["fields"], error


def test_what_a_body_or_a_time_can_cause_is_documented(client):
    spec = client.get("/openapi.json", who=None).get_json()
    bodies = [(path, method, op) for path, item in spec["paths"].items()
              for method, op in item.items() if isinstance(op, dict) and "requestBody" in op]
    assert {(method, path) for path, method, _ in bodies} >= {
        ("post", "/v1/consents"), ("post", "/v1/applications"),
        ("post", "/v1/applications/{application_id}/review-requests"),
        ("post", "/v1/reviews/{review_id}/resolution"), ("post", "/v1/outcomes")}
    for path, method, op in bodies:
        assert {"400", "413", "415", "422"} <= set(op["responses"]), (method, path)
        assert op["responses"]["400"]["$ref"].endswith("/BAD_REQUEST")
    for path in ("/v1/audit/records", "/v1/audit/export"):
        assert "422" in spec["paths"][path]["get"]["responses"]
    error = spec["components"]["responses"]["BAD_REQUEST"]["content"]["application/json"]
    assert error["schema"]["$ref"].endswith("/Error")
