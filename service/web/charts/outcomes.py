"""Server-rendered SVG of realised default against predicted PD: two bars per grade."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from service.web.charts.drawing import FONT, MUTED, RISKIER, axis_for

WIDTH = 640
HEIGHT = 340
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 56, 64
PREDICTED = "#1f5f99"


def _percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def realised_vs_predicted_svg(by_grade: Sequence[dict[str, Any]]) -> str:
    """Return a bar chart of each grade's mean predicted PD beside its realised default rate.

    ``by_grade`` holds the calibration's rows by grade (``grade``, ``loans``, ``mean_pd``,
    ``default_rate``); a grade without drawn loans has no bars.
    """
    rows = [r for r in by_grade if r.get("loans")]
    values = [v for r in rows for v in (r.get("mean_pd"), r.get("default_rate"))
              if v is not None]
    _, top, ticks = axis_for([max(values, default=0.0) or 0.01])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(rows), 1)
    bar = min(slot * 0.32, 48.0)

    def y(v: float) -> float:
        return TOP + plot_h - v / top * plot_h

    title = "Realised default rate against predicted PD, by grade"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="ot od" '
        f'font-family="{FONT}" font-size="12">',
        f'<title id="ot">{escape(title)}</title>',
        '<desc id="od">For each grade, the mean probability of default its decisions '
        'predicted (left bar) beside the share of its drawn loans that defaulted (right '
        'bar).</desc>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{LEFT}" y="32" width="12" height="12" fill="{PREDICTED}"/>',
        f'<text x="{LEFT + 18}" y="42">predicted PD (mean)</text>',
        f'<rect x="{LEFT + 170}" y="32" width="12" height="12" fill="{RISKIER}"/>',
        f'<text x="{LEFT + 188}" y="42">realised default rate</text>',
    ]
    for tick in ticks:
        out.append(f'<line x1="{LEFT}" y1="{y(tick):.1f}" x2="{LEFT + plot_w}" '
                   f'y2="{y(tick):.1f}" stroke="#e3e6ea"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y(tick) + 4:.1f}" text-anchor="end">'
                   f'{tick * 100:g}%</text>')
    out.append(f'<line x1="{LEFT}" y1="{y(0):.1f}" x2="{LEFT + plot_w}" y2="{y(0):.1f}" '
               'stroke="#333"/>')
    for index, r in enumerate(rows):
        centre = LEFT + slot * (index + 0.5)
        grade = escape(str(r["grade"]))
        for offset, value, colour, what in ((-bar, r.get("mean_pd"), PREDICTED, "predicted"),
                                            (0.0, r.get("default_rate"), RISKIER,
                                             "realised")):
            if value is None:
                continue
            x0 = centre + offset
            out.append(f'<g><title>Grade {grade}, {what}: {_percent(value)}</title>')
            out.append(f'<rect x="{x0:.1f}" y="{y(value):.1f}" width="{bar:.1f}" '
                       f'height="{max(y(0) - y(value), 0.5):.1f}" fill="{colour}"/>')
            out.append(f'<text x="{x0 + bar / 2:.1f}" y="{y(value) - 4:.1f}" '
                       f'text-anchor="middle" font-size="11" fill="{colour}">'
                       f'{_percent(value)}</text></g>')
        out.append(f'<text x="{centre:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle" '
                   f'font-weight="bold">{grade}</text>')
        out.append(f'<text x="{centre:.1f}" y="{TOP + plot_h + 33}" text-anchor="middle" '
                   f'font-size="11" fill="{MUTED}">{int(r["loans"]):,} loans</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" '
               'fill="#444">grade</text>')
    out.append("</svg>")
    return "\n".join(out)
