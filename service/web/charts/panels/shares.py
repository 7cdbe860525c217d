"""Two distributions side by side: each bin's share now against its share in training."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.web.charts.panels.canvas import (
    ACCENT,
    LEGEND_BAND,
    TITLE_BAND,
    TOTAL,
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

LEFT, RIGHT, HEIGHT = 0.7, 0.3, 3.0
# Bin labels stand upright while they fit under their bins, and lean (cut to LEANING) if not.
LEANING = 14


def compare_svg(bins: list[dict[str, Any]], *, title: str, observed_label: str = "Live",
                expected_label: str = "Training") -> str:
    """Return grouped bars of each bin's observed and expected share, in percent.

    ``bins`` holds ``{"label", "observed", "expected"}`` with shares between 0 and 1; a
    missing share is left out, a bin with neither is left out.
    """
    drawn = [b for b in bins
             if finite(b.get("observed")) is not None or finite(b.get("expected")) is not None]
    if not drawn:
        return no_data_svg(title)
    bars = [(slot + offset, share, colour)
            for slot, b in enumerate(drawn)
            for key, colour, offset in (("observed", ACCENT, -0.2), ("expected", TOTAL, 0.2))
            if (share := finite(b.get(key))) is not None]
    shares = [share for _, share, _ in bars]
    labels = [label_of(b) for b in drawn]
    room = (WIDTH - LEFT - RIGHT) * 72 / 9 / len(drawn) * 0.9  # ems under each bin, at 9 pt
    leaning = max(width_ems(label) for label in labels) > room
    bottom = 1.0 if leaning else 0.45

    def draw(figure: Figure) -> None:
        axes = frame(figure, title, left=LEFT, bottom=bottom,
                     top=TITLE_BAND + LEGEND_BAND + 0.12, right=RIGHT)
        legend(figure, [(observed_label, ACCENT), (expected_label, TOTAL)], left=LEFT)
        rectangles(axes, [(at - 0.19, 0.0, at + 0.19, share) for at, share, _ in bars],
                   [colour for *_, colour in bars])
        position_names(figure, axes, range(len(drawn)),
                       [fit(label, LEANING if leaning else room) for label in labels],
                       lean=leaning)
        axes.set_xlim(-0.6, len(drawn) - 0.4)
        value_scale(figure, axes, "y", min(0.0, *shares), max(max(shares), 0.01) * 1.08,
                    percent=True)

    return chart(HEIGHT + (bottom - 0.45), draw)
