"""A change of strategies under gunicorn: every worker decides under it within the refresh
interval, without a restart, and the change is in the audit log.

A deployment of its own (one SQLite database, two workers): the plan it sets must not reach
the shared deployments of the other end-to-end tests.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from datasources.stub.world import population_ids
from scoring.online.policy import POLICY_DIR
from tests.e2e.applicants import Applicant, application_body, consent_body
from tests.e2e.conftest import CHANNEL, HTTP_TIMEOUT_S, PII_KEY, create_keys
from tests.e2e.gunicorn_server import GunicornServer

pytestmark = pytest.mark.slow

REFRESH_S = 1.0
STRICT = "v1/2026.11-strict"
BATCH = 16
MAX_BATCHES = 12


class Server:
    """The deployment: its server and a key per caller."""

    def __init__(self, server: GunicornServer, keys: dict[str, str]) -> None:
        self.server, self.keys = server, keys

    def call(self, caller: str, method: str, path: str, body=None) -> requests.Response:
        return requests.request(method, self.server.url(path), json=body, timeout=HTTP_TIMEOUT_S,
                                headers={"Authorization": f"Bearer {self.keys[caller]}"})

    def apply(self, national_id: str) -> dict:
        applicant = Applicant(national_id, "张三", "13812348000", "")
        consent = self.call("channel", "POST", "/v1/consents", consent_body(applicant, CHANNEL))
        assert consent.status_code == 201, consent.text
        r = self.call("channel", "POST", "/v1/applications",
                      application_body(applicant, consent.json()["consent_id"]))
        assert r.status_code == 201, r.text
        return r.json()


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("e2e-promotion")
    policies = workdir / "policies"
    policies.mkdir()
    doc = json.loads((POLICY_DIR / "2026.11.json").read_text(encoding="utf-8"))
    (policies / "2026.11-strict.json").write_text(
        json.dumps({**doc, "version": "2026.11-strict", "pd_cutoff": 0.035}), encoding="utf-8")
    url = f"sqlite:///{workdir / 'flashloan.db'}"
    keys = create_keys(url)
    server = GunicornServer("promotion", workdir, {
        "FLASHLOAN_ENV": "test", "FLASHLOAN_DATABASE_URL": url, "FLASHLOAN_PII_KEY": PII_KEY,
        "FLASHLOAN_POLICIES_DIR": str(policies),
        "FLASHLOAN_STRATEGY_REFRESH_S": str(REFRESH_S),
        "FLASHLOAN_RATE_LIMIT": "100000/minute"}, workers=2)
    server.spawn()
    try:
        server.wait_ready()
        yield Server(server, keys)
    finally:
        code = server.stop()
    assert code == 0, server.log_text()
    assert "Traceback" not in server.log_text(), server.log_text()


def pids_in_force(log: str, seq: int) -> set[int]:
    """The workers that logged plan ``seq`` in force."""
    found = set()
    for line in log.splitlines():
        if line.startswith("{") and re.search(rf"strategy plan {seq} in force", line):
            found.add(json.loads(line)["pid"])
    return found


def test_a_promotion_is_in_force_in_every_worker_without_a_restart(promoted: Server):
    people = iter(population_ids(MAX_BATCHES * BATCH + 8, 41))
    before = [promoted.apply(next(people)) for _ in range(4)]
    assert {a["strategy"] for a in before} == {"v1/2026.11"}
    r = promoted.call("admin", "PUT", "/v1/strategies",
                        {"champion": STRICT, "reason": "promote the stricter cut-off"})
    assert r.status_code == 200, r.text
    change = r.json()
    assert change["effective_within_s"] == REFRESH_S
    time.sleep(REFRESH_S)
    decided = []
    with ThreadPoolExecutor(BATCH) as pool:
        for _ in range(MAX_BATCHES):
            decided += pool.map(promoted.apply, [next(people) for _ in range(BATCH)])
            if len(pids_in_force(promoted.server.log_text(), change["seq"])) == 2:
                break
    # Both workers took the plan, and not one decision after the interval was made under the
    # plan it replaced.
    assert len(pids_in_force(promoted.server.log_text(), change["seq"])) == 2
    assert {a["strategy"] for a in decided} == {STRICT}
    assert all(a["decision"] is None or a["decision"]["policy_version"] == "2026.11-strict"
               for a in decided)
    record = promoted.call("auditor", "GET", f"/v1/audit/records/{change['audit_seq']}")
    assert record.status_code == 200, record.text
    assert record.json()["kind"] == "strategy.set"
    assert record.json()["payload"]["new"]["champion"] == STRICT
    assert record.json()["payload"]["previous"]["champion"] == "v1/2026.11"
    models = promoted.call("risk_officer", "GET", "/v1/models").json()["items"]
    assert {m["version"]: m["roles"] for m in models}["v1"] == ["champion"]


def test_a_bad_card_is_refused_by_the_served_api(promoted: Server):
    r = promoted.call("admin", "PUT", "/v1/strategies",
                        {"champion": "v1-without-income_tax/2026.11", "reason": "wrong"})
    assert r.status_code == 422, r.text
    [problem] = r.json()["error"]["fields"]["champion"]
    assert "fallback trained without income_tax" in problem
