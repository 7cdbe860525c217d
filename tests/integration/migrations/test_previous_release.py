"""A database made by the release before one record per decision upgrades, verifies and reads.

``release/0007.json`` holds every row of a database that release made through its own API
(revision 0007): an approval, a decline with a review requested, a deferral, a decision by a
fallback model and a deferral decided again; each decision wrote ``application.received``,
five ``source.fetched`` and ``decision.made``, and the row copied the explanation. Beside the
rows, what that release served for each application: its answer, explanation and notice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, MetaData, select, text

from audit import AuditStore
from datasources.stub.world import population_ids
from service.persistence.migrations import alembic_config, current_revision, head_revision, upgrade
from service.persistence.tables import applications
from service.usecases.verification import stored_answers
from tests.integration.service.conftest import Client, _app

RELEASE = json.loads((Path(__file__).parent / "release" / "0007.json").read_text("utf-8"))
# Filled in the order their foreign keys need.
TABLES = ("api_keys", "consents", "applications", "idempotency_keys", "reviews",
          "audit_records", "audit_reason_codes", "audit_checkpoints")


def load_release(engine: Engine) -> None:
    """Bring an empty database to revision 0007 and fill it with the release's rows."""
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), RELEASE["revision"])
    meta = MetaData()
    meta.reflect(engine, only=TABLES)
    with engine.begin() as conn:
        for name in TABLES:
            rows = [_row(meta.tables[name], row) for row in RELEASE["tables"][name]]
            if rows:
                conn.execute(meta.tables[name].insert(), rows)


def _row(table, row: dict[str, Any]) -> dict[str, Any]:
    binary = {c.name for c in table.columns if c.type.python_type is bytes}
    return {k: bytes.fromhex(v) if k in binary and v is not None else v for k, v in row.items()}


def features_by_name(explanation: dict) -> dict[str, tuple]:
    return {f["name"]: (f["group"], f["value"], f["contribution"])
            for f in explanation["features"]}


@pytest.fixture
def upgraded(database_url: str, engine: Engine, tmp_path) -> Client:
    load_release(engine)
    assert upgrade(database_url).after == head_revision()
    client = Client.__new__(Client)
    client.app = _app(database_url, tmp_path)
    client.http = client.app.test_client()
    client.keys = RELEASE["keys"]
    yield client
    client.app.extensions["flashloan"].close()


def test_the_upgrade_points_each_application_to_its_latest_decision_record(
        upgraded: Client) -> None:
    store: AuditStore = upgraded.app.extensions["flashloan"].store
    with store.engine.connect() as conn:
        rows = conn.execute(select(applications.c.application_id,
                                   applications.c.decision_seq)).all()
        latest = dict(conn.execute(text(
            "SELECT application_id, MAX(seq) FROM audit_records WHERE kind = 'decision.made' "
            "GROUP BY application_id")).all())
    assert len(rows) == len(RELEASE["tables"]["applications"])
    assert {aid: seq for aid, seq in rows} == latest
    # The old records stay in the chain as they were, and it still verifies, answers too.
    assert store.verify().ok
    answers = store.check_documents(stored_answers(store.engine), field="answer_sha256",
                                    what="answer")
    assert answers.ok and answers.checked == len(rows), answers


def test_old_decisions_read_as_the_previous_release_served_them(upgraded: Client) -> None:
    for name, served in RELEASE["applications"].items():
        aid = served["application_id"]
        assert upgraded.get(f"/v1/applications/{aid}").get_json() == served["answer"], name
        r = upgraded.get(f"/v1/applications/{aid}/explanation", who="risk_officer")
        assert r.status_code == served["explanation_status"], name
        if served["explanation"] is not None:
            now, then = r.get_json(), served["explanation"]
            assert features_by_name(now) == features_by_name(then), name
            assert ({k: v for k, v in now.items() if k in then and k != "features"}
                    == {k: v for k, v in then.items() if k != "features"}), name
            # What this release adds reads, for an old record, as what it was: reasons ranked
            # against the average applicant, no reference, no recourse sought.
            assert {k: now[k] for k in set(now) - set(then)} == {
                "reasons_method": "average:path_dependent", "reference": None,
                "reference_contributions": None, "recourse": None}, name
        notice = upgraded.get(f"/v1/applications/{aid}/notice").get_json()
        assert notice == served["notice"], name
        replay = upgraded.post(f"/v1/audit/replay/{aid}", None, who="auditor").get_json()
        assert replay["match"], (name, replay)


def test_an_old_deferral_is_decided_again_into_one_record(upgraded: Client) -> None:
    served = RELEASE["applications"]["deferred"]
    aid = served["application_id"]
    store: AuditStore = upgraded.app.extensions["flashloan"].store
    before = [r.kind for r in store.iter_records() if r.application_id == aid]
    assert before == ["application.received", *["source.fetched"] * 5, "decision.made"]
    nid = national_id_of(upgraded, aid)
    applicant = {"national_id": nid, "name": "张三", "mobile": "13812348000"}
    r = upgraded.post(f"/v1/applications/{aid}/retry", {"applicant": applicant})
    assert r.status_code == 200, r.get_json()
    answer = r.get_json()
    assert answer["status"] in ("approved", "declined")
    after = [r for r in store.iter_records() if r.application_id == aid]
    assert [r.kind for r in after] == [*before, "decision.made"]
    assert after[-1].payload["attempt"] == 2 and after[-1].payload["sources"]
    assert after[-1].payload["facts"] == after[-2].payload["facts"]
    assert store.verify().ok


def test_the_downgrade_rebuilds_the_copies_the_previous_release_kept(
        database_url: str, engine: Engine) -> None:
    load_release(engine)
    upgrade(database_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), RELEASE["revision"])
        assert current_revision(conn) == RELEASE["revision"]
        rows = {r.application_id: r for r in conn.execute(text(
            "SELECT application_id, explanation, details FROM applications")).all()}
    for row in RELEASE["tables"]["applications"]:
        back = rows[row["application_id"]]
        if row["explanation"] is None:
            assert back.explanation is None
            continue
        then, now = json.loads(row["explanation"]), json.loads(back.explanation)
        assert features_by_name(now) == features_by_name(then)
        assert json.loads(back.details)["facts"] == json.loads(row["details"])["facts"]


def national_id_of(client: Client, application_id: str) -> str:
    """The national ID the release's application was made with, found by its subject."""
    subject = next(r["subject"] for r in RELEASE["tables"]["applications"]
                   if r["application_id"] == application_id)
    pseudonym = client.app.extensions["flashloan"].pseudonymiser
    return next(nid for nid in population_ids(40, 99) if pseudonym.national_id(nid) == subject)
