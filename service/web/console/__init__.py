"""The console for risk officers and auditors (server-rendered, under /console/).

Sign in with an API key; a risk officer searches applications, reads one in full (decision,
timeline, sources, reasons, contribution chart, features), resolves review requests and reads
model cards and loans' realised default beside their predicted PD; an auditor searches the
audit log, reads records with their hashes, verifies the chain and downloads exports, and
reads the model cards and outcomes too. Risk officers start backtests of a candidate strategy,
which auditors read too. An administrator sees every section.
"""

from __future__ import annotations

from flask import Flask


def init_console(app: Flask) -> None:
    """Register the console's blueprint."""
    from service.web.console import (  # noqa: F401 (routes)
        audit_pages,
        backtest_pages,
        model_pages,
        monitoring_pages,
        outcome_pages,
        risk,
        signin,
    )
    from service.web.console.blueprint import bp

    app.register_blueprint(bp)
