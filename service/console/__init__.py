"""The console for risk officers and auditors (server-rendered, under /console/)."""

from __future__ import annotations

from flask import Flask


def init_console(app: Flask) -> None:
    """Register the console's blueprint."""
