"""Counts over time: one stacked bar per period."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from service.web.charts.panels.canvas import (
    LEGEND_BAND,
    TITLE_BAND,
    WIDTH,
    chart,
    finite,
    fit,
    frame,
    label_of,
    legend,
    no_data_svg,
    rectangles,
    width_ems,
)
from service.web.charts.panels.scales import position_names, value_scale

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LEFT, RIGHT, BOTTOM, HEIGHT = 0.7, 0.3, 0.45, 3.0
# At most this many periods are named under the axis, fewer when their names are long.
NAMED = 12
LABEL_EMS = 14


def series_svg(points: list[dict[str, Any]], *, keys: list[tuple[str, str, str]],
               title: str) -> str:
    """Return one bar per period, its counts stacked in the order of ``keys``.

    Parameters
    ----------
    points
        In time order, each ``{"label": "13:00", key: count, ...}``; a missing count draws
        nothing, a period without counts stays as an empty slot.
    keys
        ``(key, label, colour)`` per stacked part, the first at the bottom.
    """
    parts: list[tuple[float, float, float, float]] = []
    colours: list[str] = []
    tops = [0.0] * len(points)
    for key, _, colour in keys:
        for slot, point in enumerate(points):
            count = finite(point.get(key))
            if count is not None and count > 0:
                parts.append((slot - 0.4, tops[slot], slot + 0.4, tops[slot] + count))
                colours.append(colour)
                tops[slot] += count
    if not parts:
        return no_data_svg(title)
    labels = [fit(label_of(point), LABEL_EMS) for point in points]
    # Every step-th period is named: a name's width (9 pt, with a gap) in periods' widths.
    period = (WIDTH - LEFT - RIGHT) / (len(points) + 0.2)
    widest = max(width_ems(label) for label in labels) * 9 / 72 * 1.3
    step = max(math.ceil(len(points) / NAMED), math.ceil(widest / period))

    def draw(figure: Figure) -> None:
        axes = frame(figure, title, left=LEFT, bottom=BOTTOM,
                     top=TITLE_BAND + LEGEND_BAND + 0.12, right=RIGHT)
        legend(figure, [(label, colour) for _, label, colour in keys], left=LEFT)
        rectangles(axes, parts, colours)
        named = range(0, len(points), step)
        position_names(figure, axes, named, [labels[slot] for slot in named])
        axes.set_xlim(-0.6, len(points) - 0.4)
        value_scale(figure, axes, "y", 0.0, max(tops) * 1.05, integer=True)

    return chart(HEIGHT, draw)
