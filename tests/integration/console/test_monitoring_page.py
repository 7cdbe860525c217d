"""The monitoring page: every panel drawn from the decisions made, its charts images that
need no script, fairness for risk officers and auditors only."""

from __future__ import annotations

import base64
import re
from xml.etree import ElementTree

import pytest

from tests.integration.console.conftest import decide_a_dozen
from tests.integration.service.test_monitoring_strategies import REFRESH_S, policies, set_plan

IMAGE = re.compile(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)">')
PANELS = ("volume", "strategies", "grades", "reviews", "distributions", "sources", "latency",
          "reasons", "drift")


def models_that_decided(answers: list[dict]) -> int:
    return len({a["decision"]["model_version"] for a in answers if a["decision"]})


@pytest.mark.parametrize(("window", "fairness_charts"), [("day", 0), ("7d", 3)])
def test_every_panel_is_drawn_with_its_numbers(decided_on_any_db, window, fairness_charts):
    console, answers = decided_on_any_db
    page = console.user("risk_officer").text(f"/console/monitoring?window={window}")
    for panel in (*PANELS, "fairness"):
        assert f'id="panel-{panel}"' in page, panel
    assert re.search(r'<td class="num" id="applications">(\d+)</td>', page).group(1) == str(
        len(answers))
    images = IMAGE.findall(page)
    # The series, strategies, grades, availability, source latency, steps and reasons; score,
    # PD and drift per model that decided; one per fairness dimension, counted by day.
    assert len(images) == 7 + 3 * models_that_decided(answers) + fairness_charts
    for data, alt in images:
        svg = base64.b64decode(data).decode()
        ElementTree.fromstring(svg)
        assert "<script" not in svg and alt
    # The champion alone decided: the strategies panel says so.
    assert 'id="strategies-alone"' in page
    assert re.findall(r'<tr data-strategy="([^"]+)" data-role="([^"]+)">', page) == [
        ("v1/2026.11", "champion")]
    assert ("counted by day" in page) is (window == "day")
    assert ("Monitoring only" in page) is (window == "7d")


@pytest.mark.parametrize(("role", "fairness"), [
    ("risk_officer", True), ("auditor", True), ("admin", False)])
def test_who_sees_the_dashboard_and_its_fairness_panel(decided, role, fairness):
    console, _ = decided
    response = console.user(role).get("/console/monitoring?window=7d&by=hour")
    assert response.status_code == 200
    assert ('id="panel-fairness"' in response.get_data(as_text=True)) is fairness


def test_a_window_that_does_not_exist_is_refused_by_name(console):
    response = console.user("risk_officer").get("/console/monitoring?window=week")
    assert response.status_code == 400
    assert "window must be one of hour, day, 7d, 30d" in response.get_data(as_text=True)


def test_a_series_choice_that_does_not_apply_gives_the_windows_own(decided):
    console, _ = decided
    page = console.user("auditor").text("/console/monitoring?window=hour&by=hour")
    assert "Last hour, by 5 minutes" in page


def test_the_strategies_panel_sets_a_challenger_and_a_shadow_beside_the_champion(
        make_console, people, tmp_path):
    console = make_console(policies_dir=str(policies(tmp_path / "policies")),
                           strategy_refresh_s=REFRESH_S)
    set_plan(console.wired)
    _, answers = decide_a_dozen(console, people)
    page = console.user("auditor").text("/console/monitoring?window=hour")
    panel = page[page.index('id="panel-strategies"'):page.index('id="panel-grades"')]
    assert 'id="strategies-alone"' not in panel
    assert re.findall(r'<tr data-strategy="([^"]+)" data-role="([^"]+)">', panel) == [
        (name, role) for name, role in (("v1/2026.11", "champion"),
                                        ("v1/2026.11-strict", "challenger"),
                                        ("v1/2026.11-mid", "shadow"))
        if role == "shadow" or any(a["strategy"] == name for a in answers)]
    assert 'data-shadow="v1/2026.11-mid"' in panel
    compared = re.search(r'<dd class="compared">(\d+)</dd>', panel)
    assert compared and compared.group(1) == str(len(answers))
    # The approval-rate bars and the shadow's matrix, each an SVG image with its text.
    images = IMAGE.findall(panel)
    assert [alt for _, alt in images] == [
        "Approval rate of each strategy",
        "Outcomes of shadow v1/2026.11-mid against the decided ones"]
    for data, _ in images:
        ElementTree.fromstring(base64.b64decode(data).decode())
    assert "v1/2026.11-mid (shadow)" in base64.b64decode(images[0][0]).decode()
