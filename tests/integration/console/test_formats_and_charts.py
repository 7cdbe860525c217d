"""How the console writes numbers and times, and draws a model's calibration."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from service.web.console.calibration import calibration_svg
from service.web.formatting import money, ms, number, percent, short_hash, signed, when

NS = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(("value", "written"), [
    (None, "missing"), (float("nan"), "missing"), (True, "yes"), (False, "no"), (0, "0"),
    (12.0, "12"), (3981.94, "3,981.9"), (0.628, "0.628"), (1.0001, "1"), (0.00012, "0.00012"),
    (-0.5, "-0.5"), ("text", "text"),
])
def test_numbers(value, written):
    assert number(value) == written


def test_money_rates_contributions_times_and_hashes():
    assert money(12000) == "¥12,000" and money(None) == "—"
    assert percent(0.04231) == "4.23%" and percent(None) == "—"
    assert signed(0.4123) == "+0.412" and signed(-0.0004) == "-0.000" and signed(None) == "—"
    assert when("2026-11-22T21:23:19.123456Z") == "2026-11-22 21:23:19 UTC"
    assert when(None) == "—" and when("yesterday") == "yesterday"
    assert ms(1234.56) == "1,234.6 ms" and ms(None) == "—"
    assert short_hash("ab" * 32) == "abababababab…" and short_hash(None) == "—"


def _bins(rates):
    return [{"bin": i + 1, "count": 1000, "pd_min": p * 0.8, "pd_max": p * 1.2,
             "pd_mean": p, "default_rate": observed} for i, (p, observed) in enumerate(rates)]


def test_the_calibration_chart_draws_one_point_per_bin_on_the_diagonals_scale():
    svg = ElementTree.fromstring(calibration_svg(
        _bins([(0.01, 0.012), (0.03, 0.025), (0.2, 0.21)]), version="v<2>"))
    assert "v<2>" in svg.find(f"{NS}title").text
    assert len(svg.findall(f".//{NS}circle")) == 3
    labels = [t.text for t in svg.iter(f"{NS}text")]
    assert "30%" in labels and "0.5%" not in labels  # no crowded labels on a wide range
    narrow = ElementTree.fromstring(calibration_svg(_bins([(0.004, 0.005), (0.01, 0.009)]),
                                                    version="v1"))
    assert "0.5%" in [t.text for t in narrow.iter(f"{NS}text")]


def test_an_empty_bin_is_left_out():
    table = [*_bins([(0.02, 0.02)]), {"bin": 2, "count": 0, "pd_min": 0.5, "pd_max": 0.6,
                                      "pd_mean": 0.55, "default_rate": 0.0}]
    svg = ElementTree.fromstring(calibration_svg(table, version="v1"))
    assert len(svg.findall(f".//{NS}circle")) == 1
