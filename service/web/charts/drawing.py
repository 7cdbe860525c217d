"""Drawing an SVG chart: a value axis with zero on it, and rows of two-line labels and bars."""

from __future__ import annotations

import math
from collections.abc import Iterable
from html import escape

WIDTH = 900
ROW = 38
LEFT = 400
RIGHT = 100
TOP = 78
RISKIER, SAFER, TOTAL, MUTED = "#c0392b", "#1e8449", "#8795a3", "#5b6570"
FONT = "system-ui, 'PingFang SC', 'Noto Sans CJK SC', sans-serif"


def _width(text: str, size: float = 12) -> float:
    """About how wide a text is drawn: Chinese characters are square, others ~0.55 em."""
    return sum(size if ord(ch) > 0x2E7F else size * 0.55 for ch in text)


def _fit(text: str, width: float, size: float = 12, keep: str = "") -> str:
    """Cut a text to about ``width`` pixels with an ellipsis, always keeping ``keep`` whole."""
    room = width - _width(keep, size)
    if _width(text, size) <= room:
        return text + keep
    while text and _width(text + "…", size) > room:
        text = text[:-1]
    return text.rstrip() + "…" + keep


def axis_for(values: Iterable[float]) -> tuple[float, float, list[float]]:
    """The axis's ends and ticks: round numbers, zero always among them."""
    found = [0.0, *values]
    lo, hi = min(found), max(found)
    rough = (hi - lo or 1.0) / 5
    magnitude = 10 ** math.floor(math.log10(rough))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= rough)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    return lo, hi, [lo + i * step for i in range(round((hi - lo) / step) + 1)]


def unit_words(units: str) -> tuple[str, str]:
    """The axis's caption and how to read the colours, in these units."""
    if units == "points":
        return ("score points (higher is better: lower risk)",
                "Score points: green raises the score (lower risk), red lowers it.")
    return ("log-odds of default (higher is riskier)",
            "Log-odds of default: red raises the risk, green lowers it.")


class Drawing:
    """An SVG being written: a horizontal value axis and rows of two-line labels and bars."""

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi
        self.out: list[str] = []

    def x(self, v: float) -> float:
        return LEFT + (v - self.lo) / (self.hi - self.lo) * (WIDTH - LEFT - RIGHT)

    def row(self, y: float, first: str, second: str, zh: bool = False, keep: str = "") -> None:
        # The first line says what the row is, the second (muted) where it comes from.
        self.out.append(f'<text x="{LEFT - 10}" y="{y + 16}" text-anchor="end">'
                        f'{escape(_fit(first, LEFT - 30, keep=keep))}</text>')
        if second:
            lang = ' lang="zh"' if zh else ""
            self.out.append(f'<text x="{LEFT - 10}" y="{y + 31}" text-anchor="end" '
                            f'font-size="11" fill="{MUTED}"{lang}>'
                            f'{escape(_fit(second, LEFT - 30, 11))}</text>')

    def bar(self, y: float, start: float, end: float, colour: str, text: str) -> None:
        x0, x1 = sorted((self.x(start), self.x(end)))
        self.out.append(f'<rect x="{x0:.1f}" y="{y + 8}" width="{max(x1 - x0, 1):.1f}" '
                        f'height="{ROW - 16}" fill="{colour}"/>')
        fill = "" if colour == TOTAL else f' fill="{colour}"'
        self.out.append(f'<text x="{x1 + 6:.1f}" y="{y + 24}"{fill}>{escape(text)}</text>')

    def axis(self, y: float, ticks: list[float], caption: str, top: float) -> None:
        plot_w = WIDTH - LEFT - RIGHT
        self.out.append(f'<line x1="{self.x(0):.1f}" y1="{top}" x2="{self.x(0):.1f}" '
                        f'y2="{y}" stroke="#333" stroke-width="1"/>')
        self.out.append(f'<line x1="{LEFT}" y1="{y}" x2="{LEFT + plot_w}" y2="{y}" '
                        'stroke="#333"/>')
        for t in ticks:
            self.out.append(f'<line x1="{self.x(t):.1f}" y1="{y}" x2="{self.x(t):.1f}" '
                            f'y2="{y + 5}" stroke="#333"/>')
            self.out.append(f'<text x="{self.x(t):.1f}" y="{y + 18}" text-anchor="middle">'
                            f'{round(t, 9):g}</text>')
        self.out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{y + 36}" '
                        f'text-anchor="middle" fill="#444">{escape(caption)}</text>')


def svg_open(height: float, ids: tuple[str, str], title: str, desc: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-labelledby="{ids[0]} {ids[1]}" '
        f'font-family="{FONT}" font-size="12">',
        f'<title id="{ids[0]}">{escape(title)}</title>',
        f'<desc id="{ids[1]}">{escape(desc)}</desc>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
    ]
