"""A matrix of counts: one shaded cell per pair of a row's and a column's category."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from service.web.charts.panels.canvas import (
    ACCENT,
    INK,
    LEGEND_BAND,
    MUTED,
    TITLE_BAND,
    TOTAL,
    amount,
    chart,
    finite,
    fit,
    frame,
    legend,
    no_data_svg,
    rectangles,
)
from service.web.charts.panels.scales import GAP, position_names

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LEFT, RIGHT, BOTTOM = 1.6, 0.3, 0.75
CELL = 0.62  # inches per row
LABEL_EMS = (LEFT - 0.2) * 72 / 9
# The palest shade of a cell that counts anything, so that a count of one still shows.
FAINTEST = 0.12
EMPTY = "#f4f6f8"
# From this shade on, a cell's count is written in white.
DARK = 0.55


def shade(colour: str, weight: float) -> str:
    """Return ``colour`` mixed with white: weight 0 is white, 1 the colour itself."""
    channels = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    mixed = [round(255 + (c - 255) * weight) for c in channels]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def matrix_svg(counts: Sequence[Sequence[float | None]], *, rows: Sequence[str],
               columns: Sequence[str], title: str, row_caption: str = "",
               column_caption: str = "", diagonal: tuple[str, str] | None = None) -> str:
    """Return a grid of counts, each cell shaded by its count against the largest.

    Parameters
    ----------
    counts
        One sequence per row, one count per column; a missing count leaves its cell blank.
    rows, columns
        The categories' names, down the left and along the bottom.
    row_caption, column_caption
        What the rows and the columns are (``recorded``, ``candidate``).
    diagonal
        Labels of the cells on the diagonal and of the others, to shade them in two hues
        (same category on both sides, or not); None shades every cell alike.
    """
    if len(counts) != len(rows) or any(len(line) != len(columns) for line in counts):
        raise ValueError(f"counts must have {len(rows)} rows of {len(columns)} counts")
    values = [[finite(v) for v in line] for line in counts]
    largest = max((v for line in values for v in line if v is not None), default=0.0)
    if not rows or not columns or largest <= 0:
        return no_data_svg(title)
    top = TITLE_BAND + (LEGEND_BAND if diagonal else 0.0) + 0.12
    # With two hues, each is shaded against its own largest count: a few changes among many
    # unchanged decisions still show.
    most = {hue: max((v for r, line in enumerate(values) for c, v in enumerate(line)
                      if v is not None and _hue(r, c, diagonal) == hue), default=0.0)
            for hue in (TOTAL, ACCENT)}
    cells, colours, texts = [], [], []
    for r, line in enumerate(values):
        for c, value in enumerate(line):
            if value is None:
                continue
            hue = _hue(r, c, diagonal)
            weight = FAINTEST + (1 - FAINTEST) * value / most[hue] if value > 0 else 0.0
            cells.append((c - 0.48, r - 0.46, c + 0.48, r + 0.46))
            colours.append(shade(hue, weight) if weight else EMPTY)
            texts.append((c, r, amount(value), "#ffffff" if weight >= DARK else INK))

    def draw(figure: Figure) -> None:
        from matplotlib.ticker import NullLocator
        from matplotlib.transforms import offset_copy

        axes = frame(figure, title, left=LEFT, bottom=BOTTOM, top=top, right=RIGHT)
        if diagonal:
            legend(figure, [(diagonal[0], TOTAL), (diagonal[1], ACCENT)], left=LEFT)
        for spine in axes.spines.values():
            spine.set_visible(False)
        rectangles(axes, cells, colours)
        for c, r, text, colour in texts:
            axes.text(c, r, text, ha="center", va="center", color=colour, fontsize=10)
        axes.set_xlim(-0.5, len(columns) - 0.5)
        axes.set_ylim(len(rows) - 0.5, -0.5)
        axes.yaxis.set_major_locator(NullLocator())
        position_names(figure, axes, range(len(columns)), [fit(c, 16) for c in columns])
        beside = offset_copy(axes.get_yaxis_transform(), fig=figure, x=-GAP, units="points")
        for r, name in enumerate(rows):
            axes.text(0, r, fit(name, LABEL_EMS), transform=beside, ha="right", va="center")
        if column_caption:
            below = offset_copy(axes.transAxes, fig=figure, y=-GAP - 16, units="points")
            axes.text(0.5, 0, column_caption, transform=below, ha="center", va="top",
                      color=MUTED)
        if row_caption:
            axes.text(-(LEFT - 0.15) / (figure.get_size_inches()[0] - LEFT - RIGHT), 1.0,
                      row_caption, transform=axes.transAxes, ha="left", va="bottom",
                      color=MUTED)

    return chart(top + BOTTOM + len(rows) * CELL, draw)


def _hue(row: int, column: int, diagonal: tuple[str, str] | None) -> str:
    return TOTAL if diagonal and row == column else ACCENT
