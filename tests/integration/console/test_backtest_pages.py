"""The backtest pages: the strategies in force, the form that starts a backtest (and refuses a
wrong one, writing nothing), and a backtest waiting, failed, or done with its report's figures
and charts inside the console."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
from sqlalchemy import insert

from audit.canonical import format_time
from datasources.stub.world import population_ids
from scoring.governance.strategy import Strategy
from service.domain.encoding import now_text
from service.persistence.tables import backtests
from service.usecases.backtests.run import Backtest
from tests.integration.console.conftest import (
    Console,
    console_in,
    decide_a_dozen,
    finished_backtest,
)
from tests.integration.service.test_strategies import CHAMPION, STRICT, WIDE, write_policy

IMAGE = re.compile(r'<img src="(data:image/svg\+xml;base64,[A-Za-z0-9+/=]+)" alt="([^"]*)">')
SECTIONS = ("overview", "approval", "expected-loss", "swap", "realised-default", "score-shift",
            "means", "changes")
REFRESH = '<meta http-equiv="refresh" content="3">'
STARTED = re.compile(r"^/console/backtests/(bt_[0-9a-f]{32})$")


def write_policies(folder: Path) -> Path:
    """A stricter policy (a lower PD cut-off), a wider one (older applicants too) and one
    past the line cap, as the strategies' tests try them; return the folder."""
    write_policy(folder, "2026.11-strict", pd_cutoff=0.035)
    write_policy(folder, "2026.11-wide", eligibility={"age_max": 60})
    write_policy(folder, "2026.11-over-cap", limit={"max_line": 300_000})
    return folder


@pytest.fixture
def desk(make_console, tmp_path, people):
    """A console with a dozen decisions by the champion, and the stricter policy to try."""
    console = make_console(policies_dir=str(write_policies(tmp_path / "policies")))
    decide_a_dozen(console, people)
    return console


@pytest.fixture(scope="module")
def refusing_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The same desk, made once for the forms it refuses: a refused form writes nothing
    (which each test of one asserts), so they share it."""
    policies = write_policies(tmp_path_factory.mktemp("policies"))
    with console_in(tmp_path_factory.mktemp("desk"), policies_dir=str(policies)) as console:
        decide_a_dozen(console, population_ids(60, 2024))
        yield console


@pytest.fixture
def idle(make_console):
    """A console whose worker runs no backtest: a job stays as it is stored."""
    return make_console(backtest_processes=0, backtests_per_requester=1)


def requested_backtests(console) -> list:
    return console.records("backtest.requested")


def field_error(page: str, name: str) -> str:
    """The error written beside the form's field ``name``."""
    found = re.search(rf'name="{name}"[^>]*>\s*<span class="field-error" role="alert">([^<]*)'
                      r"</span>", page)
    assert found, f"no error beside {name}"
    return html.unescape(found.group(1))


def store_job(console, status: str, *, heartbeat_at: str | None = None,
              error: str | None = None) -> str:
    """A backtest row as the desk keeps one that waits, runs or failed."""
    backtest_id = f"bt_{status}0000000000000000000000000000"[:35]
    with console.wired.store.engine.begin() as conn:
        conn.execute(insert(backtests).values(
            backtest_id=backtest_id, strategy=STRICT, status=status,
            requested_by=f"risk_officer:{console.key_id('risk_officer')}",
            requested_at=now_text(), heartbeat_at=heartbeat_at or now_text(),
            finished_at=now_text() if status == "failed" else None, error=error))
    return backtest_id


def test_a_risk_officer_starts_a_backtest_and_reads_its_report_in_the_console(desk):
    officer = desk.user("risk_officer")
    page = officer.text("/console/backtests")
    assert 'id="start"' in page and "No backtest has been run yet" in page
    assert f'<option value="{CHAMPION}"></option>' in page
    today = datetime.now(UTC).date()
    response = officer.post("/console/backtests", {
        "strategy": STRICT, "since": today.isoformat(), "until": today.isoformat(),
        "lgd": "0.6"})
    assert response.status_code == 303, response.get_data(as_text=True)
    backtest_id = STARTED.match(response.headers["Location"]).group(1)
    job = finished_backtest(desk, backtest_id)
    assert job["status"] == "done", job
    # The last day is included: the window ends when it does.
    assert job["since"].startswith(f"{today.isoformat()}T00:00:00")
    assert job["until"].startswith(f"{(today + timedelta(days=1)).isoformat()}T00:00:00")
    assert job["summary"]["lgd"] == 0.6 and job["rows"] == job["summary"]["rows"] > 0
    [record] = requested_backtests(desk)
    assert record.actor == f"risk_officer:{desk.key_id('risk_officer')}"
    assert record.payload["backtest_id"] == backtest_id and record.payload["strategy"] == STRICT

    page = officer.text(f"/console/backtests/{backtest_id}")
    assert REFRESH not in page and 'id="backtest-status" class="level level-stable">done<' in page
    for section in SECTIONS:
        assert f'id="{section}"' in page, section
    summary = job["summary"]
    assert f'<dd id="rows">{summary["rows"]}</dd>' in page
    assert f'<strong id="swap-out">{summary["swap"]["swap_out"]}</strong>' in page
    assert f'<strong id="changes-count">{summary["changes"]["count"]}</strong>' in page
    charts = IMAGE.findall(page)
    assert len(charts) == 5
    for uri, alt in charts:
        svg = base64.b64decode(uri.split(",", 1)[1]).decode()
        ElementTree.fromstring(svg)
        assert "<script" not in svg and alt
    # The console draws the very charts of the standalone report, which it offers whole.
    download = officer.get(f"/console/backtests/{backtest_id}/report.html")
    assert download.status_code == 200 and download.mimetype == "text/html"
    assert download.headers["Content-Disposition"] == (
        f'attachment; filename="backtest-{backtest_id}.html"')
    report = download.get_data(as_text=True)
    assert report == desk.wired.backtests.get(backtest_id, with_report=True)["report"]
    assert sorted(IMAGE.findall(report)) == sorted(charts)
    assert f'href="/console/backtests/{backtest_id}/report.html"' in page

    listed = officer.text("/console/backtests")
    row = listed.split(f'<tr data-backtest="{backtest_id}">', 1)[1].split("</tr>", 1)[0]
    assert ">done<" in row and f"<code>{STRICT}</code>" in row
    assert f'<td class="num">{job["rows"]}</td>' in row
    assert (f"{today.isoformat()} 00:00:00 UTC → {today + timedelta(days=1)} 00:00:00 UTC, "
            "the end excluded") in row
    assert f"risk_officer:{desk.key_id('risk_officer')}" in row


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"strategy": "v1"}, "strategy", "strategy must be of the form MODEL/POLICY"),
    ({"strategy": ""}, "strategy", "strategy must be of the form MODEL/POLICY"),
    ({"strategy": "v9/2026.11"}, "strategy", "model must be a known version"),
    ({"strategy": "v1/2099.01"}, "strategy", "policy must be a known version"),
    ({"strategy": "v1//etc/passwd"}, "strategy", "never a path"),
    ({"strategy": "v1-without-income_tax/2026.11"}, "strategy", "is a fallback"),
    ({"strategy": "v1/" + "2" * 198}, "strategy", "strategy must be at most 200 characters"),
    ({"strategy": CHAMPION, "since": "2026-02-01", "until": "2026-01-31"}, "until",
     "must not be before the first day (2026-02-01); got 2026-01-31"),
    ({"strategy": CHAMPION, "since": "yesterday"}, "since",
     "must be a date (YYYY-MM-DD); got 'yesterday'"),
    ({"strategy": CHAMPION, "lgd": "1.5"}, "lgd", "must be a number from 0 to 1; got '1.5'"),
    ({"strategy": CHAMPION, "lgd": "nan"}, "lgd", "must be a number from 0 to 1; got 'nan'"),
])
def test_a_wrong_form_says_what_is_wrong_beside_the_field_and_starts_nothing(
        refusing_desk, form, field, message):
    desk = refusing_desk
    officer = desk.user("risk_officer")
    response = officer.post("/console/backtests", form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in field_error(page, field)
    assert "The backtest was not started" in page
    # What was typed stays in the form.
    for name, value in form.items():
        assert f'name="{name}"' in page and f'value="{html.escape(value)}"' in page, name
    assert desk.wired.backtests.list() == [] and requested_backtests(desk) == []


def test_a_form_without_this_sessions_token_is_refused_and_starts_nothing(desk):
    officer, auditor = desk.user("risk_officer"), desk.user("auditor")
    good = {"strategy": CHAMPION}
    for token in (None, "forged", auditor.csrf()):
        body = good if token is None else {**good, "csrf_token": token}
        response = officer.post("/console/backtests", body, csrf=False)
        assert response.status_code == 403, token
        assert "did not come from this console" in response.get_data(as_text=True)
    assert desk.wired.backtests.list() == [] and requested_backtests(desk) == []
    # With its token the same form starts one.
    response = officer.post("/console/backtests", good)
    assert response.status_code == 303
    finished_backtest(desk, STARTED.match(response.headers["Location"]).group(1))


@pytest.mark.parametrize(("status", "says"), [
    ("queued", "waits for the one before it to finish"),
    ("running", "is replaying the decisions"),
])
def test_a_backtest_that_waits_or_runs_says_so_and_reloads_itself(idle, status, says):
    console = idle
    backtest_id = store_job(console, status)
    for role in ("risk_officer", "auditor"):
        page = console.user(role).text(f"/console/backtests/{backtest_id}")
        assert REFRESH in page and says in " ".join(page.split())
        assert f'id="backtest-status" class="level level-watch">{status}<' in page
        assert f'href="/console/backtests/{backtest_id}">reload it now</a>' in page
        assert 'id="overview"' not in page and "download-report" not in page
    response = console.user("auditor").get(f"/console/backtests/{backtest_id}/report.html")
    assert response.status_code == 404
    assert f"This backtest is {status}: it has no report." in response.get_data(as_text=True)


def test_a_failed_backtest_shows_its_error_and_no_report(console):
    backtest_id = store_job(console, "failed", error="lgd must be in [0, 1]; got 2.0")
    page = console.user("risk_officer").text(f"/console/backtests/{backtest_id}")
    assert "The backtest failed: lgd must be in [0, 1]; got 2.0." in page
    assert REFRESH not in page and 'id="overview"' not in page
    assert "download-report" not in page
    assert console.user("auditor").get(
        f"/console/backtests/{backtest_id}/report.html").status_code == 404


def test_a_backtest_whose_worker_stopped_is_shown_failed(idle):
    console = idle
    stale = format_time(datetime.now(UTC) - timedelta(minutes=5))
    backtest_id = store_job(console, "running", heartbeat_at=stale)
    page = console.user("auditor").text(f"/console/backtests/{backtest_id}")
    assert "the worker running this backtest stopped before it finished" in page
    assert REFRESH not in page and ">failed<" in page


def test_a_risk_officer_cancels_a_waiting_backtest_from_its_page(idle):
    officer_id = f"risk_officer:{idle.key_id('risk_officer')}"
    backtest_id = idle.wired.backtests.request(Backtest(Strategy.parse(CHAMPION)),
                                               officer_id)["backtest_id"]
    path = f"/console/backtests/{backtest_id}"
    assert 'id="cancel"' not in idle.user("auditor").text(path)
    assert idle.user("auditor").post(f"{path}/cancel").status_code == 403
    officer = idle.user("risk_officer")
    page = officer.text(path)
    assert f'<form method="post" action="{path}/cancel" id="cancel"' in page
    assert 'name="csrf_token"' in page.split('id="cancel"', 1)[1].split("</form>", 1)[0]
    forged = officer.post(f"{path}/cancel", {"csrf_token": "forged"}, csrf=False)
    assert forged.status_code == 403 and idle.records("backtest.cancelled") == []
    response = officer.post(f"{path}/cancel")
    assert response.status_code == 303 and response.headers["Location"] == path
    page = officer.text(path)
    assert 'id="backtest-status" class="level level-watch">cancelled<' in page
    assert f'<span class="mono" id="cancelled-by">{officer_id}</span>' in page
    assert REFRESH not in page and 'id="cancel"' not in page
    [record] = idle.records("backtest.cancelled")
    assert record.actor == officer_id and record.payload["was"] == "queued"
    again = officer.post(f"{path}/cancel")
    assert again.status_code == 409 and "is cancelled" in again.get_data(as_text=True)


def test_a_requester_past_the_cap_is_told_so_and_nothing_starts(idle):
    officer = idle.user("risk_officer")
    assert officer.post("/console/backtests", {"strategy": CHAMPION}).status_code == 303
    refused = officer.post("/console/backtests", {"strategy": CHAMPION, "lgd": "0.4"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    page = refused.get_data(as_text=True)
    assert "The backtest was not started: you have 1 backtests waiting or running" in page
    assert 'value="0.4"' in page and len(requested_backtests(idle)) == 1


def test_an_unknown_backtest_is_a_404_page(console):
    user = console.user("auditor")
    for path in ("/console/backtests/bt_nothing", "/console/backtests/bt_nothing/report.html"):
        response = user.get(path)
        assert response.status_code == 404 and response.mimetype == "text/html", path
        assert "There is no such backtest" in response.get_data(as_text=True)


def test_the_strategies_in_force_are_shown_and_offered(desk):
    changed = desk.call("PUT", "/v1/strategies", "admin", {
        "champion": CHAMPION, "challenger": {"strategy": STRICT, "share": 0.2},
        "shadows": [WIDE], "reason": "try the stricter cut-off on a fifth"})
    assert changed.status_code == 200, changed.get_json()
    page = desk.user("risk_officer").text("/console/backtests")
    table = page.split('id="strategies-in-force"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr data-role="(\w+)"><th scope="row">\w+</th><td><code>([^<]+)</code>'
                      r'</td>\s*<td class="num[^"]*">([^<]+)</td>', table)
    assert rows == [("champion", CHAMPION, "80%"), ("challenger", STRICT, "20%"),
                    ("shadow", WIDE, "decides aside")]
    assert "try the stricter cut-off on a fifth" in page
    assert f"admin:{desk.key_id('admin')}" in page
    suggested = re.findall(r'<option value="([^"]+)"></option>', page)
    assert suggested == [CHAMPION, STRICT, WIDE]


def test_an_auditor_reads_backtests_but_gets_no_form(desk):
    officer = desk.user("risk_officer")
    response = officer.post("/console/backtests", {"strategy": CHAMPION})
    backtest_id = STARTED.match(response.headers["Location"]).group(1)
    finished_backtest(desk, backtest_id)
    auditor = desk.user("auditor")
    page = auditor.text("/console/backtests")
    assert 'id="start"' not in page and 'name="strategy"' not in page
    assert "Only a risk officer can start a backtest" in page
    row = page.split(f'<tr data-backtest="{backtest_id}">', 1)[1].split("</tr>", 1)[0]
    assert ">done<" in row and "the whole log" in row
    assert len(IMAGE.findall(auditor.text(f"/console/backtests/{backtest_id}"))) == 5
    refused = auditor.post("/console/backtests", {"strategy": CHAMPION})
    assert refused.status_code == 403
    assert len(desk.wired.backtests.list()) == 1
