"""Horizontal bars, one row per item: a measure judged against thresholds, and latency."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from service.web.charts.panels.canvas import (
    ACCENT,
    MUTED,
    PALE,
    RISKIER,
    TITLE_BAND,
    TOTAL,
    WATCH,
    amount,
    chart,
    finite,
    fit,
    frame,
    label_of,
    legend,
    no_data_svg,
    rectangles,
)
from service.web.charts.panels.scales import value_scale

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LEVEL_COLOURS = {"act": RISKIER, "watch": WATCH, "stable": ACCENT}
LEFT, RIGHT, BOTTOM = 3.0, 0.75, 0.45
LABEL_EMS = (LEFT - 0.15) * 72 / 9  # what fits in the left margin at 9 pt
# The latency axis turns logarithmic when the slowest bar is this many times the fastest.
LOG_SPREAD = 30.0


def _height(rows: int, per_row: float, top: float) -> float:
    return top + BOTTOM + max(rows, 2) * per_row


def _rows(axes: Axes, labels: Sequence[str]) -> None:
    """Name the rows down the left, the first at the top (texts, not ticks: see scales)."""
    from matplotlib.ticker import NullLocator

    axes.set_ylim(len(labels) - 0.5, -0.5)
    axes.yaxis.set_major_locator(NullLocator())
    beside = axes.get_yaxis_transform()
    for row, label in enumerate(labels):
        axes.text(-0.012, row, fit(label, LABEL_EMS), transform=beside, ha="right",
                  va="center")


def _ends(axes: Axes, figure: Figure, ends: Sequence[tuple[float, float, str]],
          size: float) -> None:
    """Write each value just past the end of its bar: ``(value, row, text)``."""
    from matplotlib.transforms import offset_copy

    for sign in (1, -1):
        past = offset_copy(axes.transData, fig=figure, x=3 * sign, units="points")
        for value, row, text in ends:
            if (value >= 0) == (sign > 0):
                axes.text(value, row, text, transform=past, va="center", fontsize=size,
                          color=MUTED, ha="left" if sign > 0 else "right")


def bars_svg(rows: list[dict[str, Any]], *, title: str, unit: str = "",
             thresholds: Sequence[tuple[float, str]] = (), percent: bool = False) -> str:
    """Return horizontal bars, one per row, coloured by the row's level, with thresholds.

    Parameters
    ----------
    rows
        ``{"label", "value", "level"}`` each; ``level`` is ``"act"`` (red), ``"watch"``
        (amber), ``"stable"`` (blue) or ``None`` (grey). A row without a value is left out.
    unit
        Written after each value and under the axis (``"ms"``, ``"decisions"``).
    thresholds
        ``(value, label)`` pairs, drawn as dashed lines across the rows and named above them.
    percent
        The values are shares, written as percentages.
    """
    drawn = [(r, value) for r in rows if (value := finite(r.get("value"))) is not None]
    if not drawn:
        return no_data_svg(title)
    values = [value for _, value in drawn]
    marks = [(at, str(name)) for value, name in thresholds
             if (at := finite(value)) is not None]
    top = TITLE_BAND + (0.26 if marks else 0.1)
    reach = [*values, *(at for at, _ in marks), 0.0]
    low, high = min(reach), max(reach)
    span = high - low or 1.0

    def draw(figure: Figure) -> None:
        axes = frame(figure, title, left=LEFT, bottom=BOTTOM, top=top, right=RIGHT)
        rectangles(axes, [(0.0, row - 0.32, value, row + 0.32)
                          for row, value in enumerate(values)],
                   [LEVEL_COLOURS.get(r.get("level") or "", TOTAL) for r, _ in drawn])
        _rows(axes, [label_of(r) for r, _ in drawn])
        _ends(axes, figure, [(value, row, amount(value, unit, percent))
                             for row, value in enumerate(values)], 8)
        value_scale(figure, axes, "x", low - span * 0.02 if low < 0 else 0.0,
                    high + span * 0.03, percent=percent, caption=unit)
        for at, name in marks:
            axes.axvline(at, color=MUTED, linestyle=(0, (4, 3)), linewidth=0.9)
            axes.text(at, 1.0, name, transform=axes.get_xaxis_transform(), ha="center",
                      va="bottom", fontsize=8, color=MUTED)

    return chart(_height(len(drawn), 0.26, top), draw)


def latency_svg(rows: list[dict[str, Any]], *, title: str) -> str:
    """Return each row's median and 99th-percentile latency in ms, as paired bars.

    The axis is logarithmic when the spread is wide. A missing percentile is left out; a row
    with neither is left out.
    """
    drawn = [r for r in rows
             if finite(r.get("p50")) is not None or finite(r.get("p99")) is not None]
    if not drawn:
        return no_data_svg(title)
    top = TITLE_BAND + 0.34
    bars = [(row + offset, value, colour)
            for row, r in enumerate(drawn)
            for key, colour, offset in (("p50", PALE, -0.19), ("p99", ACCENT, 0.19))
            if (value := finite(r.get(key))) is not None]
    values = [value for _, value, _ in bars]
    logarithmic = min(values) > 0 and max(values) >= LOG_SPREAD * min(values)
    floor = 10.0 ** math.floor(math.log10(min(values))) if logarithmic else 0.0

    def draw(figure: Figure) -> None:
        axes = frame(figure, title, left=LEFT, bottom=BOTTOM, top=top, right=RIGHT)
        legend(figure, [("p50 (median)", PALE), ("p99", ACCENT)], left=LEFT)
        _rows(axes, [label_of(r) for r in drawn])
        if logarithmic:
            value_scale(figure, axes, "x", floor, max(values) * 1.6, log=True, caption="ms")
        else:
            value_scale(figure, axes, "x", min(0.0, *values), max(max(values), 1.0) * 1.04,
                        caption="ms")
        rectangles(axes, [(floor, at - 0.17, value, at + 0.17) for at, value, _ in bars],
                   [colour for *_, colour in bars])
        _ends(axes, figure, [(value, at, amount(value, "ms")) for at, value, _ in bars], 7.5)

    return chart(_height(len(drawn), 0.42, top), draw)
