"""What every monitoring chart shares: palette, settings, the figure's frame and its SVG.

matplotlib is imported on the first drawing, not with this module: the service and its
command line start without it, and a worker pays its import (about half a second) once.
"""

from __future__ import annotations

import base64
import io
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

RISKIER, SAFER, TOTAL, MUTED = "#c0392b", "#1e8449", "#8795a3", "#5b6570"
INK, LINE, GRID = "#1d232a", "#d8dde3", "#e8ebee"
ACCENT, WATCH, PALE = "#1f5f99", "#d68910", "#8fb3d9"
NO_DATA = "No data in this window"

WIDTH = 7.5  # inches, as every size below
TITLE_BAND = 0.34
LEGEND_BAND = 0.26
# The text is measured with fonts matplotlib always has: DejaVu Sans, and its Last Resort
# font for every other script (a Chinese character about one em wide, as browsers draw it).
# Naming only fonts that exist keeps matplotlib from logging "font family not found".
_MEASURED_FONTS = ["DejaVu Sans", "Last Resort High-Efficiency"]
_MEASURED_CSS = "font-family: 'DejaVu Sans', 'Last Resort High-Efficiency'"
# The browser draws the text (svg.fonttype none) with the console's own fonts.
_BROWSER_CSS = ("font-family: system-ui, -apple-system, 'Segoe UI', 'PingFang SC', "
               "'Microsoft YaHei', 'Noto Sans CJK SC', 'DejaVu Sans', sans-serif")

STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "flashloan-monitoring",
    "text.usetex": False,
    "text.parse_math": False,  # "$" is a currency sign here, never TeX
    "font.family": _MEASURED_FONTS,
    "font.size": 9.0,
    "text.color": INK,
    "axes.edgecolor": LINE,
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
}
METADATA = {"Date": None}
# rcParams are one dictionary for the whole process: a chart holds it, under the lock, from
# its first artist to its last byte, so two threads never draw with each other's settings.
_SETTINGS = threading.Lock()


def chart(height: float, draw: Callable[[Figure], None]) -> str:
    """Return the SVG of a figure ``height`` inches tall that ``draw`` fills."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    buffer = io.StringIO()
    with _SETTINGS, matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH, height), facecolor="#ffffff")
        draw(figure)
        FigureCanvasSVG(figure).print_svg(buffer, metadata=METADATA)
    return buffer.getvalue().replace(_MEASURED_CSS, _BROWSER_CSS)


def frame(figure: Figure, title: str, *, left: float, bottom: float, top: float,
          right: float = 0.3) -> Axes:
    """Title the figure and return its one set of axes, inset by margins in inches."""
    width, height = figure.get_size_inches()
    heading(figure, title)
    return figure.add_axes((left / width, bottom / height, 1 - (left + right) / width,
                            1 - (top + bottom) / height))


def heading(figure: Figure, title: str) -> None:
    """Write the chart's title at its top left."""
    width, height = figure.get_size_inches()
    # Regular weight: the Last Resort font has no bold, and matplotlib would log its absence.
    figure.text(0.12 / width, 1 - 0.1 / height, fit(title, 80), ha="left", va="top",
                fontsize=11.5)


def no_data_svg(title: str) -> str:
    """Return a small chart that says it has no data."""
    def draw(figure: Figure) -> None:
        heading(figure, title)
        figure.text(0.5, 0.38, NO_DATA, ha="center", va="center", color=MUTED, fontsize=10)

    return chart(1.1, draw)


def legend(figure: Figure, keys: Iterable[tuple[str, str]], *, left: float) -> None:
    """Name the colours in one row under the title; ``keys`` holds (label, colour)."""
    from matplotlib.patches import Patch

    width, height = figure.get_size_inches()
    handles = [Patch(facecolor=colour, label=fit(label, 30)) for label, colour in keys]
    figure.legend(handles=handles, loc="upper left", ncols=max(len(handles), 1),
                  bbox_to_anchor=(left / width, 1 - TITLE_BAND / height),
                  borderaxespad=0.0, borderpad=0.0, handlelength=1.0, handleheight=0.8,
                  columnspacing=1.4)


def rectangles(axes: Axes, corners: Sequence[tuple[float, float, float, float]],
               colours: Sequence[str]) -> None:
    """Draw bars, each ``(x0, y0, x1, y1)`` in data units, in the colour at its index.

    The bars of one colour are one path: a single SVG element where ``Axes.bar`` would make
    a patch per bar, which costs some 0.1 ms each to draw.
    """
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path

    by_colour: dict[str, list[tuple[tuple[float, float], ...]]] = {}
    for (x0, y0, x1, y1), colour in zip(corners, colours, strict=True):
        by_colour.setdefault(colour, []).append(((x0, y0), (x1, y0), (x1, y1), (x0, y1)))
    for colour, outlines in by_colour.items():
        outline = Path.make_compound_path_from_polys(np.asarray(outlines, dtype=float))
        axes.add_artist(PathPatch(outline, facecolor=colour, linewidth=0))


def svg_data_uri(svg: str) -> str:
    """Return ``svg`` as a data URI for an ``<img src>`` (the page's CSP allows ``data:``)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def label_of(item: dict[str, Any]) -> str:
    """Return the label of a row, bin or period as text."""
    label = item.get("label")
    return "" if label is None else str(label)


def finite(value: Any) -> float | None:
    """Return a value to draw as a float; ``None`` when it is missing or not finite."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _ems(ch: str) -> float:
    """Return about how wide DejaVu Sans draws a character, in ems (wider than most fonts)."""
    return 1.15 if ord(ch) > 0x2E7F else 0.62


def width_ems(text: str) -> float:
    """Return about how wide a text is drawn, in ems."""
    return sum(map(_ems, text))


def fit(text: str, ems: float) -> str:
    """Cut a text to about ``ems`` ems wide, with an ellipsis where it was cut."""
    text = " ".join(str(text).split())
    if width_ems(text) <= ems:
        return text
    room, kept = ems - _ems("…"), 0
    for ch in text:
        room -= _ems(ch)
        if room < 0:
            break
        kept += 1
    return text[:kept].rstrip() + "…"


def amount(value: float, unit: str = "", percent: bool = False) -> str:
    """Write a value as it is read beside a bar: ``12``, ``0.123``, ``1,250 ms``, ``12.5%``.

    Three significant digits, whole numbers whole.
    """
    if percent:
        return f"{value * 100:.1f}%"
    if value == int(value) and abs(value) < 1e15:
        text = f"{int(value):,}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}" if unit else text
