"""A stored plan is followed only when its row holds what its `strategy.set` record states and
it passes the promotion checks again; the API shows the plan in force and the row refused."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select, update

from datasources.stub.world import population_ids
from service.domain.encoding import now_text
from service.persistence.tables import strategy_plans
from service.usecases.plan_records import sign_statement
from tests.integration.service.test_strategies import (
    CHAMPION,
    REFRESH_S,
    STRICT,
    WIDE,
    put,
    write_policy,
)

SETTINGS_PLAN = {"champion": CHAMPION, "challenger": None, "shadows": []}


@pytest.fixture
def policies_dir(tmp_path) -> str:
    """A stricter policy and a wider one, in the service's policy folder."""
    folder = tmp_path / "policies"
    write_policy(folder, "2026.11-strict", pd_cutoff=0.035)
    write_policy(folder, "2026.11-wide", eligibility={"age_max": 60})
    return str(folder)


def plan_of(champion: str) -> dict:
    return {"champion": champion, "challenger": None, "shadows": []}


def engine_of(client):
    return client.app.extensions["flashloan"].store.engine


def stored_rows(client) -> list:
    with engine_of(client).connect() as conn:
        return conn.execute(select(strategy_plans).order_by(strategy_plans.c.seq)).all()


def refusals(client, reason: str) -> float:
    registry = client.app.extensions["flashloan"].metrics.registry
    return registry.get_sample_value("flashloan_strategy_plans_refused_total",
                                     {"reason": reason}) or 0.0


def record_plan(client, plan: dict, *, reason: str, states_its_row: bool = True,
                key: Ed25519PrivateKey | None = None) -> int:
    """Write a plan's row and its `strategy.set` record, as someone able to write both would
    (signed with ``key`` if given); without ``states_its_row``, as records were written before
    they named their row."""
    store = client.app.extensions["flashloan"].store
    actor = "admin:ops"
    with store.writer() as writer:
        conn = writer.connection
        previous = conn.execute(select(strategy_plans)
                                .order_by(strategy_plans.c.seq.desc()).limit(1)).first()
        seq = 1 + (previous.seq if previous is not None else 0)
        set_at = now_text()
        payload = {"previous": json.loads(previous.plan) if previous else SETTINGS_PLAN,
                   "previous_seq": previous.seq if previous else 0, "new": plan,
                   "reason": reason, "checked": {}}
        if states_its_row:
            payload |= {"seq": seq, "set_at": set_at}
        if key is not None:
            payload["signature"] = sign_statement(key, {**payload, "set_by": actor})
        record = writer.append("strategy.set", payload, actor=actor)
        conn.execute(insert(strategy_plans).values(
            seq=seq, plan=json.dumps(plan, sort_keys=True), set_by=actor, reason=reason,
            set_at=set_at, audit_seq=record.seq))
    return seq


def strategies_deciding(client, seed: int) -> set[str]:
    return {client.apply(nid).get_json()["strategy"] for nid in population_ids(3, seed)}


def test_a_planted_row_naming_a_policy_file_anywhere_is_never_adopted(
        make_client, policies_dir, database_url, tmp_path):
    from service.usecases.table_checks import check_tables

    client = make_client(database_url, policies_dir=policies_dir, strategy_refresh_s=REFRESH_S)
    assert put(client, {"champion": STRICT, "reason": "promote strict"}).status_code == 200
    assert client.get("/v1/strategies", who="auditor").get_json()["champion"] == STRICT
    [first] = stored_rows(client)
    # A policy approving nearly everyone, written somewhere on the server, not in a policy
    # folder; the row takes the next number and the last row's record.
    write_policy(tmp_path / "anywhere", "2026.11-lenient", pd_cutoff=0.5)
    lenient = f"v1/{tmp_path / 'anywhere' / '2026.11-lenient.json'}"
    with engine_of(client).begin() as conn:
        conn.execute(insert(strategy_plans).values(
            seq=first.seq + 1, plan=json.dumps(plan_of(lenient), sort_keys=True),
            set_by=first.set_by, reason=first.reason, set_at=first.set_at,
            audit_seq=first.audit_seq))
    time.sleep(REFRESH_S)
    assert strategies_deciding(client, 31) == {STRICT}
    shown = client.get("/v1/strategies", who="auditor").get_json()
    assert (shown["seq"], shown["champion"]) == (first.seq, STRICT)
    assert shown["refused"]["seq"] == first.seq + 1
    assert shown["refused"]["reason"] == "not_its_record"
    assert refusals(client, "not_its_record") == 1
    [check] = check_tables(engine_of(client), ["strategy_plans"])
    assert [d.row for d in check.differences] == [str(first.seq + 1)]
    # A worker started now takes the newest plan it trusts, as the others keep it.
    fresh = make_client(database_url, policies_dir=policies_dir, strategy_refresh_s=REFRESH_S)
    assert strategies_deciding(fresh, 32) == {STRICT}
    assert fresh.get("/v1/strategies", who="auditor").get_json()["seq"] == first.seq
    # A row with the largest number a plan may have: no plan can follow it; said, not a 500.
    with engine_of(client).begin() as conn:
        conn.execute(insert(strategy_plans).values(
            seq=2**31 - 1, plan=first.plan, set_by=first.set_by, reason=first.reason,
            set_at=first.set_at, audit_seq=first.audit_seq))
    answer = put(client, {"champion": WIDE, "reason": "after the planted row"})
    assert answer.status_code == 409, answer.get_json()
    assert str(2**31 - 1) in answer.get_json()["error"]["message"]


def test_an_edit_of_the_plan_in_force_is_neither_adopted_nor_shown_in_force(
        make_client, policies_dir):
    client = make_client(policies_dir=policies_dir, strategy_refresh_s=REFRESH_S)
    assert put(client, {"champion": STRICT, "reason": "promote strict"}).status_code == 200
    time.sleep(REFRESH_S)
    assert strategies_deciding(client, 41) == {STRICT}
    with engine_of(client).begin() as conn:
        conn.execute(update(strategy_plans).values(
            plan=json.dumps(plan_of(WIDE), sort_keys=True)))
    time.sleep(REFRESH_S)
    assert strategies_deciding(client, 42) == {STRICT}
    shown = client.get("/v1/strategies", who="risk_officer").get_json()
    assert (shown["seq"], shown["champion"]) == (1, STRICT)
    assert shown["refused"]["seq"] == 1 and shown["refused"]["reason"] == "differs"
    assert WIDE in shown["refused"]["problem"]
    from service.usecases.table_checks import check_tables

    check = check_tables(engine_of(client), ["strategy_plans"])[0]
    assert [d.row for d in check.differences] == ["1"]
    assert "plan" in check.differences[0].problem


def test_deleting_the_newest_plan_does_not_bring_back_the_one_before(make_client,
                                                                     policies_dir, sqlite_url):
    client = make_client(sqlite_url, policies_dir=policies_dir, strategy_refresh_s=REFRESH_S)
    for champion in (STRICT, WIDE):
        assert put(client, {"champion": champion, "reason": "next"}).status_code == 200
    assert client.get("/v1/strategies", who="auditor").get_json()["champion"] == WIDE
    with engine_of(client).begin() as conn:
        conn.execute(strategy_plans.delete().where(strategy_plans.c.seq == 2))
    shown = client.get("/v1/strategies", who="auditor").get_json()
    assert (shown["seq"], shown["champion"]) == (2, WIDE)
    assert (shown["refused"]["seq"], shown["refused"]["reason"]) == (1, "later_record")
    # A worker started now decides under the plan the newest record states, as the others.
    fresh = make_client(sqlite_url, policies_dir=policies_dir, strategy_refresh_s=REFRESH_S)
    assert strategies_deciding(fresh, 33) == {WIDE}
    shown = fresh.get("/v1/strategies", who="auditor").get_json()
    assert (shown["seq"], shown["champion"], shown["refused"]["seq"]) == (2, WIDE, 1)


def test_a_record_the_service_did_not_sign_is_refused_once_records_are_signed(
        make_client, policies_dir, tmp_path):
    """A plan before any signed record is judged as before; after one, a record must carry
    the service's signature over what it states."""
    from service.usecases.table_checks import check_tables

    client = make_client(policies_dir=policies_dir, strategy_refresh_s=REFRESH_S)
    record_plan(client, plan_of(STRICT), reason="before signatures")
    assert client.get("/v1/strategies", who="admin").get_json()["champion"] == STRICT
    assert put(client, {"champion": WIDE, "reason": "signed"}).status_code == 200
    assert client.get("/v1/strategies", who="admin").get_json()["champion"] == WIDE
    record_plan(client, plan_of(CHAMPION), reason="planted")
    shown = client.get("/v1/strategies", who="admin").get_json()
    assert (shown["champion"], shown["refused"]["seq"]) == (WIDE, 3)
    assert shown["refused"]["reason"] == "unsigned"
    record_plan(client, plan_of(CHAMPION), reason="forged", key=Ed25519PrivateKey.generate())
    shown = client.get("/v1/strategies", who="admin").get_json()
    assert (shown["champion"], shown["refused"]["seq"]) == (WIDE, 4)
    assert shown["refused"]["reason"] == "bad_signature"
    assert refusals(client, "unsigned") == refusals(client, "bad_signature") == 1
    public_key = client.app.extensions["flashloan"].checkpointer.public_key
    [check] = check_tables(engine_of(client), ["strategy_plans"], public_key=public_key)
    assert {d.row: d.problem for d in check.differences}.keys() == {"3", "4"}
    [unkeyed] = check_tables(engine_of(client), ["strategy_plans"])
    assert [d.row for d in unkeyed.differences] == ["3"]


def test_a_fallback_champion_is_refused_even_with_a_record_of_its_own(
        make_client, policies_dir, sqlite_url, tmp_path):
    from click.testing import CliRunner

    from service.cli.main import main
    from service.usecases.engines import Engines
    from service.usecases.strategies import StrategyBook

    client = make_client(sqlite_url, policies_dir=policies_dir, strategy_refresh_s=REFRESH_S)
    record_plan(client, plan_of("v1-without-income_tax/2026.11"), reason="a fallback")
    time.sleep(REFRESH_S)
    assert strategies_deciding(client, 51) == {CHAMPION}
    shown = client.get("/v1/strategies", who="admin").get_json()
    assert shown["seq"] == 0 and shown["refused"]["reason"] == "fails_checks"
    assert "fallback" in shown["refused"]["problem"]
    assert refusals(client, "fails_checks") == 1
    # A plan that cannot even be checked here (a model folder that is no path) is judged
    # once, not a failure of every decision.
    wired = client.app.extensions["flashloan"]
    engines = Engines((None,), wired.engines.policy_search)
    engines.adopt(wired.engine)
    book = StrategyBook(wired.store, engines, wired.strategies.default.plan,
                        refresh_s=REFRESH_S, min_auc=0.7,
                        signing_key=wired.strategies.signing_key)
    assert book.current().seq == 0 and book.refused["reason"] == "cannot_build"
    told = CliRunner().invoke(main, ["strategies", "show"], env={
        "FLASHLOAN_DATABASE_URL": sqlite_url, "FLASHLOAN_POLICIES_DIR": policies_dir,
        "FLASHLOAN_VAR_DIR": str(tmp_path)})
    assert told.exit_code == 0, told.output
    assert told.output.startswith("plan 0")
    assert "plan 1 is stored but not in force (fails_checks)" in told.output


def test_the_table_check_names_every_row_and_record_that_disagree(make_client, policies_dir):
    """A plan recorded before records named their row is still adopted and checked by the
    plan before it; then an edit, a row reusing a record and a record without a row."""
    from service.usecases.table_checks import check_tables

    client = make_client(policies_dir=policies_dir, strategy_refresh_s=REFRESH_S)
    record_plan(client, plan_of(STRICT), reason="before", states_its_row=False)
    shown = client.get("/v1/strategies", who="admin").get_json()
    assert (shown["seq"], shown["champion"], shown["refused"]) == (1, STRICT, None)
    assert put(client, {"champion": WIDE, "reason": "wide"}).status_code == 200
    assert check_tables(engine_of(client), ["strategy_plans"])[0].ok
    second = stored_rows(client)[1]
    with engine_of(client).begin() as conn:
        conn.execute(update(strategy_plans).where(strategy_plans.c.seq == 1)
                     .values(reason="edited"))
        conn.execute(insert(strategy_plans).values(
            seq=3, plan=second.plan, set_by=second.set_by, reason=second.reason,
            set_at=second.set_at, audit_seq=second.audit_seq))
    lost = client.app.extensions["flashloan"].store.append(
        "strategy.set", {"seq": 4, "new": plan_of(CHAMPION), "reason": "lost"},
        actor="admin:ops")
    check = check_tables(engine_of(client), ["strategy_plans"])[0]
    assert (check.table, check.checked, check.differing) == ("strategy_plans", 3, 3)
    problems = {d.row: d.problem for d in check.differences}
    assert set(problems) == {"1", "3", "4"}
    assert "reason" in problems["1"] and "edited" in problems["1"]
    assert f"record {second.audit_seq}" in problems["3"] and "plan 2" in problems["3"]
    assert f"record {lost.seq}" in problems["4"] and "no row" in problems["4"]
