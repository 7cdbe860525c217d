"""One decision's waterfall: from the model's base value to this application's total."""

from __future__ import annotations

from html import escape
from typing import Any

from scoring.online.spec import FeatureSpec
from service.web.charts.drawing import (
    MUTED,
    RISKIER,
    ROW,
    SAFER,
    TOP,
    TOTAL,
    Drawing,
    axis_for,
    svg_open,
    unit_words,
)
from service.web.charts.labels import feature_label
from service.web.charts.units import PointsScale, contribution_text, parse_units, total_text


def waterfall_svg(explanation: dict[str, Any], spec: FeatureSpec, *, units: str = "points",
                  scale: PointsScale | None = None, top: int = 12) -> str:
    """Return an SVG waterfall: the base value, the largest contributions, the rest, the total.

    Parameters
    ----------
    units
        ``"points"`` (the default): score points, from the base value in points to the
        application's score before rounding; this needs ``scale``, the scale of the model that
        decided (:func:`decider_scale`), and without it the chart is drawn in log-odds.
        ``"log_odds"``: from the model's base value to the application's margin.
    top
        How many of the largest contributions get a bar of their own.
    """
    parse_units(units)
    if scale is None:
        units = "log_odds"
    to_units = scale.step if scale is not None and units == "points" else float
    feats = sorted(explanation["features"], key=lambda f: (-abs(f["contribution"]), f["name"]))
    shown, rest = feats[:top], feats[top:]
    # (meaning, its value, second line, second line in Chinese, contribution, tooltip)
    steps: list[tuple[str, str, str, bool, float, str]] = []
    for f in shown:
        label = feature_label(spec, f["name"])
        value = label.value_text(f["value"])
        tip = (f"{f['name']}: {label.en}{value}"
               + (f" ({label.detail})" if label.detail else ""))
        steps.append((label.en, value, label.second_line, bool(label.zh), f["contribution"],
                      tip))
    if rest:
        steps.append((f"{len(rest)} other features", "", f"其余 {len(rest)} 项特征", True,
                      sum(f["contribution"] for f in rest), "the smaller contributions together"))
    if units == "points" and scale is not None:
        base, final = scale.total(explanation["base_value"]), scale.total(explanation["margin"])
        final_words = ("score before rounding (this application)", "本申请评分（取整前）")
        final_text = f"{final:.2f} → {explanation['score']}"
    else:
        base, final = explanation["base_value"], explanation["margin"]
        final_words = ("margin (this application)", "本申请对数几率")
        final_text = total_text(final, units)
    running, ends = base, [base, final]
    for *_, c, _ in steps:
        running += to_units(c)
        ends.append(running)
    lo, hi, ticks = axis_for(ends)
    drawing = Drawing(lo, hi)
    height = TOP + (len(steps) + 2) * ROW + 76
    title = (f"Application {explanation['application_id']}: {explanation['outcome']}, "
             f"score {explanation['score']} (grade {explanation['grade']}), "
             f"PD {explanation['pd'] * 100:.2f}%")
    unknown = explanation.get("unknown_sources") or []
    # The drawn heading stays short; the unknown sources get a line of their own below it.
    full_title = (f"{title}; unknown (did not answer): {', '.join(unknown)}" if unknown
                  else title)
    caption, colours = unit_words(units)
    out = drawing.out
    out.extend(svg_open(height, ("t", "d"), full_title, (
        f"Each bar is one feature's TreeSHAP contribution, in {caption}, from the model's "
        f"base value to this application's {final_words[0].split()[0]}. The base and the total "
        f"are drawn from zero. {colours}")))
    out.append(f'<text x="16" y="24" font-size="15" font-weight="bold">{escape(title)}</text>')
    out.append(f'<text x="16" y="44" fill="#444">Model {escape(explanation["model_version"])}, '
               f'policy {escape(explanation["policy_version"])}. {escape(colours)}</text>')
    if unknown:
        partial = explanation.get("partial_features") or []
        note = (f"Unknown (did not answer): {', '.join(unknown)}. "
                f"{'Its' if len(unknown) == 1 else 'Their'} features are left out"
                + (f"; {len(partial)} computed from the other sources only." if partial
                   else "."))
        out.append(f'<text x="16" y="62" fill="#8a5a00">{escape(note)}</text>')
    y = TOP
    drawing.row(y, "base value (the model's average)", "基准值（模型平均）", zh=True)
    drawing.bar(y, 0.0, base, TOTAL, total_text(base, units))
    y += ROW
    running = base
    for meaning, value, second, zh, c, tip in steps:
        shift = to_units(c)
        # Red raises the risk in either units: a positive log-odds, a negative points step.
        colour = RISKIER if c > 0 else SAFER if c < 0 else MUTED
        out.append(f'<g><title>{escape(tip)}</title>')
        drawing.row(y, meaning, second, zh, keep=value)
        drawing.bar(y, running, running + shift, colour, contribution_text(shift, units))
        out.append("</g>")
        out.append(f'<line x1="{drawing.x(running + shift):.1f}" y1="{y + ROW - 8}" '
                   f'x2="{drawing.x(running + shift):.1f}" y2="{y + ROW + 8}" stroke="#888" '
                   'stroke-dasharray="2,2"/>')
        running += shift
        y += ROW
    drawing.row(y, *final_words, zh=True)
    drawing.bar(y, 0.0, final, TOTAL, final_text)
    drawing.axis(y + ROW + 12, ticks, caption, TOP)
    out.append("</svg>")
    return "\n".join(out)
