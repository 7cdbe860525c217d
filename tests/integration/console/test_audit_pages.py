"""The auditor's pages: search, records with hashes, verify and exports, each query recorded."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

from audit import load_signing_key, sign_checkpoint, write_checkpoint
from audit.canonical import canonical_text
from tests.databases import migrate

SEQS = re.compile(r'href="/console/audit/records/(\d+)"')
NEXT = re.compile(r'href="([^"]+)" rel="next"')
GENESIS = "0" * 64


def seqs(page: str) -> list[int]:
    return [int(s) for s in SEQS.findall(page)]


def queried(console, endpoint: str) -> list:
    return [r for r in console.records("audit.queried")
            if r.payload["endpoint"] == f"console.{endpoint}"]


def test_auditors_search_with_filters_newest_first_and_each_search_is_recorded(
        decided_on_any_db):
    console, answers = decided_on_any_db
    auditor = console.user("auditor")
    made = seqs(auditor.text("/console/audit?kind=decision.made"))
    assert len(made) == 12 and made == sorted(made, reverse=True)
    declined = [a for a in answers if a["status"] == "declined"]
    page = auditor.text("/console/audit?kind=decision.made&outcome=declined")
    assert len(seqs(page)) == len(declined)
    code = declined[0]["decision"]["reasons"][0]["code"]
    page = auditor.text(f"/console/audit?reason_code={code.lower()}")
    assert seqs(page) and all(
        code in console.wired.store.get(s).payload["reason_codes"] for s in seqs(page))
    aid = answers[0]["application_id"]
    page = auditor.text(f"/console/audit?application_id={aid}")
    assert {console.wired.store.get(s).application_id for s in seqs(page)} == {aid}
    assert len(seqs(page)) == 1  # one record per decision
    assert len(seqs(auditor.text("/console/audit?model_version=v1&kind=decision.made"))) == 12
    page = auditor.text("/console/audit?since=2999-01-01T00:00")
    assert seqs(page) == [] and "No record matches these filters" in page

    recorded = queried(console, "records")
    assert len(recorded) == 6
    assert recorded[0].payload["filters"]["kinds"] == ["decision.made"]
    assert recorded[0].payload["returned"] == 12
    assert recorded[0].actor == f"auditor:{recorded[0].payload['key_id']}"

    bad = auditor.get("/console/audit?since=last-tuesday&kind=decision.unmade")
    assert bad.status_code == 400
    assert "must be a date and time" in bad.get_data(as_text=True)
    assert len(queried(console, "records")) == 6  # nothing was searched


def test_the_search_form_posts_and_redirects_to_a_link_of_the_search(decided):
    console, _ = decided
    auditor = console.user("auditor")
    response = auditor.post("/console/audit", {"kind": "decision.made", "outcome": "approved",
                                               "since": "2020-01-01T00:00", "national_id": ""})
    assert response.status_code == 303
    target = urlsplit(response.headers["Location"])
    assert target.path == "/console/audit"
    assert parse_qs(target.query) == {"kind": ["decision.made"], "outcome": ["approved"],
                                      "since": ["2020-01-01T00:00:00"]}
    response = auditor.post("/console/audit", {"until": "not a time"})
    assert response.status_code == 400 and "must be a date and time" in response.get_data(
        as_text=True)


def test_a_national_id_is_hashed_and_never_shown_put_in_a_link_or_logged(decided, people):
    console, answers = decided
    auditor = console.user("auditor")
    national_id = people[3]
    response = auditor.post("/console/audit", {"national_id": national_id})
    assert response.status_code == 303
    location = response.headers["Location"]
    subject = console.wired.pseudonymiser.national_id(national_id)
    assert national_id not in location and parse_qs(urlsplit(location).query) == {
        "subject": [subject]}
    page = auditor.text(location)
    assert national_id not in page and "the ID itself is not kept" in page
    found = {console.wired.store.get(s).application_id for s in seqs(page)}
    assert found == {None, answers[3]["application_id"]}  # the consent, then the application
    search, = queried(console, "records")
    assert search.payload["filters"]["subject"] == subject
    assert national_id not in json.dumps(search.payload, ensure_ascii=False)

    wrong = national_id[:-1] + ("0" if national_id[-1] != "0" else "1")
    response = auditor.post("/console/audit", {"national_id": wrong})
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and "is not a valid national ID" in text
    assert wrong not in text and wrong[:14] not in text
    # Only the form turns a national ID into a search; a link with one is refused.
    response = auditor.get("/console/audit?national_id=" + national_id)
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and "cannot be given in a link" in text
    assert national_id not in text
    assert len(queried(console, "records")) == 1


def test_the_log_paginates_with_the_stores_cursor(decided, people):
    console, _ = decided
    for nid in people[12:32]:  # a consent and a decision record each: more than a page
        console.apply(nid)
    auditor = console.user("auditor")
    page = auditor.text("/console/audit")
    seen = seqs(page)
    top = seen[0]
    assert len(seen) == 50 and "First page" not in page
    while (found := NEXT.search(page)):
        page = auditor.text(html.unescape(found.group(1)))
        seen += seqs(page)
    assert seen == list(range(top, 0, -1)) and "Last page" in page
    first = auditor.text("/console/audit")
    cursor = parse_qs(urlsplit(html.unescape(NEXT.search(first).group(1))).query)["cursor"][0]
    foreign = auditor.get(f"/console/audit?kind=decision.made&cursor={cursor}")
    assert foreign.status_code == 400 and "another search" in foreign.get_data(as_text=True)


def test_an_empty_log_says_where_records_come_from(sqlite_url, tmp_path):
    from sqlalchemy import insert

    from service.domain.encoding import now_text
    from service.persistence.tables import api_keys
    from service.usecases.api_keys import hash_secret
    from tests.apps import build_app
    from tests.integration.console.conftest import ConsoleUser

    migrate(sqlite_url)
    app = build_app({"database_url": sqlite_url, "env": "test", "var_dir": tmp_path})
    try:
        # Keys are recorded as they are made; this one was put in the table as keys of
        # releases before that were, so the log is empty.
        with app.extensions["flashloan"].store.engine.begin() as conn:
            conn.execute(insert(api_keys).values(
                key_id="0123456789ab", name="auditor", role="auditor",
                secret_hash=hash_secret("secret"), created_at=now_text()))
        auditor = ConsoleUser(app, "fl_0123456789ab_secret")
        assert auditor.sign_in().status_code == 303
        page = auditor.text("/console/audit")
    finally:
        app.extensions["flashloan"].close()
    assert "The audit log is empty" in page and "POST /v1/applications" in page


def test_a_record_shows_its_canonical_payload_and_hashes(decided):
    console, _ = decided
    auditor = console.user("auditor")
    record = console.wired.store.get(1)
    page = auditor.text("/console/audit/records/1")
    assert record.payload_hash in page and record.record_hash in page
    assert f'id="prev-hash">{GENESIS}<' in page
    assert html.escape(canonical_text(record.payload), quote=False) in page.replace(
        "&#34;", '"').replace("&#39;", "'")
    assert page.count('class="ok"') == 2 and 'class="bad"' not in page
    assert "Record 2 »" in page and "« Record" not in page
    assert auditor.get("/console/audit/records/99999").status_code == 404
    assert [r.payload["seq"] for r in queried(console, "record")] == [1, 99999]
    assert [r.payload["found"] for r in queried(console, "record")] == [True, False]


def test_verify_says_intact_counts_checkpoints_and_finds_the_first_broken_record(decided,
                                                                                 tmp_path):
    console, _ = decided
    auditor = console.user("auditor")
    response = auditor.post("/console/audit/verify")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "The chain is intact" in page
    assert re.search(r"Checked \d+ records and 0 signed checkpoints", page)
    key = load_signing_key(None, tmp_path, production=False)
    signed = sign_checkpoint(console.wired.store, key)
    write_checkpoint(signed, tmp_path / "checkpoints")
    # One of another database run from the same folder: left out, and said so.
    write_checkpoint(replace(signed, chain_id="b" * 64), tmp_path / "checkpoints")
    page = auditor.post("/console/audit/verify").get_data(as_text=True)
    assert "The chain is intact" in page and "and 1 signed checkpoint." in page
    assert "1 checkpoint file of another chain" in page
    page = auditor.post("/console/audit/verify", {"start": "5", "end": "20"}).get_data(
        as_text=True)
    assert "The chain is intact" in page and "Checked 16 records" in page
    bad = auditor.post("/console/audit/verify", {"start": "0", "end": "x"})
    assert bad.status_code == 400 and "must be a record number" in bad.get_data(as_text=True)

    with console.wired.store.engine.begin() as conn:
        for trigger in ("audit_records_no_delete", "audit_records_only_purge"):
            conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
        conn.exec_driver_sql("UPDATE audit_records SET payload = "
                             "replace(payload, '\"outcome\":\"declined\"', "
                             "'\"outcome\":\"approved\"') WHERE kind = 'decision.made'")
    page = auditor.post("/console/audit/verify").get_data(as_text=True)
    assert "The chain is broken" in page and "payload_altered" in page
    verified = queried(console, "verify")
    assert [r.payload["ok"] for r in verified] == [True, True, True, False]
    assert verified[2].payload["start"] == 5 and verified[2].payload["end"] == 20


def test_exports_download_what_the_search_shows(decided):
    console, _ = decided
    auditor = console.user("auditor")
    page = auditor.text("/console/audit?kind=decision.made&outcome=declined")
    link = html.unescape(re.search(r'href="(/console/audit/export\.jsonl[^"]*)"', page)[1])
    assert parse_qs(urlsplit(link).query) == {"kind": ["decision.made"],
                                              "outcome": ["declined"]}
    response = auditor.get(link)
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    assert response.headers["Content-Disposition"] == 'attachment; filename="audit.jsonl"'
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert lines and all(r["kind"] == "decision.made" and r["payload"]["outcome"] == "declined"
                         for r in lines)
    assert [r["seq"] for r in lines] == sorted(r["seq"] for r in lines)
    response = auditor.get("/console/audit/export.csv?kind=decision.made")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert response.mimetype == "text/csv" and len(rows) == 12
    assert {"seq", "kind", "payload_hash", "record_hash"} <= set(rows[0])
    assert auditor.get("/console/audit/export.xml").status_code == 404
    exports = queried(console, "export")
    assert [r.payload["format"] for r in exports] == ["jsonl", "csv"]
    assert exports[0].payload["filters"]["outcome"] == "declined"


def test_verify_checks_the_answers_of_applications_when_asked(decided):
    from sqlalchemy import update

    from service.persistence.tables import applications

    console, answers = decided
    auditor = console.user("auditor")
    page = auditor.text("/console/audit/verify")
    assert 'name="applications"' in page
    page = auditor.post("/console/audit/verify", {"applications": "on"}).get_data(as_text=True)
    assert "The chain is intact" in page and "12 application answers match" in page
    target = answers[0]["application_id"]
    with console.wired.store.engine.begin() as conn:
        conn.execute(update(applications).where(applications.c.application_id == target)
                     .values(answer=applications.c.answer + " "))
    page = auditor.post("/console/audit/verify").get_data(as_text=True)
    assert "The chain is intact" in page, "answers are checked only when asked"
    page = auditor.post("/console/audit/verify", {"applications": "on"}).get_data(as_text=True)
    assert "answer_altered" in page and target in page


def test_an_empty_range_is_refused_on_the_verify_page(decided):
    console, _ = decided
    bad = console.user("auditor").post("/console/audit/verify", {"start": "999999"})
    assert bad.status_code == 400
    assert "beyond the last record" in bad.get_data(as_text=True)
