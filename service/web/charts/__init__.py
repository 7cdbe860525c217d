"""Server-rendered SVG: one decision's waterfall of contributions, a model's global view, and
realised default against predicted PD.

The first two are drawn in score points (higher is better: lower risk) or in the model's
log-odds of default (higher is riskier). Colours mean the same in both: red raises the risk,
green lowers it. Every text is escaped where it is drawn.
"""

from __future__ import annotations

from service.web.charts.importance import GlobalImportance, global_importance, importance_svg
from service.web.charts.labels import FeatureLabel, feature_label
from service.web.charts.monitoring import (
    bars_svg,
    compare_svg,
    latency_svg,
    series_svg,
    svg_data_uri,
)
from service.web.charts.outcomes import realised_vs_predicted_svg
from service.web.charts.units import (
    UNITS,
    PointsScale,
    contribution_text,
    decider_scale,
    parse_units,
)
from service.web.charts.waterfall import waterfall_svg

__all__ = ["UNITS", "FeatureLabel", "GlobalImportance", "PointsScale", "bars_svg",
           "compare_svg", "contribution_text", "decider_scale", "feature_label",
           "global_importance", "importance_svg", "latency_svg", "parse_units",
           "realised_vs_predicted_svg", "series_svg", "svg_data_uri", "waterfall_svg"]
