"""The outcomes page: realised default beside predicted PD, by grade and month, with a chart."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime
from xml.etree import ElementTree

from service.web.formatting import percent

SVG = re.compile(r"<svg\b.*?</svg>", re.S)
ROW = re.compile(r'<tr><th scope="row">([^<]+)</th>(.*?)</tr>', re.S)
CELL = re.compile(r'<td class="num">([^<]*)</td>')


def rows(page: str, table_id: str) -> dict[str, list[str]]:
    """A table of the page: its rows by their heading, each as the texts of its cells."""
    table = re.search(rf'<table class="list" id="{table_id}">(.*?)</table>', page, re.S)
    assert table, f"the page has no table {table_id}"
    return {head: CELL.findall(cells) for head, cells in ROW.findall(table.group(1))}


def post_outcome(console, answer: dict, status: str, days: int) -> None:
    now = datetime.now(UTC)
    response = console.call("POST", "/v1/outcomes", role="servicing", body={
        "application_id": answer["application_id"], "drawn": True,
        "drawn_at": now.isoformat(), "amount": answer["decision"]["credit_limit"],
        "performance": [{"month": now.strftime("%Y-%m"), "status": status,
                         "days_past_due": days}]})
    assert response.status_code == 200, response.get_json()


def test_the_page_sets_realised_default_beside_predicted_pd(decided):
    console, answers = decided
    approved = [a for a in answers if a["status"] == "approved"]
    by_grade: dict[str, list] = defaultdict(list)
    for index, answer in enumerate(approved):
        defaulted = index % 2 == 0
        post_outcome(console, answer, "default" if defaulted else "current", 0)
        by_grade[answer["decision"]["grade"]].append((defaulted, answer["decision"]["pd"]))

    for role in ("risk_officer", "auditor", "admin"):
        page = console.user(role).text("/console/outcomes")
        grades = rows(page, "by-grade")
        assert set(grades) == {*by_grade, "All"}, role
        for grade, loans in by_grade.items():
            defaults = sum(d for d, _ in loans)
            mean_pd = sum(pd for _, pd in loans) / len(loans)
            assert grades[grade][:4] == [str(len(loans)), str(defaults),
                                         percent(defaults / len(loans)), percent(mean_pd)]
        total = sum(d for loans in by_grade.values() for d, _ in loans)
        assert grades["All"][:3] == [str(len(approved)), str(total),
                                     percent(total / len(approved))]
        months = rows(page, "by-month")
        assert months == {datetime.now(UTC).strftime("%Y-%m"): grades["All"],
                          "All": grades["All"]}
        (svg,) = SVG.findall(page)
        chart = ElementTree.fromstring(svg)
        assert chart.tag.endswith("svg") and "<script" not in page
        for grade in by_grade:
            assert f"Grade {grade}, realised" in svg and f"Grade {grade}, predicted" in svg
        assert 'href="/console/outcomes" aria-current="page"' in page


def test_before_any_outcome_the_page_says_so(console):
    page = console.user("risk_officer").text("/console/outcomes")
    assert "No drawn loans have been reported yet" in page and "<svg" not in page


def test_a_servicing_key_cannot_open_the_console(console):
    user = console.user()
    response = user.sign_in(console.keys["servicing"])
    assert response.status_code == 403
    assert "servicing key is for the bank&#39;s loan-servicing system" in response.get_data(
        as_text=True)
    assert user.get("/console/outcomes").status_code == 302
