"""Backtests through the API and the command line: requested, run in the background, polled,
audited, and reporting exactly what a candidate strategy would have changed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit import AuditQuery
from datasources.stub.world import population_ids
from scoring.online.policy import PolicyError, load_policy
from service.cli.main import main
from service.usecases.engines import Engines
from service.usecases.replay import Replayer
from tests.databases import fresh_postgres_schema
from tests.integration.service.conftest import (
    Client,
    _app,
    record_answers,
    undocumented_answers,
)
from tests.integration.service.test_strategies import (  # noqa: F401
    CHAMPION,
    STRICT,
    policies,
    write_policies,
    write_policy,
)

POLL_S = 0.2
WAIT_S = 120.0


def request(client, body: dict, who: str = "risk_officer"):
    return client.post("/v1/backtests", body, who=who)


def finished(client, backtest_id: str) -> dict:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job = client.get(f"/v1/backtests/{backtest_id}", who="auditor").get_json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(POLL_S)
    raise AssertionError(f"backtest {backtest_id} did not finish in {WAIT_S} s")


@dataclass
class Decided:
    """A service with applications decided by the champion: its database, its policies."""

    client: Client
    answers: list[dict]
    database_url: str
    policies: Path


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def decided(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Decided]:
    """A service on SQLite and on PostgreSQL with 80 applications decided by the champion.

    Decided once for the tests that only request backtests of them: a backtest decides
    nothing anew, and each test looks at its own backtest. Every answer the service gives
    must be one the API document lists, as with ``make_client``.
    """
    folder = tmp_path_factory.mktemp(f"backtested-{request.param}")
    policies_dir = write_policies(folder / "policies")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{folder / 'flashloan.db'}"
        else:
            url = stack.enter_context(fresh_postgres_schema(
                request.getfixturevalue("postgres_server")))
        app = _app(url, folder, policies_dir=str(policies_dir))
        stack.callback(app.extensions["flashloan"].close)
        given = record_answers(app)
        client = Client(app)
        answers = [client.apply(nid).get_json() for nid in population_ids(80, 31)]
        yield Decided(client, answers, url, policies_dir)
        undocumented = undocumented_answers(app, given)
        assert not undocumented, f"answers the API document does not list: {sorted(undocumented)}"


def test_the_champion_against_itself_changes_nothing(decided: Decided):
    client, answers = decided.client, decided.answers
    r = request(client, {"strategy": CHAMPION})
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["status"] in ("queued", "running", "done")
    job = finished(client, r.get_json()["backtest_id"])
    assert job["status"] == "done", job
    scored = [a for a in answers if a["decision"] is not None or a["status"] != "deferred"]
    summary = job["summary"]
    assert job["rows"] == summary["rows"] == len(scored)
    assert summary["changes"]["count"] == 0 and summary["changes"]["decisions"] == []
    assert summary["swap"]["swap_in"] == summary["swap"]["swap_out"] == 0
    assert summary["approval"]["change_pp"] == 0
    assert summary["score_shift"]["psi"] == 0
    report = client.get(f"/v1/backtests/{job['backtest_id']}/report", who="risk_officer")
    assert report.status_code == 200 and report.mimetype == "text/html"
    page = report.get_data(as_text=True)
    assert CHAMPION in page and "data:image/svg+xml" in page and "<script" not in page


def test_a_stricter_policy_shows_exactly_the_declines_it_adds(decided: Decided):
    client, answers = decided.client, decided.answers
    job = finished(client, request(client, {"strategy": STRICT, "lgd": 0.6})
                   .get_json()["backtest_id"])
    assert job["status"] == "done", job
    wired = client.app.extensions["flashloan"]
    replayer = Replayer(wired.store, wired.engines)
    added = set()
    for answer in answers:
        if answer["decision"] is None:
            continue
        direct = replayer.replay(answer["application_id"], STRICT)["replayed"]
        if answer["status"] == "approved" and direct["outcome"] != "approved":
            added.add(answer["application_id"])
    assert added, "the stricter policy must decline some approvals for the test to mean much"
    changes = job["summary"]["changes"]
    outcome_changes = {c["application_id"] for c in changes["decisions"]
                       if c["recorded"]["outcome"] != c["candidate"]["outcome"]}
    assert outcome_changes == added
    assert job["summary"]["swap"]["swap_in"] == 0
    assert job["summary"]["lgd"] == 0.6


def test_requests_are_audited_and_listed(decided: Decided):
    client = decided.client
    job = request(client, {"strategy": CHAMPION, "since": "2020-01-01T00:00:00Z"}).get_json()
    finished(client, job["backtest_id"])
    listed = client.get("/v1/backtests", who="risk_officer").get_json()["items"]
    assert job["backtest_id"] in {item["backtest_id"] for item in listed}
    store = client.app.extensions["flashloan"].store
    [record] = [r for r in store.iter_records(AuditQuery(kinds=("backtest.requested",)))
                if r.payload["backtest_id"] == job["backtest_id"]]
    assert record.actor.startswith("risk_officer:")
    assert record.payload["strategy"] == CHAMPION
    assert record.payload["since"].startswith("2020-01-01T00:00:00")


@pytest.mark.parametrize(("body", "field"), [
    ({"strategy": "v1"}, "strategy"),
    ({"strategy": "v1-2026.11"}, "strategy"),
    ({"strategy": "v9/2026.11"}, "strategy"),
    ({"strategy": "v1/2099.01"}, "strategy"),
    ({"strategy": "v1-without-income_tax/2026.11"}, "strategy"),
    ({"strategy": CHAMPION, "lgd": 1.5}, "lgd"),
    ({"strategy": CHAMPION, "lgd": "0.5"}, "lgd"),
    ({"strategy": CHAMPION, "lgd": True}, "lgd"),
    ({"strategy": CHAMPION, "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
     "until"),
    ({"strategy": CHAMPION, "since": "yesterday"}, "since"),
])
def test_a_bad_request_is_refused_naming_the_field(make_client, policies, body,  # noqa: F811
                                                   field):
    client = make_client(policies_dir=str(policies))
    r = request(client, body)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["fields"]
    assert client.get("/v1/backtests", who="auditor").get_json()["items"] == []


def test_a_strategy_names_versions_and_no_file_the_client_names_is_read(
        make_client, policies, tmp_path, monkeypatch):  # noqa: F811
    """A file named by path, or by a name beside the service, is refused as a version that
    does not exist is, whether or not the file exists; nothing is written."""
    client = make_client(policies_dir=str(policies))
    beside = tmp_path / "beside"
    write_policy(beside, "2026.11-beside")
    (beside / "2026.11-bare").write_text((beside / "2026.11-beside.json").read_text())
    monkeypatch.chdir(beside)
    pairs = [("/etc/passwd", "/etc/no-such-file"),
             (str(beside / "2026.11-beside.json"), str(beside / "2026.11-nowhere.json")),
             ("../beside/2026.11-beside", "../beside/2026.11-nowhere"),
             ("2026.11-beside.json", "2026.11-nowhere.json"),
             ("2026.11-bare", "2099.01")]
    for named, missing in pairs:
        answers = [request(client, {"strategy": f"v1/{policy}"}) for policy in (named, missing)]
        assert [r.status_code for r in answers] == [422, 422], named
        errors = [r.get_json()["error"] for r in answers]
        assert errors[0]["message"].replace(named, "?") == errors[1]["message"].replace(
            missing, "?"), errors
        assert set(errors[0]["fields"]) == {"strategy"}
    assert client.get("/v1/backtests", who="auditor").get_json()["items"] == []
    kinds = {r.kind for r in client.app.extensions["flashloan"].store.iter_records()}
    assert "backtest.requested" not in kinds


def test_an_unknown_backtest_is_a_404(make_client):
    client = make_client()
    assert client.get("/v1/backtests/bt_nothing", who="auditor").status_code == 404
    assert client.get("/v1/backtests/bt_nothing/report", who="auditor").status_code == 404


def test_the_command_gives_what_the_api_gives(decided: Decided, tmp_path):
    client, database_url = decided.client, decided.database_url
    job = finished(client, request(client, {"strategy": STRICT}).get_json()["backtest_id"])
    out, summary = tmp_path / "report.html", tmp_path / "summary.json"
    env = {"FLASHLOAN_DATABASE_URL": database_url,
           "FLASHLOAN_POLICIES_DIR": str(decided.policies),
           "FLASHLOAN_VAR_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["backtest", "--strategy", STRICT, "--out", str(out),
                                       "--json", str(summary)], env=env)
    assert result.exit_code == 0, result.output
    assert "swaps" in result.output and "approval rate" in result.output
    assert json.loads(summary.read_text(encoding="utf-8")) == job["summary"]
    assert "data:image/svg+xml" in out.read_text(encoding="utf-8")
    bad = CliRunner().invoke(main, ["backtest", "--strategy", "v9/2026.11"], env=env)
    assert bad.exit_code != 0 and "v9" in bad.output
    for strategy in ("v1//etc/passwd", "v1-without-income_tax/2026.11"):
        bad = CliRunner().invoke(main, ["backtest", "--strategy", strategy], env=env)
        assert bad.exit_code in (1, 2) and isinstance(bad.exception, SystemExit), bad.output
        assert "never a path" in bad.output or "fallback" in bad.output, bad.output


@pytest.mark.parametrize(("status", "heartbeat_age_s", "shown"), [
    ("running", 0, "running"), ("queued", 0, "queued"), ("running", 120, "failed")])
def test_a_report_not_yet_made_is_a_409_and_a_stopped_worker_reads_as_failed(
        make_client, status, heartbeat_age_s, shown):
    from datetime import UTC, datetime, timedelta

    from service.domain.encoding import now_text
    from service.persistence.tables import backtests

    # A worker that runs no backtest: the row stays as written.
    client = make_client(backtest_processes=0)
    beat = now_text(datetime.now(UTC) - timedelta(seconds=heartbeat_age_s))
    with client.app.extensions["flashloan"].store.engine.begin() as conn:
        conn.execute(backtests.insert().values(
            backtest_id="bt_waiting", strategy=CHAMPION, status=status,
            requested_by="risk_officer:k1", requested_at=beat, heartbeat_at=beat))
    job = client.get("/v1/backtests/bt_waiting", who="auditor").get_json()
    assert job["status"] == shown and job["summary"] is None
    assert (job["error"] is not None) == (shown == "failed")
    r = client.get("/v1/backtests/bt_waiting/report", who="risk_officer")
    assert r.status_code == 409
    assert f"is {shown}" in r.get_json()["error"]["message"]


def test_a_settings_policy_may_not_restate_a_version_the_folders_hold(policies,  # noqa: F811
                                                                       tmp_path):
    """Plans are checked against the folder's file: a settings' file of the same version
    and other rules would decide with rules no check saw."""
    own = tmp_path / "own"
    write_policy(own, "2026.11-strict", pd_cutoff=0.02)
    engines = Engines(policy_search=(policies,))
    with pytest.raises(PolicyError, match=r"2026\.11-strict, which the policy folders hold"):
        engines.adopt_policy(load_policy(str(own / "2026.11-strict.json")))
    write_policy(own, "2026.11-strict", pd_cutoff=0.035)
    engines.adopt_policy(load_policy(str(own / "2026.11-strict.json")))
    assert engines.policy("2026.11-strict").pd_cutoff == 0.035


def test_the_settings_policy_file_is_backtested_as_the_worker_decides_with_it(
        make_client, tmp_path, database_url):
    own = tmp_path / "own"
    write_policy(own, "2026.11-own", pd_cutoff=0.035)
    client = make_client(database_url, policy=str(own / "2026.11-own.json"))
    for nid in population_ids(6, 5):
        client.apply(nid)
    r = request(client, {"strategy": "v1/2026.11-own"})
    assert r.status_code == 202, r.get_json()
    job = finished(client, r.get_json()["backtest_id"])
    assert job["status"] == "done" and job["summary"]["changes"]["count"] == 0, job
