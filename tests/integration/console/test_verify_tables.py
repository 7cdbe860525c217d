"""The console's verify page checks the tables against their records when asked, and shows
each row that differs."""

from __future__ import annotations

from sqlalchemy import update

from service.persistence.tables import applications
from tests.integration.console.conftest import first


def test_the_verify_page_lists_each_tables_verdict_and_the_rows_that_differ(decided):
    console, answers = decided
    auditor = console.user("auditor")
    assert 'name="tables"' in auditor.text("/console/audit/verify")
    page = auditor.post("/console/audit/verify", {"tables": "on"}).get_data(as_text=True)
    assert "The chain is intact" in page and 'id="table-checks"' in page
    assert "<code>applications</code>" in page and "✓ match their records" in page
    declined = first(answers, "declined")["application_id"]
    with console.wired.store.engine.begin() as conn:
        conn.execute(update(applications).where(applications.c.application_id == declined)
                     .values(status="approved"))
    response = auditor.post("/console/audit/verify", {"tables": "on"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "A table differs from its records" in page and "✗ 1 difference<" in page
    assert f"<code>{declined}</code>" in page and "status is &#39;approved&#39;" in page
    # Without the box, the tables are not looked at.
    assert "The chain is intact" in auditor.post("/console/audit/verify").get_data(as_text=True)
    verified = [r.payload for r in console.records("audit.queried")
                if r.payload["endpoint"] == "console.verify"]
    assert [(v["ok"], v["tables_differing"]) for v in verified] == [
        (True, []), (False, ["applications"]), (True, None)]
    assert "applications" in verified[0]["tables"]
