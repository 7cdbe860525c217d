"""Server-rendered SVG: the waterfall of contributions from the base value to the final score."""

from __future__ import annotations

from html import escape
from typing import Any

from scoring.spec import FeatureSpec

WIDTH = 860
ROW = 26
LEFT = 330
RIGHT = 110
TOP = 78


def _fmt(value: float | None) -> str:
    if value is None:
        return "missing"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.3g}"


def waterfall_svg(explanation: dict[str, Any], spec: FeatureSpec, *, top: int = 12) -> str:
    """Return an SVG waterfall: base value, the largest contributions, the rest, the margin."""
    feats = sorted(explanation["features"], key=lambda f: (-abs(f["contribution"]), f["name"]))
    shown, rest = feats[:top], feats[top:]
    steps: list[tuple[str, float, str]] = []
    for f in shown:
        desc = spec.by_name(f["name"]).description
        steps.append((f"{f['name']} = {_fmt(f['value'])}", f["contribution"], desc))
    if rest:
        steps.append((f"{len(rest)} other features", sum(f["contribution"] for f in rest),
                      "the smaller contributions together"))
    base, margin = explanation["base_value"], explanation["margin"]
    running, points = base, [base]
    for _, c, _ in steps:
        running += c
        points.append(running)
    lo, hi = min([*points, margin]), max([*points, margin])
    pad = (hi - lo) * 0.08 or 0.5
    lo, hi = lo - pad, hi + pad
    plot_w = WIDTH - LEFT - RIGHT

    def x(v: float) -> float:
        return LEFT + (v - lo) / (hi - lo) * plot_w

    n_rows = len(steps) + 2
    height = TOP + n_rows * ROW + 70
    title = (f"Application {explanation['application_id']}: {explanation['outcome']}, "
             f"score {explanation['score']} (grade {explanation['grade']}), "
             f"PD {explanation['pd'] * 100:.2f}%")
    unknown = explanation.get("unknown_sources") or []
    # The drawn heading stays short; the unknown sources get a line of their own below it.
    full_title = (f"{title}; unknown (did not answer): {', '.join(unknown)}" if unknown
                  else title)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="t d" '
        'font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="t">{escape(full_title)}</title>',
        '<desc id="d">Each bar is one feature\'s TreeSHAP contribution to the log-odds of '
        'default, from the model\'s base value to this application\'s margin. Red raises the '
        'risk, green lowers it.</desc>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="16" y="24" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="16" y="44" fill="#444">Model {escape(explanation["model_version"])}, '
        f'policy {escape(explanation["policy_version"])}. Log-odds of default: red raises the '
        'risk, green lowers it.</text>',
    ]
    if unknown:
        partial = explanation.get("partial_features") or []
        note = (f"Unknown (did not answer): {', '.join(unknown)}. "
                f"{'Its' if len(unknown) == 1 else 'Their'} features are left out"
                + (f"; {len(partial)} computed from the other sources only." if partial
                   else "."))
        out.append(f'<text x="16" y="62" fill="#8a5a00">{escape(note)}</text>')
    y = TOP

    def label(text: str, y0: float) -> None:
        out.append(f'<text x="{LEFT - 8}" y="{y0 + 13}" text-anchor="end">{escape(text)}</text>')

    def total_bar(name: str, value: float, y0: float) -> None:
        # Totals are drawn from the left edge of the plot, so their lengths compare.
        label(name, y0)
        x0, x1 = x(lo), x(value)
        out.append(f'<rect x="{x0:.1f}" y="{y0 + 3}" width="{max(x1 - x0, 1):.1f}" '
                   f'height="{ROW - 8}" fill="#9aa5b1"/>')
        out.append(f'<text x="{x1 + 6:.1f}" y="{y0 + 15}">{value:+.3f}</text>')

    total_bar("base value (average applicant)", base, y)
    y += ROW
    running = base
    for text, c, desc in steps:
        start, end = running, running + c
        x0, x1 = sorted((x(start), x(end)))
        colour = "#c0392b" if c > 0 else "#1e8449"
        out.append(f'<g><title>{escape(desc)}</title>')
        label(text, y)
        out.append(f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" '
                   f'height="{ROW - 8}" fill="{colour}"/>')
        out.append(f'<text x="{x1 + 6:.1f}" y="{y + 15}" fill="{colour}">{c:+.3f}</text></g>')
        out.append(f'<line x1="{x(end):.1f}" y1="{y + ROW - 5}" x2="{x(end):.1f}" '
                   f'y2="{y + ROW + 3}" stroke="#888" stroke-dasharray="2,2"/>')
        running = end
        y += ROW
    total_bar("margin (this application)", margin, y)
    y += ROW + 16
    out.append(f'<line x1="{LEFT}" y1="{y}" x2="{LEFT + plot_w}" y2="{y}" stroke="#333"/>')
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        out.append(f'<line x1="{x(v):.1f}" y1="{y}" x2="{x(v):.1f}" y2="{y + 5}" '
                   'stroke="#333"/>')
        out.append(f'<text x="{x(v):.1f}" y="{y + 18}" text-anchor="middle">{v:.2f}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{y + 36}" text-anchor="middle" '
               'fill="#444">log-odds of default (higher is riskier)</text>')
    out.append("</svg>")
    return "\n".join(out)
