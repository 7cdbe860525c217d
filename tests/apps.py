"""Apps for the tests, built on one shelf of models per process: each app owns its database,
settings, engines and books, and borrows the read-only models loaded once for the run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from scoring.online.model import ModelShelf
from service.web.app import create_app

SHELF = ModelShelf()


def build_app(config: Mapping[str, Any]) -> Flask:
    """``create_app(config)``, its models lent by the run's shelf."""
    return create_app(config, shelf=SHELF)
