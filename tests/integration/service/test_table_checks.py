"""Verify checks the tables that figures and decisions read against the audit records they
derive from: each table edited with plain SQL, one change at a time, is named with its row.

The log is built once per database through the API (decisions, a retry, a review that
overturns a decline, loan outcomes with a corrected month, a strategy change and a backtest)
and every edit is undone before the next, so each case starts from a log that verifies.
"""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, Table, and_, delete, event, func, insert, select, update

from audit import AuditQuery
from datasources.stub.world import population_ids
from service.cli.main import main
from service.persistence.tables import (
    applications,
    backtests,
    loan_performance,
    loans,
    strategy_plans,
)
from service.usecases.table_checks import check_tables, table_checkers
from service.usecases.verification import (
    Verification,
    checkpoint_folder,
    service_checkpoints,
    verify_trail,
)
from tests.apps import build_app
from tests.databases import fresh_postgres_schema, migrate
from tests.integration.service.conftest import Client, record_answers, undocumented_answers

CHAMPION = "v1/2026.11"
POLL_S = 0.2
WAIT_S = 120.0


@dataclass(frozen=True)
class Log:
    """A service and the rows its log was built with."""

    client: Client
    url: str
    var_dir: Path
    month: str
    declined: str          # declined by the model
    drawn: str             # approved, drawn, its month posted as current then corrected
    undrawn: str           # approved, reported as not drawn
    overturned: str        # declined, then approved by a person on review
    retried: str           # deferred, then decided on a retry
    plan_seq: int
    backtest_id: str

    @property
    def engine(self) -> Engine:
        return self.client.app.extensions["flashloan"].store.engine


def _app(url: str, folder: Path, **settings):
    fixtures = folder / "fixtures.json"
    fixtures.write_text("{}", encoding="utf-8")
    return build_app({"database_url": url, "env": "test", "var_dir": folder,
                       "stub_fixtures": str(fixtures), **settings})


def _applicant(national_id: str) -> dict:
    return {"applicant": {"national_id": national_id, "name": "张三", "mobile": "13812348000"}}


def _outcome(client: Client, body: dict) -> None:
    response = client.post("/v1/outcomes", body, who="servicing")
    assert response.status_code in (200, 201), response.get_json()


def _finished(client: Client, backtest_id: str) -> dict:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job = client.get(f"/v1/backtests/{backtest_id}", who="auditor").get_json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(POLL_S)
    raise AssertionError(f"backtest {backtest_id} did not finish in {WAIT_S} s")


def _build(url: str, folder: Path) -> Iterator[Log]:
    migrate(url)
    app = _app(url, folder)
    answers_given = record_answers(app)
    client = Client(app)
    people = population_ids(40, 99)
    answers = [client.apply(nid).get_json() for nid in people[:8]]
    approved = [a["application_id"] for a in answers if a["status"] == "approved"]
    declined = [a["application_id"] for a in answers if a["status"] == "declined"]
    assert len(approved) >= 2 and len(declined) >= 2, [a["status"] for a in answers]
    month = datetime.now(UTC).strftime("%Y-%m")
    drawn_at = datetime.now(UTC).isoformat()
    # The month posted current, then corrected to a default: the latest post holds.
    for status in ("current", "default"):
        _outcome(client, {"application_id": approved[0], "drawn": True, "drawn_at": drawn_at,
                          "amount": 1000, "performance": [
                              {"month": month, "status": status, "days_past_due": 0}]})
    _outcome(client, {"application_id": approved[1], "drawn": False, "performance": []})
    review = client.post(f"/v1/applications/{declined[1]}/review-requests",
                         {"reason": "please look again"})
    assert review.status_code == 201, review.get_json()
    resolved = client.post(f"/v1/reviews/{review.get_json()['review_id']}/resolution",
                           {"outcome": "overturned", "note": "income verified by phone"},
                           who="risk_officer")
    assert resolved.status_code == 200, resolved.get_json()
    # Its loan was approved when the review resolved, not when the model declined it.
    _outcome(client, {"application_id": declined[1], "drawn": False, "performance": []})
    # A court-records outage on a second worker defers one; the first decides it again.
    failing = _app(url, folder, stub_faults="court_records=error:1.0")
    deferred = Client(failing).apply(people[8]).get_json()
    failing.extensions["flashloan"].close()
    assert deferred["status"] == "deferred", deferred
    retried = client.post(f"/v1/applications/{deferred['application_id']}/retry",
                          _applicant(people[8]))
    assert retried.status_code == 200 and retried.get_json()["status"] != "deferred"
    plan = client.http.put("/v1/strategies", json={"champion": CHAMPION, "reason": "pin it"},
                           headers=client.headers("admin"))
    assert plan.status_code == 200, plan.get_json()
    job = client.post("/v1/backtests", {"strategy": CHAMPION}, who="risk_officer").get_json()
    finished = _finished(client, job["backtest_id"])
    assert finished["status"] == "done", finished
    yield Log(client, url, folder, month, declined[0], approved[0], approved[1], declined[1],
              deferred["application_id"], plan.get_json()["seq"], job["backtest_id"])
    # The API document is read before the app closes: a request after would open a
    # connection that nothing closes.
    undocumented = undocumented_answers(app, answers_given)
    app.extensions["flashloan"].close()
    assert not undocumented


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log(request, tmp_path_factory) -> Iterator[Log]:
    """The log, built once on SQLite and once on PostgreSQL."""
    folder = tmp_path_factory.mktemp("tables")
    if request.param == "sqlite":
        yield from _build(f"sqlite:///{folder / 'flashloan.db'}", folder)
        return
    with fresh_postgres_schema(request.getfixturevalue("postgres_server")) as url:
        yield from _build(url, folder)


# -- edits, each undone on leaving ---------------------------------------------------------------


def _where(table: Table, key: dict[str, Any]):
    return and_(*(table.c[name] == value for name, value in key.items()))


@contextmanager
def changed(engine: Engine, table: Table, key: dict[str, Any],
            change: Callable[[Any], dict[str, Any]]) -> Iterator[None]:
    """Change a row's columns as ``change`` of the row says; put them back after."""
    with engine.begin() as conn:
        row = conn.execute(select(table).where(_where(table, key))).one()
        values = change(row)
        conn.execute(update(table).where(_where(table, key)).values(**values))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(update(table).where(_where(table, key))
                         .values(**{name: row._mapping[name] for name in values}))


@contextmanager
def deleted(engine: Engine, table: Table, key: dict[str, Any]) -> Iterator[None]:
    """Delete a row; put it back after."""
    with engine.begin() as conn:
        row = conn.execute(select(table).where(_where(table, key))).one()
        conn.execute(delete(table).where(_where(table, key)))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(insert(table).values(**row._mapping))


@contextmanager
def planted(engine: Engine, table: Table, row: dict[str, Any],
            key: dict[str, Any]) -> Iterator[None]:
    """Insert a row no record accounts for; delete it after."""
    with engine.begin() as conn:
        conn.execute(insert(table).values(**row))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(delete(table).where(_where(table, key)))


def _other_grade(row) -> dict[str, Any]:
    return {"grade": "A" if row.grade != "A" else "B"}


def _plan_row(log: Log) -> Any:
    with log.engine.connect() as conn:
        return conn.execute(select(strategy_plans)
                            .where(strategy_plans.c.seq == log.plan_seq)).one()


@contextmanager
def planted_plan(log: Log) -> Iterator[str]:
    with log.engine.connect() as conn:
        seq = conn.execute(select(func.max(strategy_plans.c.seq))).scalar_one() + 1
    row = {**_plan_row(log)._mapping, "seq": seq, "reason": "planted", "set_by": "admin:x"}
    with planted(log.engine, strategy_plans, row, {"seq": seq}):
        yield str(seq)


def _edited_summary(row) -> dict[str, Any]:
    summary = json.loads(row.summary)
    return {"summary": json.dumps({**summary, "rows": int(summary["rows"]) + 7})}


# Each: the table, and an edit that yields the row the check must name.
Edit = Callable[[Log], Any]


@contextmanager
def _loan(log: Log, change: Callable[[Any], dict[str, Any]],
          application_id: str | None = None) -> Iterator[str]:
    application_id = application_id or log.drawn
    with changed(log.engine, loans, {"application_id": application_id}, change):
        yield application_id


@contextmanager
def _month(log: Log, change: Callable[[Any], dict[str, Any]]) -> Iterator[str]:
    key = {"application_id": log.drawn, "month": log.month}
    with changed(log.engine, loan_performance, key, change):
        yield f"{log.drawn}/{log.month}"


@contextmanager
def _month_deleted(log: Log) -> Iterator[str]:
    with deleted(log.engine, loan_performance, {"application_id": log.drawn,
                                                "month": log.month}):
        yield f"{log.drawn}/{log.month}"


@contextmanager
def _month_planted(log: Log) -> Iterator[str]:
    earlier = "2000-01"
    row = {"application_id": log.drawn, "month": earlier, "status": "current",
           "days_past_due": 0, "recorded_at": "2000-01-31T00:00:00.000000Z"}
    with planted(log.engine, loan_performance, row,
                 {"application_id": log.drawn, "month": earlier}):
        yield f"{log.drawn}/{earlier}"


@contextmanager
def _loan_deleted(log: Log) -> Iterator[str]:
    with deleted(log.engine, loans, {"application_id": log.undrawn}):
        yield log.undrawn


@contextmanager
def _application_deleted(log: Log) -> Iterator[str]:
    with deleted(log.engine, applications, {"application_id": log.declined}):
        yield log.declined


@contextmanager
def _status(log: Log, application_id: str, status: str, **more: Any) -> Iterator[str]:
    with changed(log.engine, applications, {"application_id": application_id},
                 lambda row: {"status": status, **more}):
        yield application_id


@contextmanager
def _plan_edited(log: Log) -> Iterator[str]:
    def change(row) -> dict[str, Any]:
        plan = json.loads(row.plan)
        return {"plan": json.dumps({**plan, "shadows": [*plan.get("shadows", []), CHAMPION]})}

    with changed(log.engine, strategy_plans, {"seq": log.plan_seq}, change):
        yield str(log.plan_seq)


@contextmanager
def _backtest(log: Log, change: Callable[[Any], dict[str, Any]]) -> Iterator[str]:
    with changed(log.engine, backtests, {"backtest_id": log.backtest_id}, change):
        yield log.backtest_id


CASES: dict[str, tuple[str, Edit]] = {
    "loan amount": ("loans", lambda log: _loan(log, lambda row: {"amount": 9999.0})),
    "loan grade": ("loans", lambda log: _loan(log, _other_grade)),
    "loan deleted": ("loans", _loan_deleted),
    "overturned loan approved earlier": ("loans", lambda log: _loan(
        log, lambda row: {"approved_at": "2020-01-01T00:00:00.000000Z"}, log.overturned)),
    "month default to current": ("loan_performance", lambda log: _month(
        log, lambda row: {"status": "current", "days_past_due": 0})),
    "month deleted": ("loan_performance", _month_deleted),
    "month planted": ("loan_performance", _month_planted),
    "application deleted": ("applications", _application_deleted),
    "declined set approved": ("applications", lambda log: _status(
        log, log.declined, "approved")),
    "overturn undone": ("applications", lambda log: _status(
        log, log.overturned, "declined", outcome="declined", decided_by="model")),
    "retry undone": ("applications", lambda log: _status(log, log.retried, "deferred")),
    "plan edited": ("strategy_plans", _plan_edited),
    "plan planted": ("strategy_plans", planted_plan),
    "backtest result": ("backtests", lambda log: _backtest(log, _edited_summary)),
    "backtest strategy": ("backtests", lambda log: _backtest(
        log, lambda row: {"strategy": "v1/2026.11-strict"})),
    "backtest requester": ("backtests", lambda log: _backtest(
        log, lambda row: {"requested_by": "risk_officer:someone_else"})),
}


def verify(log: Log) -> Verification:
    wired = log.client.app.extensions["flashloan"]
    found = service_checkpoints(wired.store, checkpoint_folder(wired.settings))
    return verify_trail(wired.store, checkpoints=found.held,
                        public_key=wired.checkpointer.public_key, tables=True)


def assert_clean(log: Log) -> None:
    verdicts = check_tables(log.engine)
    assert [v.message() for v in verdicts if not v.ok] == []
    assert {"applications", "loans", "loan_performance"} <= {v.table for v in verdicts}


@pytest.mark.parametrize("case", list(CASES))
def test_an_edited_table_is_named_with_its_row(log, case):
    table, edit = CASES[case]
    assert table in table_checkers(), f"no check of {table} is registered"
    assert_clean(log)
    with edit(log) as row:
        result = verify(log)
        assert result.chain.ok, "the chain itself is untouched"
        assert (result.ok, result.reason) == (False, "table_differs")
        assert result.tables is not None
        differing = {v.table: v for v in result.tables if not v.ok}
        assert list(differing) == [table], {t: v.message() for t, v in differing.items()}
        assert row in {d.row for d in differing[table].differences}, differing[table]
        assert f"table {table}" in result.summary()
    assert_clean(log)


def test_the_command_names_the_table_and_row_and_exits_1(log):
    env = {"FLASHLOAN_DATABASE_URL": log.url, "FLASHLOAN_VAR_DIR": str(log.var_dir),
           "FLASHLOAN_SIGNING_KEY": None, "FLASHLOAN_ENV": None}
    runner = CliRunner(env=env)
    clean = runner.invoke(main, ["audit", "verify", "--tables"], catch_exceptions=False)
    assert clean.exit_code == 0, clean.output
    assert "loans: 3 rows match their records" in clean.output
    with _loan_deleted(log) as row:
        text = runner.invoke(main, ["audit", "verify", "--tables"], catch_exceptions=False)
        as_json = runner.invoke(main, ["audit", "verify", "--tables", "--json"],
                                catch_exceptions=False)
    assert text.exit_code == 1, text.output
    assert f"BROKEN at table loans, row {row}" in text.output
    assert as_json.exit_code == 1, as_json.output
    body = json.loads(as_json.output)
    assert (body["ok"], body["reason"]) == (False, "table_differs")
    [verdict] = [v for v in body["tables"] if not v["ok"]]
    assert verdict["table"] == "loans" and verdict["differing"] == 1
    assert verdict["differences"][0]["row"] == row


def test_the_api_names_the_table_and_row_and_records_the_check(log):
    client = log.client
    clean = client.get("/v1/audit/verify?tables=true", who="auditor")
    assert clean.status_code == 200, clean.get_json()
    assert clean.get_json()["ok"] is True
    with _status(log, log.declined, "approved") as row:
        body = client.get("/v1/audit/verify?tables=true", who="auditor").get_json()
        plain = client.get("/v1/audit/verify", who="auditor").get_json()
    assert (body["ok"], body["reason"]) == (False, "table_differs")
    [verdict] = [v for v in body["tables"] if not v["ok"]]
    assert verdict["table"] == "applications"
    [difference] = verdict["differences"]
    assert difference["row"] == row and "'approved'" in difference["problem"]
    assert plain["ok"] is True and plain["tables"] is None
    store = client.app.extensions["flashloan"].store
    asked = [r.payload for r in store.iter_records(AuditQuery(kinds=("audit.queried",)))
             if r.payload["endpoint"] == "verify"]
    assert asked[-2]["tables"] == [v["table"] for v in body["tables"]]
    assert asked[-2]["tables_differing"] == ["applications"]
    assert asked[-1]["tables"] is None


def test_rows_whose_records_were_purged_are_counted_unchecked(client, people):
    answers = [client.apply(nid).get_json() for nid in people[:4]]
    approved = next(a["application_id"] for a in answers if a["status"] == "approved")
    _outcome(client, {"application_id": approved, "drawn": True, "amount": 500,
                      "drawn_at": datetime.now(UTC).isoformat(), "performance": [
                          {"month": datetime.now(UTC).strftime("%Y-%m"), "status": "current",
                           "days_past_due": 0}]})
    store = client.app.extensions["flashloan"].store
    store.purge(datetime.now(UTC), "system:test", retention_years=0)
    later = client.apply(people[4]).get_json()["application_id"]
    with store.engine.begin() as conn:
        conn.execute(update(applications).where(applications.c.application_id == approved)
                     .values(status="declined"))
    verdicts = {v.table: v for v in check_tables(store.engine)}
    assert store.verify().ok, "a purge keeps the chain whole"
    checked = verdicts["applications"]
    assert (checked.ok, checked.checked, checked.unchecked) == (True, 1, 4), checked
    assert "purged" in (checked.note or "") and "4 not checked" in checked.message()
    assert (verdicts["loans"].unchecked, verdicts["loan_performance"].unchecked) == (1, 1)
    with store.engine.begin() as conn:
        conn.execute(update(applications).where(applications.c.application_id == later)
                     .values(grade="A" if answers[0].get("grade") != "A" else "B",
                             status="approved"))
    [difference] = check_tables(store.engine, ["applications"])[0].differences
    assert difference.row == later and "status is 'approved'" in difference.problem


# -- a check sees one moment -------------------------------------------------------------------


@contextmanager
def written_before(engine: Engine, marker: str, write: Callable[[], None]) -> Iterator[list]:
    """Run ``write`` once, just before this thread's first statement whose SQL holds
    ``marker``: between two reads of a check."""
    fired: list[str] = []
    thread = threading.get_ident()

    def hook(conn, cursor, statement, parameters, context, executemany) -> None:
        if not fired and marker in statement and threading.get_ident() == thread:
            fired.append(statement)
            write()

    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield fired
    finally:
        event.remove(engine, "before_cursor_execute", hook)


def _backtest_requested(log: Log) -> None:
    job = log.client.post("/v1/backtests", {"strategy": CHAMPION}, who="risk_officer")
    assert job.status_code == 202, job.get_json()
    # Cancelled at once, so that no replay runs.
    cancelled = log.client.delete(f"/v1/backtests/{job.get_json()['backtest_id']}",
                                  who="risk_officer")
    assert cancelled.status_code == 200, cancelled.get_json()


def _outcome_posted_again(log: Log) -> None:
    _outcome(log.client, {"application_id": log.undrawn, "drawn": False, "performance": []})


# Each: the table, the read the write comes just before, and the write, committed in full.
MEANWHILE: dict[str, tuple[str, str, Callable[[Log], None]]] = {
    "backtest requested": ("backtests", "FROM backtests", _backtest_requested),
    "outcome posted": ("loans", "FROM audit_records", _outcome_posted_again),
}


@pytest.mark.parametrize("case", list(MEANWHILE))
def test_a_write_between_the_reads_of_a_check_is_not_a_difference(log, case):
    table, marker, write = MEANWHILE[case]
    with written_before(log.engine, marker, lambda: write(log)) as fired:
        [verdict] = check_tables(log.engine, [table])
    assert fired, f"the check of {table} never read {marker!r}"
    assert verdict.ok, verdict.message()
    assert_clean(log)


def test_the_backtests_check_holds_a_few_reports_at_a_time(log):
    size, count = 200_000, 100   # 20 MB of reports in all
    jobs = [{"backtest_id": f"bt_big_{n:03d}", "strategy": CHAMPION, "status": "done",
             "requested_by": "risk_officer:k1", "requested_at": f"2000-01-01T00:00:{n % 60:02d}Z",
             "report": "x" * size} for n in range(count)]
    with log.engine.begin() as conn:
        conn.execute(insert(backtests), jobs)
    try:
        tracemalloc.start()
        try:
            [verdict] = check_tables(log.engine, ["backtests"])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        with log.engine.begin() as conn:
            conn.execute(delete(backtests).where(backtests.c.backtest_id.like("bt_big_%")))
    assert verdict.differing == count, verdict.message()
    assert peak < size * count / 2, f"{peak / 1e6:.1f} MB held at once"
