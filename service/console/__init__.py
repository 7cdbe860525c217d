"""The console for risk officers and auditors (server-rendered, under /console/).

Sign in with an API key; a risk officer searches applications, reads one in full (decision,
timeline, sources, reasons, contribution chart, features), resolves review requests and reads
model cards; an auditor searches the audit log, reads records with their hashes, verifies the
chain and downloads exports. An administrator sees both sections.
"""

from __future__ import annotations

from flask import Flask


def init_console(app: Flask) -> None:
    """Register the console's blueprint."""
    from service.console import audit_pages, model_pages, risk, signin  # noqa: F401 (routes)
    from service.console.blueprint import bp

    app.register_blueprint(bp)
