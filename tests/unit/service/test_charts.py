"""The charts speak the risk officer's units: score points that add up to the recorded score,
or log-odds; totals drawn from zero; every feature named in Chinese and English."""

from __future__ import annotations

import copy
import math
from xml.etree import ElementTree

import numpy as np
import pytest

from datasources.stub.world import population_ids
from scoring.online.scaling import PlattCalibration, ScoreScaling
from scoring.online.spec import load_spec
from service.web.charts import (
    PointsScale,
    contribution_text,
    decider_scale,
    feature_label,
    global_importance,
    importance_svg,
    parse_units,
    waterfall_svg,
)
from service.web.charts.drawing import MUTED, RISKIER, SAFER
from tests.unit.conftest import decider

NS = "{http://www.w3.org/2000/svg}"
SPEC = load_spec()
IDS = population_ids(40, 7)
AGES = np.arange(len(IDS)) % 40 + 22


@pytest.fixture(scope="module")
def model(shipped_engine):
    return shipped_engine.model


@pytest.fixture(scope="module")
def decided(shipped_engine):
    """``decided(unknown)``: the applicants of IDS decided by the shipped engine."""
    return decider(shipped_engine, IDS, AGES)


@pytest.fixture(scope="module")
def explanation(decided):
    """``explanation(i, unknown, **changes)``: applicant i's explanation, with changes."""

    def explain(i: int = 0, unknown: tuple[str, ...] = (), **changes) -> dict:
        return {**decided(unknown).explanation(i, application_id=f"a_{i}"), **changes}

    return explain


def texts(svg: ElementTree.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{NS}text")]


def bars(svg: ElementTree.Element) -> list[ElementTree.Element]:
    """The drawn bars: every rect but the white background."""
    return svg.findall(f".//{NS}rect")[1:]


def zero_x(svg: ElementTree.Element) -> float:
    """Where the axis puts zero: its tick's label."""
    tick, = (t for t in svg.iter(f"{NS}text") if t.text == "0")
    return float(tick.get("x"))


@pytest.mark.parametrize("unknown", [(), ("income_tax",), ("provident_fund",)])
def test_the_base_and_the_points_of_every_feature_add_up_to_the_recorded_score(
        decided, shipped_engine, unknown):
    decisions = decided(unknown)
    scale = decider_scale(decisions.explanation(0), [
        m.card for m in (shipped_engine.model, *shipped_engine.fallbacks.values())])
    assert scale is not None
    for i in range(len(IDS)):
        e = decisions.explanation(i)
        before_rounding = scale.total(e["base_value"]) + sum(
            scale.step(f["contribution"]) for f in e["features"])
        assert before_rounding == pytest.approx(scale.total(e["margin"]), abs=1e-3)
        assert round(before_rounding) == e["score"] == decisions.row(i)["score"]


def test_the_points_line_is_the_cards_scaling_of_the_calibrated_pd():
    calibration, scaling = PlattCalibration(0.94, -0.15), ScoreScaling(600, 50, 20)
    scale = PointsScale.of(calibration, scaling)
    margins = np.linspace(-9, 3, 61)
    pd = calibration.pd(margins)
    exact = scaling.base_points + scaling.factor * (np.log((1 - pd) / pd) - math.log(50))
    assert np.allclose([scale.total(m) for m in margins], exact, atol=1e-9)
    # A log-odds of default more is −a·pdo/ln 2 points: about 27 fewer here.
    assert scale.step(1.0) == pytest.approx(-0.94 * 20 / math.log(2))
    assert np.allclose(scaling.score(pd), np.round(exact))


def test_the_scale_is_the_deciding_models_or_none(explanation, model, shipped_engine):
    e = explanation(0, ("income_tax",))
    fallback = shipped_engine.fallbacks["income_tax"]
    assert decider_scale(e, [model.card, fallback.card]) == PointsScale.of(
        fallback.calibration, fallback.scaling)
    assert decider_scale(e, [model.card]) is None
    assert PointsScale.from_card({"calibration": {"a": 1, "b": 0}}) is None


def test_the_waterfall_in_points_ends_at_the_score_with_totals_from_zero(explanation, model):
    e = explanation(3)
    scale = PointsScale.from_card(model.card)
    svg = ElementTree.fromstring(waterfall_svg(e, SPEC, scale=scale))
    drawn = texts(svg)
    assert f"{scale.total(e['margin']):.2f} → {e['score']}" in drawn
    assert f"{scale.total(e['base_value']):.1f}" in drawn
    assert "score points (higher is better: lower risk)" in drawn
    base, *_, final = bars(svg)
    assert float(base.get("x")) == pytest.approx(zero_x(svg), abs=0.1)
    assert float(final.get("x")) == pytest.approx(zero_x(svg), abs=0.1)
    # Final over base is the score over the base in points: the lengths compare.
    assert float(final.get("width")) / float(base.get("width")) == pytest.approx(
        scale.total(e["margin"]) / scale.total(e["base_value"]), rel=1e-3)
    assert svg.find(f"{NS}title").text.startswith("Application a_3")
    assert "score points" in svg.find(f"{NS}desc").text


def test_in_points_green_raises_the_score_and_red_lowers_it(explanation, model):
    e = explanation(7)
    scale = PointsScale.from_card(model.card)
    svg = ElementTree.fromstring(waterfall_svg(e, SPEC, scale=scale, top=40))
    steps = bars(svg)[1:-1]
    by_size = sorted(e["features"], key=lambda f: (-abs(f["contribution"]), f["name"]))
    assert len(steps) == len(by_size)
    for f, bar in zip(by_size, steps, strict=True):
        points = scale.step(f["contribution"])
        assert bar.get("fill") == (SAFER if points > 0 else RISKIER if points < 0 else MUTED)
    assert {SAFER, RISKIER} <= {bar.get("fill") for bar in steps}


def test_each_feature_is_labelled_in_chinese_and_english_with_its_value(explanation, model):
    e = explanation(2)
    svg = ElementTree.fromstring(waterfall_svg(e, SPEC, scale=PointsScale.from_card(model.card),
                                               top=5))
    drawn = texts(svg)
    top = sorted(e["features"], key=lambda f: (-abs(f["contribution"]), f["name"]))[:5]
    for f in top:
        label = feature_label(SPEC, f["name"])
        feature = SPEC.by_name(f["name"])
        group = SPEC.groups[feature.group]
        assert f"{feature.label.zh} · {group.en}" in drawn
        assert any(t.endswith(label.value_text(f["value"])) for t in drawn), f["name"]
        assert f["name"] not in drawn  # the raw name only in the row's tooltip
    assert f"{len(e['features']) - 5} other features" in drawn
    assert "基准值（模型平均）" in drawn


def test_labels_are_the_specs_own_in_chinese_and_english_with_the_group():
    label = feature_label(SPEC, "pf_monthly_base")
    assert (label.zh, label.en) == ("公积金缴存基数", "Provident fund contribution base (¥/month)")
    assert (label.group_zh, label.group_en) == ("住房公积金", "Housing provident fund")
    assert label.detail == SPEC.by_name("pf_monthly_base").description
    assert label.second_line == "公积金缴存基数 · Housing provident fund"
    overdue = feature_label(SPEC, "cr_overdue_now")
    assert overdue.en == "A payment overdue now"
    assert (overdue.value_text(1), overdue.value_text(0), overdue.value_text(None)) == (
        ": yes", ": no", ": missing")
    assert label.value_text(6500.0) == " = 6,500" and label.value_text(0.0781) == " = 0.0781"
    assert feature_label(SPEC, "not_in_spec").en == "not_in_spec"


def test_contributions_are_written_with_their_sign_in_either_units():
    assert [contribution_text(v, "points") for v in (12.34, -0.04, 0.0, None)] == [
        "+12.3", "-0.04", "+0.0", "—"]
    assert contribution_text(-0.4567, "log_odds") == "-0.457"


def test_the_waterfall_in_log_odds_runs_from_the_base_value_to_the_margin(explanation, model):
    e = explanation(3)
    svg = ElementTree.fromstring(waterfall_svg(e, SPEC, units="log_odds",
                                               scale=PointsScale.from_card(model.card)))
    drawn = texts(svg)
    assert f"{e['base_value']:+.3f}" in drawn and f"{e['margin']:+.3f}" in drawn
    assert "log-odds of default (higher is riskier)" in drawn
    assert "margin (this application)" in drawn
    base, *steps, final = bars(svg)
    # Both totals are negative here: their bars end at zero.
    for total in (base, final):
        assert float(total.get("x")) + float(total.get("width")) == pytest.approx(
            zero_x(svg), abs=0.1)
    by_size = sorted(e["features"], key=lambda f: (-abs(f["contribution"]), f["name"]))
    assert steps[0].get("fill") == (RISKIER if by_size[0]["contribution"] > 0 else SAFER)


def test_without_the_deciding_models_scale_the_waterfall_is_in_log_odds(explanation):
    svg = ElementTree.fromstring(waterfall_svg(explanation(1), SPEC))
    assert "log-odds of default (higher is riskier)" in texts(svg)


def test_units_are_points_or_log_odds(explanation):
    assert parse_units(None) == parse_units("") == "points"
    assert parse_units("log_odds") == "log_odds"
    with pytest.raises(ValueError, match="units must be points or log_odds; got 'logit'"):
        parse_units("logit")
    with pytest.raises(ValueError, match="units must be"):
        waterfall_svg(explanation(0), SPEC, units="percent")


def test_every_text_is_escaped(explanation, model):
    e = explanation(0, application_id="a_<b>&\"x\"", model_version="v<1>",
                    unknown_sources=["<script>"])
    raw = waterfall_svg(e, SPEC, scale=PointsScale.from_card(model.card))
    svg = ElementTree.fromstring(raw)
    assert "<script>" not in raw and "<b>" not in raw
    assert "a_<b>&\"x\"" in svg.find(f"{NS}title").text


@pytest.fixture(scope="module")
def card_with_view(model):
    """``card_with_view(**view)``: a copy of the shipped card whose global view is ``view``."""

    def with_view(**view) -> dict:
        card = copy.deepcopy(model.card)
        names = model.feature_names
        card["global_importance"] = {
            "population": "the held-out split", "rows": 20000,
            "features": [{"name": n, "mean_abs_contribution": round(0.9 / (i + 1), 6)}
                         for i, n in enumerate(names)], **view}
        return card

    return with_view


def test_the_global_view_draws_one_bar_per_feature_largest_first_in_points(card_with_view):
    card = card_with_view()
    svg = ElementTree.fromstring(importance_svg(card, SPEC))
    drawn = bars(svg)
    features = card["global_importance"]["features"]
    assert len(drawn) == len(features)
    widths = [float(b.get("width")) for b in drawn]
    assert widths == sorted(widths, reverse=True)
    assert all(float(b.get("x")) == pytest.approx(zero_x(svg), abs=0.1) for b in drawn)
    # Lengths are proportional to the mean contributions.
    assert widths[0] / widths[3] == pytest.approx(features[0]["mean_abs_contribution"]
                                                  / features[3]["mean_abs_contribution"],
                                                  rel=1e-3)
    scale = PointsScale.from_card(card)
    first = features[0]["mean_abs_contribution"] * abs(scale.slope)
    assert f"{first:.1f}" in texts(svg)
    label = feature_label(SPEC, features[0]["name"])
    assert label.en in texts(svg) and label.second_line in texts(svg)
    title = svg.find(f"{NS}title").text
    assert "score points" in title and "the held-out split (20,000 rows)" in title
    assert svg.find(f"{NS}desc") is not None


def test_the_population_is_named_once_with_its_rows(card_with_view):
    named = global_importance(card_with_view(population="the held-out test split (20,000 rows)"))
    assert named is not None and named.over == "the held-out test split (20,000 rows)"
    assert global_importance(card_with_view()).over == "the held-out split (20,000 rows)"


def test_the_global_view_in_log_odds_shows_the_cards_numbers(card_with_view):
    card = card_with_view()
    svg = ElementTree.fromstring(importance_svg(card, SPEC, units="log_odds"))
    assert "0.900" in texts(svg)
    assert "mean absolute contribution, log-odds of default" in texts(svg)
    plain = {k: v for k, v in card.items() if k != "score_scaling"}
    assert "log-odds of default" in ElementTree.fromstring(
        importance_svg(plain, SPEC)).find(f"{NS}title").text


def test_a_card_without_a_global_view_has_none_and_a_broken_one_says_why(card_with_view, model):
    assert global_importance(model.card | {"global_importance": None}) is None
    with pytest.raises(ValueError, match="no global_importance"):
        importance_svg({k: v for k, v in model.card.items() if k != "global_importance"}, SPEC)
    with pytest.raises(ValueError, match="must hold population, rows and features"):
        global_importance(card_with_view(features=[{"name": "x"}]))
    with pytest.raises(ValueError, match="non-negative"):
        global_importance(card_with_view(features=[{"name": "x", "mean_abs_contribution": -1}]))
    with pytest.raises(ValueError, match="must hold population"):
        global_importance({"global_importance": {"features": []}})


def test_a_feature_the_spec_lacks_is_drawn_under_its_name(card_with_view):
    card = card_with_view(features=[{"name": "retired_<feature>", "mean_abs_contribution": 0.2}])
    svg = ElementTree.fromstring(importance_svg(card, SPEC))
    assert "retired_<feature>" in texts(svg)
