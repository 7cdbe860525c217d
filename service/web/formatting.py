"""How pages write numbers, money, rates and times: the Jinja filters that the console and the
backtest report share."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def money(value: Any) -> str:
    """¥12,000 (no decimals: credit lines are whole thousands)."""
    if value is None:
        return "—"
    return f"¥{float(value):,.0f}"


def percent(value: Any, digits: int = 2) -> str:
    """A fraction as a percentage: 0.0423 → 4.23%."""
    if value is None:
        return "—"
    return f"{float(value) * 100:.{digits}f}%"


def number(value: Any, digits: int = 3) -> str:
    """A feature value or metric: integers plainly, large values with separators."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, int | float):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "missing"
    if value.is_integer() and abs(value) < 1e15:
        return f"{value:,.0f}"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    if abs(value) < 1e-3:
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def signed(value: Any) -> str:
    """A contribution to the log-odds, with its sign: +0.412."""
    if value is None:
        return "—"
    return f"{float(value):+.3f}"


def when(text: Any) -> str:
    """A stored UTC time (2026-11-22T21:23:19.123456Z) as 2026-11-22 21:23:19 UTC."""
    if not text:
        return "—"
    text = str(text)
    if len(text) >= 19 and text[10] == "T":
        return f"{text[:10]} {text[11:19]} UTC"
    return text


def ms(value: Any) -> str:
    """Milliseconds, one decimal."""
    if value is None:
        return "—"
    return f"{float(value):,.1f} ms"


def short_hash(value: Any, length: int = 12) -> str:
    if not value:
        return "—"
    return f"{str(value)[:length]}…"


FILTERS: dict[str, Callable[..., str]] = {
    "money": money, "percent": percent, "number": number, "signed": signed, "when": when,
    "ms": ms, "short_hash": short_hash,
}
