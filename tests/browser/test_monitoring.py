"""The monitoring dashboard in a real browser, drawn from decisions made through the API.

The service runs under gunicorn with HTTP sources: a stub source server on this machine.
After the channel's ordinary decisions, the provident fund and social security go down at
the source server (every query fails), and eight more applications are deferred; the
dashboard's panels must then show it: the two sources' availability and error kinds, their
breakers opening, the deferral rate, beside every other panel drawn from the same decisions.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from datasources.stub.adapters import StubWorld
from datasources.stub.behaviour import parse_faults
from datasources.stub.server import running_server
from scoring.online.policy import POLICY_DIR
from tests.browser.conftest import Site, Visitor, _apply, served_site

pytestmark = pytest.mark.slow

PANELS = ("volume", "grades", "reviews", "distributions", "sources", "latency", "reasons",
          "drift", "fairness")
DOWN = ("provident_fund", "social_security")
DEFERRED = 8
CHAMPION, SHADOW = "v1/2026.11", "v1/2026.11-mid"
# Decided with every source answering, under the champion with the shadow beside it.
SHADOWED = 6


def shadow_policy(folder) -> str:
    """The shipped policy with a lower PD cut-off, as the shadow's own version."""
    doc = json.loads((POLICY_DIR / "2026.11.json").read_text(encoding="utf-8"))
    doc.update(version="2026.11-mid", pd_cutoff=0.05)
    (folder / "2026.11-mid.json").write_text(json.dumps(doc), encoding="utf-8")
    return str(folder)


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from datasources.stub.world import population_ids

    policies = shadow_policy(tmp_path_factory.mktemp("policies"))
    with running_server(StubWorld()) as sources, served_site(
            tmp_path_factory, "monitoring",
            env={"FLASHLOAN_SOURCES": "http", "FLASHLOAN_SOURCES_URL": sources.url,
                 "FLASHLOAN_POLICIES_DIR": policies,
                 "FLASHLOAN_STRATEGY_REFRESH_S": "0.05"}) as site:
        changed = site.api("PUT", "/v1/strategies", "admin", {
            "champion": CHAMPION, "challenger": None, "shadows": [SHADOW],
            "reason": "watch a lower cut-off aside"})
        assert changed.status_code == 200, changed.text
        time.sleep(0.2)
        for nid in population_ids(SHADOWED, 78):
            _apply(site, nid)
        site.decisions += SHADOWED
        sources.faults = parse_faults(",".join(f"{scope}=error:1.0" for scope in DOWN))
        answers = [_apply(site, nid) for nid in population_ids(DEFERRED, 77)]
        assert {a["status"] for a in answers} == {"deferred"}, [a["status"] for a in answers]
        site.decisions += DEFERRED
        yield site


def cell(visitor: Visitor, selector: str) -> str:
    return visitor.page.locator(selector).inner_text().strip()


def test_a_risk_officer_sees_every_panel_and_the_outage(browser, outage: Site):
    visitor = Visitor(browser, outage)
    try:
        visitor.sign_in("risk_officer")
        visitor.page.get_by_role("link", name="Monitoring").click()
        expect(visitor.page.get_by_role("heading", name=re.compile("^Monitoring"))).to_be_visible()
        for panel in PANELS:
            expect(visitor.page.locator(f"#panel-{panel}")).to_be_visible()
        # Every chart is an image that loaded (the console's CSP allows no script, and these
        # are data: images it allows).
        images = visitor.page.locator("figure.chart img")
        assert images.count() >= 9
        for i in range(images.count()):
            image = images.nth(i)
            image.scroll_into_view_if_needed()
            assert image.evaluate("img => img.complete && img.naturalWidth > 0"), i
            assert image.get_attribute("alt")

        assert cell(visitor, "#applications") == str(outage.decisions)
        deferral = float(cell(visitor, "#deferral-rate").rstrip("%")) / 100
        assert deferral == pytest.approx(DEFERRED / outage.decisions, abs=0.0001)
        for scope in DOWN:
            row = visitor.page.locator(f"#source-{scope}")
            available = float(row.locator(".availability").inner_text().rstrip("%")) / 100
            assert available == pytest.approx(1 - DEFERRED / outage.decisions, abs=0.001)
            cells = row.locator("td")
            assert "unavailable" in cells.nth(2).inner_text()
            assert int(cells.nth(3).inner_text()) >= 1, "the breaker opened"
        assert cell(visitor, "#source-credit_report .availability") == "100.0%"
        assert cell(visitor, "#slowest-step") != "—"
        assert int(cell(visitor, "#review-backlog")) == 1
        # The champion decided every application; the shadow decided those made since it was
        # set, aside, and its swap set counts them.
        strategies = visitor.page.locator("#panel-strategies")
        expect(strategies.locator("#strategies-alone")).to_have_count(0)
        champion = strategies.locator(f'tr[data-strategy="{CHAMPION}"][data-role="champion"]')
        assert champion.locator(".decisions").inner_text().strip() == str(outage.decisions)
        assert champion.locator(".share").inner_text().strip() == "100.0%"
        shadow = strategies.locator(f'tr[data-strategy="{SHADOW}"][data-role="shadow"]')
        assert shadow.locator(".decisions").inner_text().strip() == str(SHADOWED + DEFERRED)
        assert shadow.locator(".share").inner_text().strip() == "—"
        swaps = strategies.locator(f'.swap-set[data-shadow="{SHADOW}"]')
        assert swaps.locator(".compared").inner_text().strip() == str(SHADOWED + DEFERRED)
        expect(swaps.locator("figure.chart img")).to_have_attribute(
            "alt", f"Outcomes of shadow {SHADOW} against the decided ones")
        expect(visitor.page.locator("#panel-reasons tbody tr").first).to_contain_text(
            re.compile(r"[A-Z]+\d+"))
        expect(visitor.page.locator("#panel-drift .drift-table").first).to_be_visible()
        # Fairness is counted by day: the panel points to the longer windows.
        expect(visitor.page.locator("#panel-fairness")).to_contain_text("counted by day")
        visitor.screenshot("monitoring-day", full_page=True)

        # Another window, chosen with the form.
        visitor.page.get_by_label("Window").select_option("7d")
        visitor.page.get_by_role("button", name="Show").click()
        visitor.page.wait_for_load_state()
        assert "window=7d" in visitor.page.url
        expect(visitor.page.locator("#window-span")).to_contain_text("Last 7 days")
        assert cell(visitor, "#applications") == str(outage.decisions)
        fairness = visitor.page.locator("#panel-fairness")
        expect(fairness).to_contain_text("Monitoring only")
        expect(fairness.locator("table").first).to_contain_text("fewer than 30 decided")
        assert visitor.fits_the_screen()
        assert not visitor.problems, visitor.problems
    finally:
        visitor.close()


def test_an_administrator_sees_the_dashboard_without_fairness(browser, outage: Site):
    visitor = Visitor(browser, outage)
    try:
        visitor.sign_in("admin")
        visitor.goto("/console/monitoring?window=hour")
        expect(visitor.page.locator("#panel-sources")).to_be_visible()
        assert visitor.page.locator("#panel-fairness").count() == 0
        assert not visitor.problems, visitor.problems
    finally:
        visitor.close()
