"""An axis's values and names drawn as gridlines and plain texts, not as matplotlib ticks.

A matplotlib tick is five artists (two marks, a gridline, two labels) and costs about a
millisecond to make and draw, half of a small chart's time; a text costs a fraction of that.
matplotlib's locators still choose the round values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from service.web.charts.panels.canvas import GRID, MUTED, amount

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

GAP = 4.0  # points between an axis and its labels


def value_scale(figure: Figure, axes: Axes, which: Literal["x", "y"], low: float,
                high: float, *, log: bool = False, percent: bool = False,
                integer: bool = False, caption: str = "") -> None:
    """Set an axis's limits and mark round values along it with gridlines and labels."""
    from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator
    from matplotlib.transforms import offset_copy

    axis = axes.xaxis if which == "x" else axes.yaxis
    if log:
        (axes.set_xscale if which == "x" else axes.set_yscale)("log")
    (axes.set_xlim if which == "x" else axes.set_ylim)(low, high)
    axis.set_major_locator(NullLocator())
    axis.set_minor_locator(NullLocator())
    locator = LogLocator(base=10) if log else MaxNLocator(nbins=5, integer=integer)
    slack = (high - low) * 1e-9
    values = [float(v) for v in locator.tick_values(low, high)
              if low - slack <= v <= high + slack]
    names = [f"{amount(v * 100)}%" if percent else amount(v) for v in values]
    if which == "x":
        along = axes.get_xaxis_transform()
        axes.vlines(values, 0, 1, transform=along, colors=GRID, linewidth=0.8, zorder=0)
        place = offset_copy(along, fig=figure, y=-GAP, units="points")
        for value, name in zip(values, names, strict=True):
            axes.text(value, 0, name, transform=place, ha="center", va="top", color=MUTED)
        if caption:
            below = offset_copy(axes.transAxes, fig=figure, y=-GAP - 14, units="points")
            axes.text(0.5, 0, caption, transform=below, ha="center", va="top", color=MUTED)
    else:
        along = axes.get_yaxis_transform()
        axes.hlines(values, 0, 1, transform=along, colors=GRID, linewidth=0.8, zorder=0)
        place = offset_copy(along, fig=figure, x=-GAP, units="points")
        for value, name in zip(values, names, strict=True):
            axes.text(0, value, name, transform=place, ha="right", va="center", color=MUTED)


def position_names(figure: Figure, axes: Axes, positions: Sequence[float],
                   names: Sequence[str], *, lean: bool = False) -> None:
    """Name positions along the x axis, upright or leaning to the left."""
    from matplotlib.ticker import NullLocator
    from matplotlib.transforms import offset_copy

    axes.xaxis.set_major_locator(NullLocator())
    place = offset_copy(axes.get_xaxis_transform(), fig=figure, y=-GAP, units="points")
    for position, name in zip(positions, names, strict=True):
        axes.text(position, 0, name, transform=place, va="top", color=MUTED,
                  ha="right" if lean else "center", rotation=40 if lean else 0,
                  rotation_mode="anchor")
