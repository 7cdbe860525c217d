"""The risk officer's pages: applications, one application in full, and the review queue."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from flask import abort, flash, redirect, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import select

from scoring.online.review_terms import offered_terms
from service.domain.encoding import loads
from service.domain.errors import DomainError
from service.persistence.tables import reviews
from service.usecases.notice import build_notice
from service.usecases.reviews import review_view
from service.web.charts import (
    contribution_text,
    feature_label,
    parse_units,
    waterfall_svg,
)
from service.web.console.access import may, requires_capability, signed_in_user
from service.web.console.app_search import (
    OUTCOMES,
    InvalidPageLink,
    parse_filters,
    search_applications,
)
from service.web.console.blueprint import bp
from service.web.errors import status_for
from service.web.wiring import wiring

log = logging.getLogger("flashloan.console")

REVIEW_PAGE_SIZE = 20
SOURCES = {
    "provident_fund": ("公积金", "Provident fund"),
    "social_security": ("社保", "Social security"),
    "income_tax": ("个税", "Income tax"),
    "credit_report": ("征信", "Credit report"),
    "court_records": ("司法", "Court records"),
}


def _known_reason_codes() -> list[tuple[str, str]]:
    """Every reason code a decision can give (the catalogue's, but the line bounds, which are
    no reasons of a decision), with its text."""
    return sorted((e["code"], e["text_en"]) for e in wiring().reasons["items"]
                  if e["kind"] != "line")


def _grades() -> tuple[str, ...]:
    """The grades of the policy in force (the champion's)."""
    return tuple(str(g) for g in wiring().policy_in_force().grade_names)


@bp.route("/applications")
@requires_capability("applications.read")
def applications():
    """Search applications by outcome, grade, date and reason, newest first."""
    filters, errors = parse_filters(request.args, _grades())
    items: list[dict] = []
    next_cursor = None
    status = 200
    if errors:
        status = 400
    else:
        try:
            items, next_cursor = search_applications(wiring().store.engine, filters,
                                                     request.args.get("cursor") or None)
        except InvalidPageLink:
            abort(400, description="That page link is not valid; start again from the "
                                   "first page.")
    return render_template("console/applications.html", filters=filters, errors=errors,
                           items=items, next_cursor=next_cursor, outcomes=OUTCOMES,
                           grades=_grades(), reason_codes=_known_reason_codes(),
                           paged=bool(request.args.get("cursor"))), status


@bp.route("/applications/<application_id>")
@requires_capability("applications.explanation")
def application(application_id: str):
    """One application: decision, notice, reasons, sources, timeline, chart and features."""
    try:
        units = parse_units(request.args.get("units"))
    except ValueError as exc:
        abort(400, description=f"{exc}.")
    user = signed_in_user()
    book = wiring().applications
    row = book.visible(user, application_id)
    answer = loads(row.answer)
    record = book.record(row)
    explanation = book.explanation_or_none(row, record)
    details = book.details(row, record)
    spec = wiring().engine.model.spec
    chart = features = None
    chart_units_shown = units
    totals: dict[str, str] = {}
    # Sources that did not answer; before scoring only the answer names them.
    unknown_sources = (explanation.get("unknown_sources", []) if explanation is not None
                       else answer.get("missing_sources", []))
    if explanation is not None:
        scale = wiring().scales.of(explanation)
        # Without the deciding model's card there are no points to speak of: log-odds.
        chart_units_shown = units if scale is not None else "log_odds"
        # The chart is our own SVG; every text in it is escaped where it is drawn.
        chart = Markup(waterfall_svg(explanation, spec, units=chart_units_shown, scale=scale))
        in_units: Callable[[float], float] | None = None
        if scale is not None and chart_units_shown == "points":
            in_units = scale.step
            totals = {"base": f"{scale.total(explanation['base_value']):.1f}",
                      "final": f"{scale.total(explanation['margin']):.2f}",
                      "per_log_odds": f"{scale.slope:.2f}"}
        else:
            totals = {"base": f"{explanation['base_value']:+.3f}",
                      "final": f"{explanation['margin']:+.3f}"}
        partial = set(explanation.get("partial_features", []))
        features = []
        for f in sorted(explanation["features"], key=lambda f: (-abs(f["contribution"]),
                                                                 f["name"])):
            features.append(_feature_row(spec, f, "partial" if f["name"] in partial else "ok",
                                         chart_units_shown, in_units))
        # The model that decided does not read these: listed so that none is taken for 0.
        for name in explanation.get("unknown_features", []):
            features.append(_feature_row(spec, {"name": name, "group": spec.by_name(name).group,
                                                "value": None, "contribution": None},
                                         "unknown", chart_units_shown, in_units))
    # The notice and the reviews are shown to the roles that may read them through the API.
    notice = (build_notice(application_id, answer, explanation, spec, row.updated_at,
                           wiring().consents.cited(row.consent_id))
              if may("applications.notice") else None)
    review_rows = []
    if may("reviews.read"):
        with wiring().store.engine.connect() as conn:
            review_rows = conn.execute(select(reviews).where(
                reviews.c.application_id == application_id).order_by(reviews.c.created_at)).all()
    return render_template(
        "console/application.html", row=row, answer=answer, decision=answer.get("decision"),
        explanation=explanation, details=details, chart=chart, features=features,
        units=units, chart_units=chart_units_shown, totals=totals, notice=notice,
        reviews=[review_view(r) for r in review_rows], sources=SOURCES,
        unknown_sources=unknown_sources)


def _feature_row(spec, f: dict, known: str, units: str,
                 in_units: Callable[[float], float] | None = None) -> dict:
    """One row of the features table; ``known`` is "ok", "partial" or "unknown".

    ``in_units`` turns a contribution in log-odds into ``units`` (None: log-odds as they are).
    """
    c = f["contribution"]
    shown = None if c is None else (in_units(c) if in_units else c)
    label = feature_label(spec, f["name"])
    return {**f, "label": label, "known": known, "reading": label.reading(f["value"]),
            "shown": contribution_text(shown, units),
            # Red raises the risk in either units.
            "risk": "" if not c else "up" if c > 0 else "down"}


def _offered_by_policy(items: list[dict]) -> dict[str, dict]:
    """The terms an officer may set, under the policy each listed decision was made under
    (the review desk checks them against that policy), by policy version; "" for the
    policy in force (the champion's)."""
    replayer = wiring().replayer
    offered = {"": offered_terms(wiring().policy_in_force())}
    for item in items:
        version = (item["application"].get("decision") or {}).get("policy_version")
        if version and version not in offered:
            offered[version] = offered_terms(replayer.policy(version))
    return offered


def _form_terms(form) -> tuple[dict[str, float] | None, str | None]:
    """The terms of a resolution form: None when both are empty, or what is wrong."""
    line, rate = form.get("credit_limit", "").strip(), form.get("annual_rate", "").strip()
    if not line and not rate:
        return None, None
    if not line or not rate:
        return None, "Give both the credit line and the rate, or neither."
    try:
        terms = {"credit_limit": float(line), "annual_rate": float(rate)}
    except ValueError:
        return None, "The credit line and the rate must be numbers."
    if not all(math.isfinite(v) for v in terms.values()):
        return None, "The credit line and the rate must be numbers."
    return terms, None


@bp.route("/reviews")
@requires_capability("reviews.read")
def review_queue():
    """The review queue: open requests with a form each, or the resolved ones."""
    state = request.args.get("state", "open")
    if state not in ("open", "resolved"):
        abort(400, description="state must be open or resolved.")
    page = wiring().reviews.list(state, REVIEW_PAGE_SIZE, request.args.get("cursor") or None)
    return render_template("console/reviews.html", state=state, page=page,
                           can_resolve=may("reviews.resolve"),
                           offered_by=_offered_by_policy(page["items"]),
                           paged=bool(request.args.get("cursor")))


@bp.route("/reviews/<review_id>/resolution", methods=["POST"])
@requires_capability("reviews.resolve")
def resolve_review(review_id: str):
    """Resolve a review as the signed-in risk officer, then show the application."""
    outcome = request.form.get("outcome", "")
    note = request.form.get("note", "").strip()
    back = url_for("console.review_queue")
    if outcome not in ("upheld", "overturned", "amended"):
        flash("Choose whether to uphold, overturn or amend the decision.", "error")
        return redirect(back, 303)
    if not 1 <= len(note) <= 2000:
        flash("Write a note of 1 to 2000 characters: the applicant's file keeps it.", "error")
        return redirect(back, 303)
    # The form shows an approval's terms as they stand, so a browser sends them with any
    # outcome: upholding takes none.
    terms, problem = _form_terms(request.form) if outcome != "upheld" else (None, None)
    if problem:
        flash(problem, "error")
        return redirect(back, 303)
    try:
        review = wiring().reviews.resolve(signed_in_user(), review_id, outcome, note, terms)
    except DomainError as exc:
        if (status_for(exc) or 500) >= 500:
            raise
        flash(f"The review was not resolved: {exc.message}.", "error")
        return redirect(back, 303)
    answer = review["application"]
    decision = answer["decision"]
    if outcome == "upheld":
        flash(f"Review resolved: the decision was upheld. The application stays "
              f"{answer['status']}.", "success")
    else:
        done = "the decline was overturned" if outcome == "overturned" else "the terms changed"
        flash(f"Review resolved: {done}. The application is now approved by a person, with a "
              f"credit line of ¥{decision['credit_limit']:,.0f} at "
              f"{decision['annual_rate'] * 100:.2f}% a year.", "success")
    log.info("review resolved in the console", extra={"review_id": review_id,
                                                      "outcome": outcome})
    return redirect(url_for("console.application", application_id=review["application_id"]),
                    303)

