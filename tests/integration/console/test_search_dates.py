"""The console's searches read any date a person can type: a page or a form error, never a 500."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.strategies import KNOWN_EXTREMES, extreme_time

SEARCHES = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
TYPED = st.one_of(extreme_time(), st.sampled_from([
    "0001-01-01T00:00", "9999-12-31T23:59:59", "0001-01-01", "9999-12-31", "yesterday", "",
    "0001-01-01T00:00:00-00:01"]))


@SEARCHES
@given(name=st.sampled_from(["since", "until"]), value=TYPED, by_form=st.booleans())
@example(name="since", value=KNOWN_EXTREMES[0], by_form=False)
@example(name="until", value=KNOWN_EXTREMES[1], by_form=True)
def test_the_audit_search_reads_any_typed_time(console, name, value, by_form):
    auditor = console.user("auditor")
    if by_form:
        response = auditor.post("/console/audit", {name: value})
        assert response.status_code in (303, 400), response.status_code
    else:
        response = auditor.get("/console/audit", query_string={name: value})
        assert response.status_code in (200, 400), response.status_code
    if response.status_code == 400:
        assert "must be" in response.get_data(as_text=True)
    if value in KNOWN_EXTREMES:  # a time UTC cannot hold is a form error
        assert response.status_code == 400


@SEARCHES
@given(since=st.dates().map(str), until=st.dates().map(str))
@example(since="0001-01-01", until="9999-12-31")
def test_the_application_search_reads_any_date(console, since, until):
    officer = console.user("risk_officer")
    response = officer.get("/console/applications", query_string={"since": since,
                                                                   "until": until})
    assert response.status_code == (400 if since > until else 200), response.status_code
