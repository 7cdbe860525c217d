"""A model card's global view: each feature's mean absolute contribution over a held-out set."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from scoring.online.spec import FeatureSpec
from service.web.charts.drawing import ROW, TOP, Drawing, axis_for, svg_open
from service.web.charts.labels import feature_label
from service.web.charts.units import PointsScale, parse_units


@dataclass(frozen=True, slots=True)
class GlobalImportance:
    """A card's global view: each feature's mean absolute contribution (log-odds) over a set."""

    population: str
    rows: int
    features: tuple[tuple[str, float], ...]

    @property
    def over(self) -> str:
        """The population in words, with its number of rows unless the words give it."""
        count = f"{self.rows:,}"
        return self.population if count in self.population else f"{self.population} ({count} rows)"


def global_importance(card: Mapping[str, Any]) -> GlobalImportance | None:
    """Return a card's global view; None when it has none, ValueError when it is malformed."""
    raw = card.get("global_importance")
    if raw is None:
        return None
    try:
        features = tuple((str(f["name"]), float(f["mean_abs_contribution"]))
                         for f in raw["features"])
        found = GlobalImportance(str(raw["population"]), int(raw["rows"]), features)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError("global_importance must hold population, rows and features, each "
                         f"with a name and a mean_abs_contribution; got {exc!r}") from None
    if not features or any(not (v >= 0 and math.isfinite(v)) for _, v in features):
        raise ValueError("global_importance must list features with finite, non-negative "
                         "mean absolute contributions")
    return found


def importance_svg(card: Mapping[str, Any], spec: FeatureSpec, *,
                   units: str = "points") -> str:
    """Return a horizontal bar chart of a card's global view, largest first.

    In points each bar is the mean absolute contribution times the card's |points per
    log-odds| (exact: a contribution's points are proportional to it). A card without a
    calibration and scaling is drawn in log-odds; one without a global view is a ValueError.
    """
    parse_units(units)
    view = global_importance(card)
    if view is None:
        raise ValueError("the card has no global_importance")
    scale = PointsScale.from_card(card)
    if scale is None:
        units = "log_odds"
    factor = abs(scale.slope) if scale is not None and units == "points" else 1.0
    rows = sorted(((name, v * factor) for name, v in view.features), key=lambda r: -r[1])
    lo, hi, ticks = axis_for(v for _, v in rows)
    drawing = Drawing(lo, hi)
    height = TOP + len(rows) * ROW + 64
    unit_name = "score points" if units == "points" else "log-odds of default"
    title = (f"Model {card.get('version', '')}: mean absolute contribution per feature, in "
             f"{unit_name}, over {view.over}")
    out = drawing.out
    out.extend(svg_open(height, ("gt", "gd"), title, (
        f"Each bar is how far one feature moves the {'score' if units == 'points' else 'margin'} "
        f"on average, in either direction: the mean of the absolute exact TreeSHAP "
        f"contribution over {view.population}. Largest first.")))
    out.append(f'<text x="16" y="24" font-size="15" font-weight="bold">What moves the '
               f'{"score" if units == "points" else "margin"} most, on average</text>')
    out.append(f'<text x="16" y="44" fill="#444">'
               f'{escape(f"Over {view.over}, in {unit_name}.")}</text>')
    y = TOP - 12
    for name, value in rows:
        label = feature_label(spec, name)
        out.append(f'<g><title>{escape(f"{name}: {label.en}")}</title>')
        drawing.row(y, label.en, label.second_line, bool(label.zh))
        drawing.bar(y, 0.0, value, "#1f5f99",
                    f"{value:.1f}" if units == "points" else f"{value:.3f}")
        out.append("</g>")
        y += ROW
    drawing.axis(y + 12, ticks, f"mean absolute contribution, {unit_name}", TOP - 12)
    out.append("</svg>")
    return "\n".join(out)
