"""The charts in a real browser: an application's waterfall in score points or log-odds, and a
model card's global view.

The server reads its models from a folder of copies: v1's card gains a global view (the mean
absolute contribution of each feature over a sample of the stub world, computed here by the
shipped model), and one fallback's card has none.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from scoring.online.model import MODELS_DIR, fallback_version, load_model
from service.web.charts import PointsScale, feature_label
from tests.browser.conftest import Site, served_site

pytestmark = pytest.mark.slow

PLAIN = fallback_version("v1", "income_tax")
SAMPLE = 300


def write_models(folder: Path) -> dict:
    """Copy v1 with a global view in its card, and a fallback with none; return v1's card."""
    from datasources.stub.world import generate, population_ids, records_at
    from scoring.online.features import features_for_application

    model = load_model("v1")
    ids = population_ids(SAMPLE, 11)
    columns = generate(ids)
    x = np.vstack([features_for_application(records_at(columns, i), 20000, 12)
                   for i in range(SAMPLE)])
    mean_abs = np.abs(model.score(x).contributions).mean(axis=0)
    card = dict(model.card)
    card["global_importance"] = {
        "population": f"{SAMPLE} applicants of the stub world", "rows": SAMPLE,
        "features": sorted(({"name": n, "mean_abs_contribution": float(v)}
                            for n, v in zip(model.feature_names, mean_abs, strict=True)),
                           key=lambda f: -f["mean_abs_contribution"])}
    shutil.copytree(MODELS_DIR / "v1", folder / "v1")
    (folder / "v1" / "card.json").write_text(json.dumps(card, ensure_ascii=False),
                                              encoding="utf-8")
    shutil.copytree(MODELS_DIR / PLAIN, folder / PLAIN)
    plain = json.loads((folder / PLAIN / "card.json").read_text(encoding="utf-8"))
    plain.pop("global_importance", None)
    (folder / PLAIN / "card.json").write_text(json.dumps(plain), encoding="utf-8")
    return card


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("models")
    return folder, write_models(folder)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, card: tuple[Path, dict]) -> Iterator[Site]:
    """The service under gunicorn, reading its models from the folder of copies."""
    with served_site(tmp_path_factory, "charts",
                     {"FLASHLOAN_MODELS_DIR": str(card[0])}) as built:
        yield built


def test_the_waterfall_is_in_score_points_with_labels_and_switches_to_log_odds(visit, site,
                                                                               card):
    answer = site.approved[0]
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
