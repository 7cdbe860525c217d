"""The backtest queue: jobs kept in the database, capped per requester and in all, claimed by
one runner and run in a process of its own, cancelled, and each ending audited."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import multiprocessing
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from audit import AuditQuery, AuditStore
from audit.engine import writer_turn
from datasources.stub.world import population_ids
from scoring.governance.strategy import Strategy
from service.domain.encoding import now_text
from service.persistence.tables import backtests
from service.usecases.api_keys import create_key
from service.usecases.backtests import rows
from service.usecases.backtests.run import Backtest, run_backtest, summary_text
from service.usecases.backtests.runner import BacktestRunner, RunnerSetup, _Running
from service.usecases.table_checks import check_tables
from service.web.backtest_report import report_html
from tests.integration.service.test_backtest_jobs import finished
from tests.integration.service.test_strategies import CHAMPION

WAIT_S = 60.0
POLL_S = 0.05
# Caps small enough to reach with a few requests; nothing runs, so every job stays queued.
IDLE = {"backtest_processes": 0, "backtests_per_requester": 2, "backtest_queue_limit": 3}


@pytest.fixture
def idle(make_client, database_url):
    """A service on SQLite and on PostgreSQL whose worker runs no backtest."""
    client = make_client(database_url, **IDLE)
    engine = client.app.extensions["flashloan"].store.engine
    client.keys["second_officer"] = create_key(engine, "risk_officer", "second-officer")
    return client


def ask(client, who: str = "risk_officer", **body):
    return client.post("/v1/backtests", {"strategy": CHAMPION, **body}, who=who)


def records(client, kind: str) -> list:
    store = client.app.extensions["flashloan"].store
    return list(store.iter_records(AuditQuery(kinds=(kind,))))


def child_named(name: str) -> multiprocessing.Process:
    """The child process of this one called ``name``, once it has started."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for child in multiprocessing.active_children():
            if child.name == name:
                return child
        time.sleep(POLL_S)
    raise AssertionError(f"no process {name} started in {WAIT_S} s")


def test_a_queued_job_reads_queued_however_long_it_waits(idle):
    long_ago = now_text(datetime.now(UTC) - timedelta(minutes=30))
    with idle.app.extensions["flashloan"].store.engine.begin() as conn:
        conn.execute(insert(backtests).values(
            backtest_id="bt_waiting", strategy=CHAMPION, status="queued",
            requested_by="risk_officer:k1", requested_at=long_ago, heartbeat_at=long_ago))
    job = idle.get("/v1/backtests/bt_waiting", who="auditor").get_json()
    assert job["status"] == "queued" and job["error"] is None


def test_a_requester_past_the_cap_is_told_to_come_back_later(idle):
    for _ in range(2):
        assert ask(idle).status_code == 202
    refused = ask(idle)
    assert refused.status_code == 429, refused.get_json()
    error = refused.get_json()["error"]
    assert error["code"] == "too_many_backtests"
    assert "2 backtests waiting or running" in error["message"]
    assert int(refused.headers["Retry-After"]) > 0
    assert len(records(idle, "backtest.requested")) == 2
    assert len(idle.get("/v1/backtests", who="auditor").get_json()["items"]) == 2


def test_a_full_queue_refuses_every_requester(idle):
    for who in ("risk_officer", "risk_officer", "second_officer"):
        assert ask(idle, who).status_code == 202
    refused = ask(idle, "second_officer")
    assert refused.status_code == 429, refused.get_json()
    assert refused.get_json()["error"]["code"] == "backtest_queue_full"
    assert "3 backtests waiting or running" in refused.get_json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) > 0
    assert len(records(idle, "backtest.requested")) == 3


def test_a_risk_officer_cancels_a_queued_job(idle):
    jobs = [ask(idle).get_json()["backtest_id"] for _ in range(2)]
    assert idle.delete(f"/v1/backtests/{jobs[0]}", who="auditor").status_code == 403
    cancelled = idle.delete(f"/v1/backtests/{jobs[0]}", who="second_officer")
    assert cancelled.status_code == 200, cancelled.get_json()
    job = idle.get(f"/v1/backtests/{jobs[0]}", who="auditor").get_json()
    officer = f"risk_officer:{idle.keys['second_officer'].split('_', 2)[1]}"
    assert job["status"] == cancelled.get_json()["status"] == "cancelled"
    assert job["cancelled_by"] == officer and job["finished_at"] is not None
    [record] = records(idle, "backtest.cancelled")
    assert record.actor == officer
    assert record.payload == {"backtest_id": jobs[0], "was": "queued"}
    again = idle.delete(f"/v1/backtests/{jobs[0]}", who="risk_officer")
    assert again.status_code == 409 and "is cancelled" in again.get_json()["error"]["message"]
    assert idle.delete("/v1/backtests/bt_nothing", who="risk_officer").status_code == 404
    # A cancelled job no longer counts against its requester.
    assert ask(idle).status_code == 202


def test_cancelling_a_running_job_stops_its_process(make_client, database_url):
    client = make_client(database_url)
    backtest_id = ask(client).get_json()["backtest_id"]
    child = child_named(f"backtest-{backtest_id}")
    # Held where it stands: the job cannot finish before it is cancelled.
    os.kill(child.pid, signal.SIGSTOP)
    assert client.get(f"/v1/backtests/{backtest_id}", who="auditor").get_json()[
        "status"] == "running"
    cancelled = client.delete(f"/v1/backtests/{backtest_id}", who="risk_officer")
    assert cancelled.status_code == 200, cancelled.get_json()
    # The runner reaps it; its exit code is read from the same process object.
    deadline = time.monotonic() + WAIT_S
    while child.exitcode is None and time.monotonic() < deadline:
        time.sleep(POLL_S)
    assert child.exitcode == -signal.SIGKILL
    job = client.get(f"/v1/backtests/{backtest_id}", who="auditor").get_json()
    assert job["status"] == "cancelled" and job["summary"] is None
    [record] = records(client, "backtest.cancelled")
    assert record.payload == {"backtest_id": backtest_id, "was": "running"}
    assert records(client, "backtest.completed") == []


def test_a_job_queued_on_one_worker_is_run_by_another_and_its_ending_recorded(
        make_client, database_url):
    taker = make_client(database_url, **IDLE)
    for nid in population_ids(6, 17):
        taker.apply(nid)
    backtest_id = ask(taker, lgd=0.5).get_json()["backtest_id"]
    job = finished(make_client(database_url), backtest_id)
    assert job["status"] == "done" and job["summary"]["lgd"] == 0.5, job
    with taker.app.extensions["flashloan"].store.engine.connect() as conn:
        row = conn.execute(select(backtests).where(
            backtests.c.backtest_id == backtest_id)).one()
    [record] = records(taker, "backtest.completed")
    assert record.payload == {
        "backtest_id": backtest_id, "status": "done", "rows": row.rows, "error": None,
        "summary_sha256": hashlib.sha256(row.summary.encode()).hexdigest(),
        "report_sha256": hashlib.sha256(row.report.encode()).hexdigest()}
    assert row.rows == job["rows"] > 0


def test_the_table_check_names_each_row_its_records_do_not_account_for(idle):
    wired = idle.app.extensions["flashloan"]
    engine = wired.store.engine
    done, cancelled, waiting = (ask(idle, who).get_json()["backtest_id"]
                                for who in ("risk_officer", "second_officer", "second_officer"))
    # The first is run here as a runner runs it: claimed, decided, ended with its record.
    assert rows.claim_next(engine, "here").backtest_id == done
    result = run_backtest(wired.store, wired.engines, Backtest(Strategy.parse(CHAMPION)),
                          render=report_html)
    assert rows.finish(wired.store, done, "here", rows.Ending(
        "done", rows=result.rows, summary=summary_text(result.summary), report=result.report))
    assert idle.delete(f"/v1/backtests/{cancelled}", who="risk_officer").status_code == 200

    def check(engine):
        return check_tables(engine, ["backtests"])[0]

    assert check(engine).ok and check(engine).checked == 3, check(engine).message()

    def rewrite(backtest_id: str, **values) -> None:
        with engine.begin() as conn:
            conn.execute(update(backtests).where(backtests.c.backtest_id == backtest_id)
                         .values(**values))

    rewrite(done, summary=summary_text({**result.summary, "rows": result.rows + 1}))
    rewrite(cancelled, strategy="v1/2026.11-wide")
    rewrite(waiting, requested_by="risk_officer:someone")
    with engine.begin() as conn:
        conn.execute(insert(backtests).values(
            backtest_id="bt_unrecorded", strategy=CHAMPION, status="queued",
            requested_by="risk_officer:k1", requested_at=now_text()))
    verdict = check(engine)
    problems = {d.row: d.problem for d in verdict.differences}
    assert verdict.differing == 4 and set(problems) == {done, cancelled, waiting,
                                                        "bt_unrecorded"}, problems
    assert problems[done].startswith("summary SHA-256 is ")
    assert problems[cancelled].startswith("strategy is 'v1/2026.11-wide'; record ")
    assert problems[cancelled].endswith(f"states '{CHAMPION}'")
    assert problems[waiting].startswith("requested_by is 'risk_officer:someone'; record ")
    assert problems["bt_unrecorded"] == "no backtest.requested record states it"


class _Ended:
    """A backtest's process that has ended; killing it again changes nothing but ``on_kill``."""

    exitcode = 0

    def __init__(self, on_kill=lambda: None) -> None:
        self.on_kill = on_kill

    def join(self, timeout: float | None = None) -> None:
        pass

    def kill(self) -> None:
        self.on_kill()


def runner_with(store, *job_ids: str, on_kill=lambda: None) -> BacktestRunner:
    """A runner that has claimed ``job_ids`` and runs each in an ended process whose ending
    waits in its pipe."""
    runner = BacktestRunner(store, RunnerSetup(str(store.engine.url), render=report_html),
                            processes=2)
    runner.claimant = "here"
    for job_id in job_ids:
        assert rows.claim_next(store.engine, runner.claimant).backtest_id == job_id
        receiving, sending = multiprocessing.Pipe(duplex=False)
        sending.send(rows.Ending("done", rows=0, summary="{}", report=""))
        sending.close()
        runner._running[job_id] = _Running(_Ended(on_kill), receiving)
    return runner


def test_an_ending_the_database_did_not_take_is_written_at_the_next_step(idle):
    store = idle.app.extensions["flashloan"].store
    backtest_id = ask(idle).get_json()["backtest_id"]
    runner = runner_with(store, backtest_id)
    runner.store = AuditStore.from_url(f"sqlite:///{idle.app.instance_path}/no/such/db")
    with contextlib.suppress(SQLAlchemyError):
        runner.step()
    runner.store.dispose()
    runner.store = store
    runner.step()
    job = idle.get(f"/v1/backtests/{backtest_id}", who="auditor").get_json()
    assert job["status"] == "done", job
    [record] = records(idle, "backtest.completed")
    assert record.payload["backtest_id"] == backtest_id


def test_a_runner_closed_while_its_thread_still_collects_puts_the_rest_back(idle):
    store = idle.app.extensions["flashloan"].store
    first, second = (ask(idle, who).get_json()["backtest_id"]
                     for who in ("risk_officer", "second_officer"))
    # Killing the first, the thread (not stopped in time) collects the second meanwhile.
    runner = runner_with(store, first, second,
                         on_kill=lambda: runner._running.pop(second, None))
    runner.close()
    job = idle.get(f"/v1/backtests/{first}", who="auditor").get_json()
    assert job["status"] == "queued" and job["started_at"] is None, job


def test_looking_at_an_empty_queue_waits_for_no_writer(make_client):
    """On SQLite, where one writer writes at a time, a runner polling an empty queue does not
    wait for the decisions being written."""
    engine = make_client(**IDLE).app.extensions["flashloan"].store.engine
    with writer_turn(engine):
        assert rows.claim_next(engine, "here") is None


def test_a_worker_that_exits_puts_its_running_jobs_back_in_the_queue(make_client, tmp_path,
                                                                     monkeypatch):
    client = make_client()
    backtest_id = ask(client).get_json()["backtest_id"]
    child = child_named(f"backtest-{backtest_id}")
    os.kill(child.pid, signal.SIGSTOP)
    # gunicorn's settings module, loaded as gunicorn loads it, calls the hook it names.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prometheus"))
    monkeypatch.delitem(sys.modules, "service.web.gunicorn_conf", raising=False)
    conf = importlib.import_module("service.web.gunicorn_conf")
    conf.worker_exit(None, SimpleNamespace(pid=os.getpid(), wsgi=client.app))
    assert child.exitcode == -signal.SIGKILL
    with client.app.extensions["flashloan"].store.engine.connect() as conn:
        row = conn.execute(select(backtests).where(
            backtests.c.backtest_id == backtest_id)).one()
    assert row.status == "queued" and row.claimed_by is None, row
