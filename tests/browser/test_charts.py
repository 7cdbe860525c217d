"""The charts in a real browser: an application's waterfall in score points or log-odds, and a
model card's global view.

The run's server (tests/browser/conftest.py) reads its models from a folder of copies: v1's
card gains a global view (the mean absolute contribution of each feature over a sample of the
stub world, computed by the shipped model), and one fallback's card has none (``card``).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from scoring.online.model import load_model
from service.web.charts import PointsScale, feature_label
from tests.browser.conftest import PLAIN, SAMPLE

pytestmark = pytest.mark.slow


def test_the_waterfall_is_in_score_points_with_labels_and_switches_to_log_odds(visit, site,
                                                                               card):
    # An approval no other test amends (the console's tests change the partial one).
    answer = next(a for a in site.approved if a is not site.partial)
    aid = answer["application_id"]
    explanation = site.api("GET", f"/v1/applications/{aid}/explanation", "risk_officer").json()
    scale = PointsScale.from_card(card[1])
    assert scale is not None and explanation["model_version"] == "v1"
    largest = max(explanation["features"], key=lambda f: abs(f["contribution"]))
    label = feature_label(load_model("v1").spec, largest["name"])
    visitor = visit()
    page = visitor.page
    visitor.sign_in("risk_officer")
    visitor.goto(f"/console/applications/{aid}")

    chart = page.locator("figure.chart svg")
    expect(chart).to_be_visible()
    units = page.get_by_role("navigation", name="Units of the chart and the features table")
    expect(units.get_by_role("link", name=re.compile("Score points"))).to_have_attribute(
        "aria-current", "true")
    # The base in points and every feature's points add up to the score the API answered.
    expect(chart).to_contain_text(
        f"{scale.total(explanation['margin']):.2f} → {answer['decision']['score']}")
    expect(chart).to_contain_text(f"{scale.total(explanation['base_value']):.1f}")
    expect(chart).to_contain_text("score points (higher is better: lower risk)")
    expect(chart).to_contain_text(label.en)
    expect(chart).to_contain_text(label.second_line)
    expect(page.locator("#chart-units")).to_contain_text(
        f"recorded as {answer['decision']['score']}")
    first = page.locator("#h-features + table tbody tr").first
    expect(first).to_contain_text(label.en)
    expect(first).to_contain_text(label.zh)
    expect(first.locator("td").last).to_have_text(
        f"{scale.step(largest['contribution']):+.1f}")
    expect(page.locator("#h-features + table thead")).to_contain_text("Contribution (points)")
    assert visitor.fits_the_screen()
    visitor.screenshot("application-chart-points", full_page=True)

    units.get_by_role("link", name=re.compile("Log-odds")).click()
    expect(page).to_have_url(re.compile(r"units=log_odds#h-chart$"))
    expect(chart).to_contain_text("log-odds of default (higher is riskier)")
    expect(chart).to_contain_text(f"{explanation['margin']:+.3f}")
    expect(chart).to_contain_text(label.en)
    expect(first.locator("td").last).to_have_text(f"{largest['contribution']:+.3f}")
    expect(page.locator("#h-features + table thead")).to_contain_text(
        "Contribution (log-odds)")
    visitor.screenshot("application-chart-log-odds", full_page=True)

    response = visitor.goto(f"/console/applications/{aid}?units=percent")
    assert response is not None and response.status == 400
    expect(page.locator("main")).to_contain_text("units must be points or log_odds")


def test_the_model_page_draws_the_cards_global_view(visit, card):
    view = card[1]["global_importance"]
    scale = PointsScale.from_card(card[1])
    assert scale is not None
    spec = load_model("v1").spec
    top = view["features"][0]
    visitor = visit()
    page = visitor.page
    visitor.sign_in("risk_officer")
    visitor.goto("/console/models/v1")

    chart = page.get_by_role("img", name=re.compile("mean absolute contribution per feature"))
    expect(chart).to_be_visible()
    # The background and one bar per feature.
    assert chart.locator("rect").count() == 1 + len(view["features"])
    expect(chart).to_contain_text(feature_label(spec, top["name"]).en)
    expect(chart).to_contain_text(
        feature_label(spec, top["name"]).second_line)
    expect(chart).to_contain_text(f"{top['mean_abs_contribution'] * abs(scale.slope):.1f}")
    expect(page.locator("#importance-units")).to_contain_text(
        f"{SAMPLE} applicants of the stub world")
    assert visitor.fits_the_screen()
    visitor.screenshot("model-global-view", full_page=True)

    page.get_by_role("navigation", name="Units of the global view").get_by_role(
        "link", name=re.compile("Log-odds")).click()
    expect(page).to_have_url(re.compile(r"units=log_odds#h-importance$"))
    expect(chart).to_contain_text(f"{top['mean_abs_contribution']:.3f}")
    expect(chart).to_contain_text("mean absolute contribution, log-odds of default")

    response = visitor.goto("/console/models/v1?units=logit")
    assert response is not None and response.status == 400
    expect(page.locator("main")).to_contain_text("units must be points or log_odds; got 'logit'")

    visitor.goto(f"/console/models/{PLAIN}")
    expect(page.locator("#no-global-view")).to_have_text(
        "This card has no global view: it records no mean contribution per feature.")
    expect(page.get_by_role("heading", name=re.compile(f"^Model {PLAIN}"))).to_be_visible()
