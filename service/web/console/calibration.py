"""Server-rendered SVG of a model's calibration: predicted PD against observed default rate."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

WIDTH = 560
HEIGHT = 460
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 48, 64
CEILINGS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
TICKS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


def _label(p: float) -> str:
    return f"{p * 100:g}%"


def _interval(rate: float, count: int) -> tuple[float, float]:
    """The 95% normal-approximation interval of an observed rate."""
    if count <= 0:
        return rate, rate
    half = 1.96 * math.sqrt(max(rate * (1 - rate), 0.0) / count)
    return max(rate - half, 0.0), min(rate + half, 1.0)


def calibration_svg(table: Sequence[dict[str, Any]], *, version: str) -> str:
    """Return a reliability diagram of the card's calibration table (one point per bin).

    Both axes are on a square-root scale so that the many low-PD deciles stay apart from the
    few high ones; the diagonal is perfect calibration.
    """
    rows = [r for r in table if r.get("count")]
    top = max([r["pd_mean"] for r in rows] + [_interval(r["default_rate"], r["count"])[1]
                                               for r in rows] + [0.01])
    ceiling = next((c for c in CEILINGS if c >= top), 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(p: float) -> float:
        return LEFT + math.sqrt(p / ceiling) * plot_w

    def y(p: float) -> float:
        return TOP + plot_h - math.sqrt(p / ceiling) * plot_h

    title = f"Calibration of model {version}: predicted PD against observed default rate"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="ct cd" '
        'font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="ct">{escape(title)}</title>',
        '<desc id="cd">One point per bin of the held-out set: the mean predicted probability '
        'of default across, the share that defaulted up, with a 95% interval. Points on the '
        'dashed diagonal are perfectly calibrated.</desc>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="24" font-size="14" font-weight="bold">'
        f'Predicted vs observed default rate, by decile</text>',
    ]
    # Below 1% the square-root scale leaves no room for a label when the range is wide.
    ticks = [t for t in TICKS if t <= ceiling and (t >= 0.01 or t == 0 or ceiling <= 0.05)]
    for tick in ticks:
        out.append(f'<line x1="{x(tick):.1f}" y1="{TOP}" x2="{x(tick):.1f}" '
                   f'y2="{TOP + plot_h}" stroke="#e3e6ea"/>')
        out.append(f'<line x1="{LEFT}" y1="{y(tick):.1f}" x2="{LEFT + plot_w}" '
                   f'y2="{y(tick):.1f}" stroke="#e3e6ea"/>')
        out.append(f'<text x="{x(tick):.1f}" y="{TOP + plot_h + 18}" '
                   f'text-anchor="middle">{_label(tick)}</text>')
        out.append(f'<text x="{LEFT - 8}" y="{y(tick) + 4:.1f}" '
                   f'text-anchor="end">{_label(tick)}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
               'stroke="#333"/>')
    out.append(f'<line x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(ceiling):.1f}" '
               f'y2="{y(ceiling):.1f}" stroke="#777" stroke-dasharray="5,4"/>')
    path = " ".join(f"{'M' if i == 0 else 'L'}{x(r['pd_mean']):.1f},{y(r['default_rate']):.1f}"
                    for i, r in enumerate(rows))
    if path:
        out.append(f'<path d="{path}" fill="none" stroke="#1f5f99" stroke-width="1.5"/>')
    for r in rows:
        lo, hi = _interval(r["default_rate"], r["count"])
        cx, cy = x(r["pd_mean"]), y(r["default_rate"])
        tip = (f"Bin {r['bin']}: predicted {r['pd_mean'] * 100:.2f}%, observed "
               f"{r['default_rate'] * 100:.2f}% of {r['count']:,}")
        out.append(f'<g><title>{escape(tip)}</title>')
        out.append(f'<line x1="{cx:.1f}" y1="{y(lo):.1f}" x2="{cx:.1f}" y2="{y(hi):.1f}" '
                   'stroke="#1f5f99"/>')
        out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4.5" fill="#1f5f99"/>')
        out.append(f'<text x="{cx + 7:.1f}" y="{cy - 6:.1f}" fill="#1f5f99" '
                   f'font-size="11">{int(r["bin"])}</text></g>')
    out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 22}" text-anchor="middle" '
               'fill="#444">predicted probability of default (mean of the bin)</text>')
    out.append(f'<text transform="translate(18 {TOP + plot_h / 2:.1f}) rotate(-90)" '
               'text-anchor="middle" fill="#444">observed default rate</text>')
    out.append("</svg>")
    return "\n".join(out)
