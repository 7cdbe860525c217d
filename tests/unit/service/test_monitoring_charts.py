"""The monitoring dashboard's charts: SVG images whose texts stay text, every label and value
written, thresholds named, the same picture for the same numbers, and no data said plainly."""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree

import pytest

from service.web.charts import bars_svg, compare_svg, latency_svg, series_svg, svg_data_uri
from service.web.charts.drawing import RISKIER, SAFER, TOTAL
from service.web.charts.monitoring import NO_DATA

NS = "{http://www.w3.org/2000/svg}"
KEYS = [("approved", "Approved", SAFER), ("declined", "Declined", RISKIER),
        ("deferred", "Deferred", TOTAL)]
POINTS = [{"label": f"{hour:02d}:00", "approved": hour % 5 + 1, "declined": hour % 3,
           "deferred": None if hour % 4 else 1} for hour in range(24)]
BINS = [{"label": "≤ 520", "observed": 0.12, "expected": 0.10},
        {"label": "520–560", "observed": 0.30, "expected": 0.35},
        {"label": "> 560", "observed": 0.58, "expected": 0.55}]
ROWS = [{"label": "CR02 High card utilisation", "value": 0.31, "level": "act"},
        {"label": "PF03 Months of unbroken provident fund contributions", "value": 0.14,
         "level": "watch"},
        {"label": "有公积金账户", "value": 0.02, "level": "stable"},
        {"label": "TX01 Salary reported for tax", "value": 0.05, "level": None}]
LATENCY = [{"label": "provident_fund", "p50": 12.0, "p99": 80.0},
           {"label": "income_tax", "p50": 30.5, "p99": 450.0}]
PSI = [(0.1, "watch"), (0.25, "act")]


def parsed(svg: str) -> ElementTree.Element:
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def texts(svg: str) -> list[str]:
    return ["".join(t.itertext()) for t in parsed(svg).iter(f"{NS}text")]


CHARTS = {
    "series": lambda: series_svg(POINTS, keys=KEYS, title="Decisions per hour"),
    "compare": lambda: compare_svg(BINS, title="Score against training"),
    "bars": lambda: bars_svg(ROWS, title="PSI by feature", thresholds=PSI),
    "latency": lambda: latency_svg(LATENCY, title="Source latency"),
}


@pytest.mark.parametrize("name", CHARTS)
def test_a_chart_is_a_well_formed_svg_image_whose_texts_stay_text(name):
    svg = CHARTS[name]()
    written = texts(svg)
    assert "<script" not in svg.lower()
    # The browser draws the text with the console's fonts, none of it drawn as glyph paths,
    # and is not sent to the font matplotlib measured other scripts with.
    assert "Last Resort" not in svg
    assert svg.count("font-family: system-ui") == len(written)
    assert svg.count("<text") == len(written) >= 4


def test_the_series_stacks_every_key_and_names_the_periods():
    svg = series_svg(POINTS, keys=KEYS, title="Decisions per hour")
    written = texts(svg)
    assert {"Decisions per hour", "Approved", "Declined", "Deferred", "00:00"} <= set(written)
    for _, _, colour in KEYS:
        assert f"fill: {colour}" in svg


def test_many_periods_name_at_most_twelve_of_them():
    points = [{"label": f"p{i:03d}", "approved": 1} for i in range(168)]
    named = [t for t in texts(series_svg(points, keys=KEYS, title="A week by hour"))
             if t.startswith("p")]
    assert 6 <= len(named) <= 12
    assert named[0] == "p000"


def test_the_comparison_names_each_bin_and_both_distributions_in_percent():
    written = texts(compare_svg(BINS, title="Score", observed_label="Live $",
                                expected_label="Training <2024>"))
    assert {"≤ 520", "520–560", "> 560", "Live $", "Training <2024>"} <= set(written)
    assert any(t.endswith("%") for t in written)


def test_bars_write_each_label_and_value_and_name_the_thresholds():
    svg = bars_svg(ROWS, title="PSI by feature", thresholds=PSI)
    written = texts(svg)
    assert {"CR02 High card utilisation", "有公积金账户", "0.31", "0.14", "0.02", "0.05",
            "watch", "act"} <= set(written)
    assert any(t.startswith("PF03 Months of unbroken") for t in written)
    # act red, watch amber; the level-less row is grey.
    for colour in (RISKIER, TOTAL):
        assert f"fill: {colour}" in svg
    assert svg.count("stroke-dasharray") >= 2


def test_bars_write_units_and_percentages():
    rows = [{"label": "Income tax", "value": 0.873}, {"label": "Credit bureau", "value": 1.0}]
    written = texts(bars_svg(rows, title="Availability", percent=True,
                             thresholds=[(0.8, "4/5 rule")]))
    assert {"87.3%", "100.0%", "4/5 rule"} <= set(written)
    counted = texts(bars_svg([{"label": "Grade A", "value": 1250}], title="By grade",
                             unit="decisions"))
    assert "1,250 decisions" in counted


def test_a_long_label_is_cut_with_an_ellipsis():
    label = "Provident fund and social security name the same employer " * 3
    written = texts(bars_svg([{"label": label, "value": 1.0}], title="PSI"))
    cut = [t for t in written if t.startswith("Provident fund")]
    assert len(cut) == 1 and cut[0].endswith("…") and len(cut[0]) < 50


def test_the_height_grows_with_the_rows():
    def height(rows: int) -> float:
        svg = bars_svg([{"label": f"r{i}", "value": i + 1} for i in range(rows)], title="t")
        return float(parsed(svg).get("height", "").removesuffix("pt"))

    assert height(30) > 2 * height(3)


def test_latency_writes_both_percentiles_and_turns_logarithmic_when_spread_wide():
    written = texts(latency_svg(LATENCY, title="Source latency"))
    assert {"provident_fund", "income_tax", "12 ms", "80 ms", "30.5 ms", "450 ms", "p99"} \
        <= set(written)
    assert {"10", "100"} <= set(written)
    narrow = texts(latency_svg([{"label": "score", "p50": 20.0, "p99": 40.0}], title="t"))
    assert "100" not in narrow and "0" in narrow


def test_dollar_and_angle_brackets_are_plain_text_escaped_in_the_svg():
    label = "Income < ¥5,000 & $x$ > 0"
    for svg in (bars_svg([{"label": label, "value": 1}], title=f"Title {label}"),
                latency_svg([{"label": label, "p50": 1, "p99": 2}], title="t"),
                compare_svg([{"label": "$5", "observed": 0.5, "expected": 0.5}], title=label),
                series_svg([{"label": "<now>", "approved": 1}], keys=KEYS, title=label)):
        assert "Income &lt; ¥5,000 &amp; $x$ &gt; 0" in svg
        assert label in texts(svg) or f"Title {label}" in texts(svg)


EMPTY = {
    "series": lambda: series_svg([], keys=KEYS, title="Decisions"),
    "series-none": lambda: series_svg([{"label": "13:00", "approved": None, "declined": 0}],
                                      keys=KEYS, title="Decisions"),
    "compare": lambda: compare_svg([], title="Score"),
    "compare-none": lambda: compare_svg([{"label": "≤ 520", "observed": None,
                                          "expected": None}], title="Score"),
    "bars": lambda: bars_svg([], title="PSI", thresholds=PSI),
    "bars-none": lambda: bars_svg([{"label": "CR02", "value": None},
                                   {"label": "CR03", "value": float("nan")}], title="PSI"),
    "latency": lambda: latency_svg([], title="Latency"),
    "latency-none": lambda: latency_svg([{"label": "score", "p50": None, "p99": None}],
                                        title="Latency"),
}


@pytest.mark.parametrize("name", EMPTY)
def test_no_data_is_said_in_a_small_chart(name):
    svg = EMPTY[name]()
    assert NO_DATA in texts(svg)
    assert float(parsed(svg).get("height", "").removesuffix("pt")) < 100


def test_missing_values_are_left_out_and_the_rest_drawn():
    written = texts(bars_svg([{"label": "kept", "value": 3}, {"label": "gone", "value": None}],
                             title="t"))
    assert "kept" in written and "gone" not in written
    written = texts(latency_svg([{"label": "half", "p50": None, "p99": 80.0}], title="t"))
    assert "80 ms" in written and "half" in written


@pytest.mark.parametrize("name", CHARTS)
def test_the_same_numbers_draw_the_same_svg(name):
    assert CHARTS[name]() == CHARTS[name]()


def test_charts_drawn_on_several_threads_are_those_drawn_on_one():
    alone = {name: draw() for name, draw in CHARTS.items()}
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda name: (name, CHARTS[name]()), list(CHARTS) * 3))
    assert all(svg == alone[name] for name, svg in together)


def test_the_data_uri_carries_the_svg():
    svg = bars_svg(ROWS, title="PSI by feature")
    uri = svg_data_uri(svg)
    prefix = "data:image/svg+xml;base64,"
    assert uri.startswith(prefix)
    assert base64.b64decode(uri.removeprefix(prefix), validate=True).decode("utf-8") == svg


def test_matplotlib_loads_with_the_first_chart_and_logs_nothing():
    # A fresh interpreter: matplotlib's font look-ups are cached per process, and its
    # "font family not found" or missing-glyph complaints come only on the first.
    script = textwrap.dedent("""
        import logging, sys
        logging.basicConfig(level=logging.WARNING)
        import service.web.charts as charts
        assert "matplotlib" not in sys.modules, "imported with service.web.charts"
        rows = [{"label": "有公积金账户 ¥", "value": 1.0, "level": "act"}]
        charts.bars_svg(rows, title="中文标题", thresholds=[(0.5, "观察")])
        charts.latency_svg([{"label": "公积金", "p50": 1.0, "p99": 900.0}], title="延迟")
        charts.compare_svg([{"label": "≤ 520", "observed": 0.1, "expected": 0.2}], title="分")
        charts.series_svg([{"label": "周一", "a": 1}], keys=[("a", "批准", "#1e8449")],
                          title="决定")
    """)
    done = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
