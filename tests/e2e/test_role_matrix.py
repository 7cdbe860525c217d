"""Every endpoint × every caller answers with its documented status and the one error envelope,
and /openapi.json lists every status the matrix sees.

The matrix is data: to cover a new endpoint, add one ``Endpoint`` to ``ENDPOINTS`` (a test
fails until every operation of /openapi.json is there).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.e2e.applicants import ROLE_MATRIX, application_body, consent_body
from tests.e2e.conftest import (
    CHANNEL,
    HTTP_TIMEOUT_S,
    KEYS,
    Deployment,
    assert_envelope,
    record_consent,
)

pytestmark = pytest.mark.slow

BACKTEST_WAIT_S = 120.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One operation and who may call it.

    ``own``: a channel sees only its own resources; another channel's key gets a 404, as if
    the resource did not exist. ``other_channel``: what another channel gets instead, when
    that is neither the success nor a 404. ``fresh``: the call uses its resource up (a
    withdrawal, a review request, a resolution, a key's revocation), so each call gets a new
    one.
    """

    method: str
    path: str
    roles: frozenset[str]
    success: int = 200
    content_type: str = "application/json"
    own: bool = False
    body: str | None = None           # a key of BODIES
    fresh: str | None = None          # "consent" | "application" | "review" | "key" | "backtest"
    other_channel: int | None = None

    @property
    def public(self) -> bool:
        return not self.roles

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


def _roles(*names: str) -> frozenset[str]:
    return frozenset(names)


APP = "/v1/applications/{application_id}"
ENDPOINTS = (
    Endpoint("POST", "/v1/consents", _roles("channel"), 201, body="consent"),
    Endpoint("GET", "/v1/consents/{consent_id}", _roles("channel", "risk_officer", "auditor"),
             own=True),
    Endpoint("DELETE", "/v1/consents/{consent_id}", _roles("channel"), own=True,
             fresh="consent"),
    # Another channel may apply, but not citing this channel's consent.
    Endpoint("POST", "/v1/applications", _roles("channel"), 201, body="application",
             other_channel=422),
    Endpoint("GET", APP, _roles("channel", "risk_officer", "auditor"), own=True),
    Endpoint("GET", APP + "/explanation", _roles("risk_officer", "auditor")),
    Endpoint("GET", APP + "/explanation.svg", _roles("risk_officer", "auditor"),
             content_type="image/svg+xml"),
    Endpoint("GET", APP + "/notice", _roles("channel", "risk_officer"), own=True),
    Endpoint("POST", APP + "/review-requests", _roles("channel"), 201, own=True,
             body="review_request", fresh="application"),
    # The matrix's applications are decided, so a retry answers them as they stand.
    Endpoint("POST", APP + "/retry", _roles("channel"), own=True, body="retry"),
    Endpoint("GET", "/v1/reviews", _roles("risk_officer")),
    Endpoint("GET", "/v1/reviews/{review_id}", _roles("risk_officer")),
    Endpoint("POST", "/v1/reviews/{review_id}/resolution", _roles("risk_officer"),
             body="resolution", fresh="review"),
    Endpoint("GET", "/v1/audit/records", _roles("auditor")),
    Endpoint("GET", "/v1/audit/records/{seq}", _roles("auditor")),
    Endpoint("GET", "/v1/audit/verify", _roles("auditor")),
    Endpoint("GET", "/v1/audit/export", _roles("auditor"), content_type="application/x-ndjson"),
    Endpoint("POST", "/v1/audit/replay/{application_id}", _roles("auditor")),
    # The matrix's applications are approved: the servicing system reports on their loans.
    Endpoint("POST", "/v1/outcomes", _roles("servicing"), body="outcome"),
    Endpoint("GET", "/v1/monitoring/calibration", _roles("risk_officer", "auditor", "admin")),
    Endpoint("GET", "/v1/monitoring/drift", _roles("risk_officer", "auditor", "admin")),
    # Outcomes by sex, age band and province: never the administrator's.
    Endpoint("GET", "/v1/monitoring/fairness", _roles("risk_officer", "auditor")),
    Endpoint("GET", "/v1/reasons", _roles("channel", "risk_officer", "auditor", "admin")),
    Endpoint("GET", "/v1/models", _roles("risk_officer", "auditor", "admin")),
    Endpoint("GET", "/v1/models/{version}", _roles("risk_officer", "auditor", "admin")),
    Endpoint("GET", "/v1/strategies", _roles("risk_officer", "auditor", "admin")),
    Endpoint("POST", "/v1/backtests", _roles("risk_officer"), 202, body="backtest"),
    Endpoint("GET", "/v1/backtests", _roles("risk_officer", "auditor")),
    Endpoint("GET", "/v1/backtests/{backtest_id}", _roles("risk_officer", "auditor")),
    Endpoint("DELETE", "/v1/backtests/{backtest_id}", _roles("risk_officer"),
             fresh="backtest"),
    Endpoint("GET", "/v1/backtests/{backtest_id}/report", _roles("risk_officer", "auditor"),
             content_type="text/html"),
    # The champion set again as it stands: the deployment decides as before.
    Endpoint("PUT", "/v1/strategies", _roles("admin"), body="strategies"),
    Endpoint("GET", "/metrics", _roles("admin", "auditor"), content_type="text/plain"),
    Endpoint("GET", "/v1/keys", _roles("admin")),
    Endpoint("POST", "/v1/keys", _roles("admin"), 201, body="key"),
    Endpoint("DELETE", "/v1/keys/{key_id}", _roles("admin"), fresh="key"),
    Endpoint("GET", "/healthz", _roles()),
    Endpoint("GET", "/readyz", _roles()),
    Endpoint("GET", "/openapi.json", _roles()),
    Endpoint("GET", "/docs", _roles(), content_type="text/html"),
)

# Callers holding a valid key, and their role.
KEYED = {caller: role for caller, (role, _name) in KEYS.items()}


def _unknown_key() -> str:
    return f"fl_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}{uuid.uuid4().hex}"


# Callers without a valid key: the Authorization header they send (None: none at all).
UNAUTHENTICATED: dict[str, Callable[[dict[str, str]], str | None]] = {
    "no_key": lambda keys: None,
    "not_bearer": lambda keys: f"Basic {keys['channel']}",
    "malformed_key": lambda keys: "Bearer not-a-flashloan-key",
    "unknown_key": lambda keys: f"Bearer {_unknown_key()}",
    "wrong_secret": lambda keys: f"Bearer fl_{keys['channel'].split('_', 2)[1]}_{'x' * 43}",
}
CALLERS = (*KEYED, *UNAUTHENTICATED)


def expected_status(endpoint: Endpoint, caller: str) -> int:
    """The documented answer of ``endpoint`` to ``caller``."""
    if endpoint.public:
        return endpoint.success
    if caller in UNAUTHENTICATED:
        return 401
    if KEYED[caller] not in endpoint.roles:
        return 403
    if caller == "other_channel":
        if endpoint.other_channel is not None:
            return endpoint.other_channel
        if endpoint.own:
            return 404
    return endpoint.success


class Resources:
    """The channel's resources that paths name: shared ones, or fresh ones per call."""

    def __init__(self, deployment: Deployment) -> None:
        self.channel = deployment.client("channel")
        self.admin = deployment.client("admin")
        self.officer = deployment.client("risk_officer")
        self.cancellable: str | None = None
        self.values: dict[str, Any] = {"seq": 1}
        self.values.update(self.fresh("review"))
        models = deployment.client("admin").get("/v1/models")
        assert models.status_code == 200, models.text
        self.values["version"] = next(m["version"] for m in models.json()["items"]
                                      if m["active"])
        self.values["backtest_id"] = self.finished_backtest(deployment)

    @staticmethod
    def finished_backtest(deployment: Deployment) -> str:
        """A backtest of the last minute's decisions, once it is done (its report exists)."""
        officer = deployment.client("risk_officer")
        started = officer.post("/v1/backtests", json=BODIES["backtest"](CHANNEL, {}))
        assert started.status_code == 202, started.text
        backtest_id = started.json()["backtest_id"]
        deadline = time.monotonic() + BACKTEST_WAIT_S
        while time.monotonic() < deadline:
            job = officer.get(f"/v1/backtests/{backtest_id}").json()
            if job["status"] != "queued" and job["status"] != "running":
                assert job["status"] == "done", job
                return backtest_id
            time.sleep(0.2)
        raise AssertionError(f"backtest {backtest_id} did not finish in {BACKTEST_WAIT_S} s")

    def cancellable_backtest(self) -> str:
        """A backtest queued or running: the last one made while it is, else a new one (the
        callers a cancellation is refused leave it be; each requester may have only a few)."""
        if self.cancellable is not None:
            job = self.officer.get(f"/v1/backtests/{self.cancellable}").json()
            if job["status"] in ("queued", "running"):
                return self.cancellable
        started = self.officer.post("/v1/backtests", json=BODIES["backtest"](CHANNEL, {}))
        assert started.status_code == 202, started.text
        self.cancellable = started.json()["backtest_id"]
        return self.cancellable

    def cancel_unfinished_backtests(self) -> None:
        """Cancel the backtests still queued or running: those the matrix started, which no
        test reads once it is done, so that their processes stop working for nothing."""
        listed = self.officer.get("/v1/backtests")
        assert listed.status_code == 200, listed.text
        for job in listed.json()["items"]:
            if job["status"] in ("queued", "running"):
                cancelled = self.officer.request("DELETE", f"/v1/backtests/{job['backtest_id']}")
                # 409: it ended meanwhile.
                assert cancelled.status_code in (200, 409), cancelled.text

    def fresh(self, kind: str | None) -> dict[str, Any]:
        """New resources up to ``kind``: a consent, its decided application, a review of it;
        or a key; or a backtest still to cancel."""
        if kind is None:
            return {}
        if kind == "backtest":
            return {"backtest_id": self.cancellable_backtest()}
        if kind == "key":
            key = self.admin.post("/v1/keys", json=BODIES["key"](CHANNEL, {}))
            assert key.status_code == 201, key.text
            return {"key_id": key.json()["key_id"]}
        made = {"consent_id": record_consent(self.channel, ROLE_MATRIX)}
        if kind == "consent":
            return made
        decided = self.channel.post("/v1/applications",
                                    json=application_body(ROLE_MATRIX, made["consent_id"]))
        assert decided.status_code == 201, decided.text
        assert decided.json()["decision"] is not None, "the matrix needs scored applications"
        made["application_id"] = decided.json()["application_id"]
        if kind == "application":
            return made
        review = self.channel.post(f"/v1/applications/{made['application_id']}/review-requests",
                                   json=BODIES["review_request"](CHANNEL, made))
        assert review.status_code == 201, review.text
        made["review_id"] = review.json()["review_id"]
        return made


BODIES: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "consent": lambda channel, ids: consent_body(ROLE_MATRIX, channel),
    "application": lambda channel, ids: application_body(ROLE_MATRIX, ids["consent_id"]),
    "review_request": lambda channel, ids: {"reason": "我的收入最近提高了，请人工复核。"},
    "retry": lambda channel, ids: {
        "applicant": application_body(ROLE_MATRIX, ids["consent_id"])["applicant"]},
    "resolution": lambda channel, ids: {"outcome": "upheld",
                                        "note": "Sources and features checked again."},
    "key": lambda channel, ids: {"role": "risk_officer", "name": "e2e-matrix-officer"},
    "backtest": lambda channel, ids: {
        "strategy": "v1/2026.11",
        "since": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()},
    "strategies": lambda channel, ids: {"champion": "v1/2026.11",
                                        "reason": "the champion as it stands"},
    "outcome": lambda channel, ids: {
        "application_id": ids["application_id"], "drawn": True,
        "drawn_at": datetime.now(UTC).isoformat(), "amount": 3000,
        "performance": [{"month": datetime.now(UTC).strftime("%Y-%m"), "status": "current",
                         "days_past_due": 0}]},
}


@pytest.fixture(scope="module")
def resources(deployment: Deployment) -> Iterator[Resources]:
    made = Resources(deployment)
    yield made
    made.cancel_unfinished_backtests()


@pytest.fixture(scope="module")
def documented(deployment: Deployment) -> dict[tuple[str, str], set[int]]:
    """The statuses /openapi.json lists for each of its operations."""
    spec = deployment.client(None).get("/openapi.json").json()
    return {(method.upper(), path): {int(status) for status in op["responses"]}
            for path, item in spec["paths"].items() for method, op in item.items()
            if method in ("get", "post", "put", "patch", "delete")}


def assert_documented(documented: dict[tuple[str, str], set[int]], endpoint: Endpoint,
                      response: requests.Response) -> None:
    """Assert that the document lists the status ``endpoint`` answered (if it documents the
    operation: /openapi.json and /docs are not in it)."""
    listed = documented.get((endpoint.method, endpoint.path))
    if listed is not None:
        assert response.status_code in listed, (endpoint.label, response.status_code,
                                                sorted(listed))


def call(deployment: Deployment, endpoint: Endpoint, caller: str,
         ids: dict[str, Any]) -> requests.Response:
    """Call ``endpoint`` as ``caller`` on the resources ``ids`` name."""
    path = endpoint.path.format(**ids)
    channel_name = KEYS[caller][1] if caller in KEYED else CHANNEL
    body = BODIES[endpoint.body](channel_name, ids) if endpoint.body else None
    if caller in KEYED:
        return deployment.client(caller).request(endpoint.method, path, json=body)
    authorization = UNAUTHENTICATED[caller](deployment.keys)
    headers = {} if authorization is None else {"Authorization": authorization}
    return deployment.session.request(endpoint.method, deployment.main.url(path), json=body,
                                      headers=headers, timeout=HTTP_TIMEOUT_S)


CASES = [pytest.param(e, c, id=f"{e.label}-{c}") for e in ENDPOINTS for c in CALLERS]


@pytest.mark.parametrize(("endpoint", "caller"), CASES)
def test_access(deployment: Deployment, resources: Resources, documented: dict,
                endpoint: Endpoint, caller: str) -> None:
    ids = {**resources.values, **resources.fresh(endpoint.fresh)}
    response = call(deployment, endpoint, caller, ids)
    status = expected_status(endpoint, caller)
    assert_documented(documented, endpoint, response)
    if status < 400:
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"].split(";")[0] == endpoint.content_type
        return
    error = assert_envelope(response, status)
    if status == 401:
        assert error["code"] == "unauthenticated"
        assert response.headers["WWW-Authenticate"].startswith("Bearer "), response.headers
    elif status == 403:
        assert error["code"] == "forbidden"
    elif status == 404:
        assert error["code"] == "not_found"


ADDRESSED = [pytest.param(e, id=e.label) for e in ENDPOINTS if "{" in e.path]


@pytest.mark.parametrize("endpoint", ADDRESSED)
def test_unknown_resources_are_not_found(deployment: Deployment, resources: Resources,
                                         documented: dict, endpoint: Endpoint) -> None:
    caller = min(endpoint.roles)  # any role that may call it
    unknown = {"consent_id": f"c_{uuid.uuid4().hex}", "application_id": f"a_{uuid.uuid4().hex}",
               "review_id": f"r_{uuid.uuid4().hex}", "version": "v999", "seq": 10**9,
               "key_id": uuid.uuid4().hex[:12], "backtest_id": f"bt_{uuid.uuid4().hex}"}
    response = call(deployment, endpoint, caller, {**resources.values, **unknown})
    assert_envelope(response, 404, "not_found")
    assert_documented(documented, endpoint, response)


def test_matrix_covers_every_documented_operation(deployment: Deployment) -> None:
    spec = deployment.client(None).get("/openapi.json").json()
    documented = {(method.upper(), path) for path, item in spec["paths"].items()
                  for method in item if method in ("get", "post", "put", "patch", "delete")}
    covered = {(e.method, e.path) for e in ENDPOINTS}
    assert documented <= covered, f"add these to ENDPOINTS: {sorted(documented - covered)}"


def test_the_document_names_the_roles_the_matrix_holds(deployment: Deployment) -> None:
    spec = deployment.client(None).get("/openapi.json").json()
    named = {(method.upper(), path): frozenset(op["x-roles"])
             for path, item in spec["paths"].items() for method, op in item.items()
             if method in ("get", "post", "put", "patch", "delete")}
    for endpoint in ENDPOINTS:
        if (endpoint.method, endpoint.path) in named:
            assert named[(endpoint.method, endpoint.path)] == endpoint.roles, endpoint.label


def test_unrouted_method_is_405_with_allow(deployment: Deployment) -> None:
    response = deployment.client("channel").request("PUT", "/v1/consents")
    assert_envelope(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_a_chunked_body_over_the_limit_is_413_in_the_envelope(deployment: Deployment) -> None:
    """gunicorn passes a chunked body on with no length: the service still refuses it whole."""
    limit = 64 * 1024
    body = b'{"pad": "' + b"x" * limit + b'"}'
    chunks = (body[i:i + 8192] for i in range(0, len(body), 8192))  # no length: chunked
    client = deployment.client("channel")
    response = deployment.session.post(client.base_url + "/v1/consents", data=chunks,
                                       headers=client.headers({
                                           "Content-Type": "application/json"}),
                                       timeout=HTTP_TIMEOUT_S)
    assert_envelope(response, 413, "payload_too_large")
