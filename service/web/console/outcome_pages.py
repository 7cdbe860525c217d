"""Loan outcomes: realised default beside the PD predicted at decision."""

from __future__ import annotations

from flask import render_template
from markupsafe import Markup

from service.web.charts import realised_vs_predicted_svg
from service.web.console.access import requires_capability
from service.web.console.blueprint import bp
from service.web.wiring import wiring


@bp.route("/outcomes")
@requires_capability("monitoring.read")
def outcomes():
    """Realised default against predicted PD of drawn loans, by grade and month of approval."""
    table = wiring().outcomes.calibration()
    # Our own SVG; every text in it is escaped where it is drawn.
    chart = (Markup(realised_vs_predicted_svg(table["by_grade"]))
             if table["overall"]["loans"] else None)
    return render_template("console/outcomes.html", table=table, chart=chart)
