"""Backtests: the strategies in force, a form that replays the decision log through a
candidate strategy, the latest backtests, and one backtest's report within the console."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Response, abort, redirect, render_template, request, url_for

from scoring.governance.strategy import Strategy, StrategyError
from scoring.online.model import ModelError
from scoring.online.policy import PolicyError
from service.domain.permissions import holds
from service.usecases.backtests.jobs import BacktestLimitReached, BacktestNotFound, NotCancellable
from service.usecases.backtests.run import DEFAULT_LGD, Backtest
from service.web.backtest_report import GROUPS, report_charts
from service.web.console.access import requires_capability, signed_in_user
from service.web.console.blueprint import bp
from service.web.wiring import wiring

log = logging.getLogger("flashloan.console")

# A backtest that waits or runs has its page reload itself this often: a meta refresh, which
# needs no script.
REFRESH_S = 3
UNFINISHED = ("queued", "running")
# As long as the API takes (and the backtests table keeps).
STRATEGY_MAX = 200


@dataclass
class BacktestForm:
    """The form as sent, what is wrong with it, and the backtest it asks for when nothing is."""

    values: dict[str, str] = field(default_factory=lambda: {
        "strategy": "", "since": "", "until": "", "lgd": f"{DEFAULT_LGD:g}"})
    errors: dict[str, str] = field(default_factory=dict)
    backtest: Backtest | None = None
    # Why a well-formed request was refused (a cap on unfinished backtests), for a person.
    refused: str | None = None


def _day(form: BacktestForm, name: str) -> date | None:
    text = form.values[name]
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        form.errors[name] = f"must be a date (YYYY-MM-DD); got {text!r}"
        return None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def read_form(sent: Mapping[str, str]) -> BacktestForm:
    """Read the form: the window is of whole days (UTC), the last one included."""
    form = BacktestForm()
    for name in form.values:
        form.values[name] = (sent.get(name) or "").strip()
    strategy = None
    try:
        strategy = Strategy.parse(form.values["strategy"], "strategy")
    except StrategyError as exc:
        form.errors["strategy"] = str(exc)
    if len(form.values["strategy"]) > STRATEGY_MAX:
        strategy = None
        form.errors["strategy"] = (f"strategy must be at most {STRATEGY_MAX} characters; got "
                                   f"{len(form.values['strategy'])}")
    first, last = _day(form, "since"), _day(form, "until")
    if first is not None and last is not None and last < first:
        form.errors["until"] = f"must not be before the first day ({first}); got {last}"
    lgd = DEFAULT_LGD
    if form.values["lgd"]:
        try:
            lgd = float(form.values["lgd"])
        except ValueError:
            lgd = math.nan
        if not 0.0 <= lgd <= 1.0:
            form.errors["lgd"] = f"must be a number from 0 to 1; got {form.values['lgd']!r}"
    if form.errors or strategy is None:
        return form
    # Every decision is made before the last day ends; the window's end is excluded.
    until = (_midnight(last + timedelta(days=1)) if last is not None and last < date.max
             else None)
    form.backtest = Backtest(strategy, _midnight(first) if first is not None else None,
                             until, lgd)
    return form


def _in_force() -> dict[str, Any]:
    """The strategies in force, and every one of them once, for the form's suggestions."""
    plan = wiring().strategies.stored()
    names = list(dict.fromkeys(m["name"] for m in plan["members"]))
    return {"plan": plan, "suggested": names}


def _list_page(form: BacktestForm, status: int = 200, headers: dict | None = None):
    user = signed_in_user()
    page = render_template("console/backtests.html", form=form,
                           items=wiring().backtests.list(),
                           may_start=holds(user.role, "backtests.run"), **_in_force())
    return page, status, headers or {}


@bp.route("/backtests")
@requires_capability("backtests.read")
def backtests():
    """The strategies in force, the form that starts a backtest, and the latest backtests."""
    return _list_page(BacktestForm())


@bp.route("/backtests", methods=["POST"])
@requires_capability("backtests.run")
def start_backtest():
    """Start a backtest as the signed-in risk officer, then show its page."""
    form = read_form(request.form)
    if form.backtest is not None:
        try:
            job = wiring().backtests.request(form.backtest, signed_in_user().actor)
        except (ModelError, PolicyError, StrategyError) as exc:
            form.errors["strategy"] = str(exc)
        except BacktestLimitReached as exc:
            form.refused = exc.message
            return _list_page(form, 429, {"Retry-After": str(exc.retry_after_s)})
        else:
            log.info("backtest requested in the console",
                     extra={"backtest_id": job["backtest_id"], "strategy": job["strategy"]})
            return redirect(url_for("console.backtest", backtest_id=job["backtest_id"]), 303)
    return _list_page(form, 422)


def _job(backtest_id: str, *, with_report: bool = False) -> dict[str, Any]:
    try:
        return wiring().backtests.get(backtest_id, with_report=with_report)
    except BacktestNotFound:
        abort(404, description="There is no such backtest. The latest are listed under "
                               "Backtests.")


@bp.route("/backtests/<backtest_id>")
@requires_capability("backtests.read")
def backtest(backtest_id: str):
    """One backtest: waiting or running (the page reloads itself), failed, or its report."""
    job = _job(backtest_id)
    report: dict[str, Any] = {}
    if job["status"] == "done":
        summary = job["summary"]
        # The standalone report's figures and charts, drawn from the same summary.
        report = {"summary": summary, "strategy": job["strategy"], "groups": GROUPS,
                  "since": job["since"], "until": job["until"],
                  "generated_at": job["finished_at"],
                  "charts": report_charts(summary, job["strategy"], wiring().charts.uri)}
    return render_template("console/backtest.html", job=job, **report,
                           refresh_s=REFRESH_S if job["status"] in UNFINISHED else None,
                           may_start=holds(signed_in_user().role, "backtests.run"))


@bp.route("/backtests/<backtest_id>/cancel", methods=["POST"])
@requires_capability("backtests.run")
def cancel_backtest(backtest_id: str):
    """Cancel a queued or running backtest as the signed-in risk officer, then show it."""
    try:
        wiring().backtests.cancel(backtest_id, signed_in_user().actor)
    except BacktestNotFound:
        abort(404, description="There is no such backtest. The latest are listed under "
                               "Backtests.")
    except NotCancellable as exc:
        abort(409, description=f"{str(exc)[0].upper()}{str(exc)[1:]}.")
    log.info("backtest cancelled in the console", extra={"backtest_id": backtest_id})
    return redirect(url_for("console.backtest", backtest_id=backtest_id), 303)


@bp.route("/backtests/<backtest_id>/report.html")
@requires_capability("backtests.read")
def backtest_report(backtest_id: str):
    """Download a finished backtest's standalone report."""
    job = _job(backtest_id, with_report=True)
    if job["status"] != "done":
        abort(404, description=f"This backtest is {job['status']}: it has no report.")
    return Response(job["report"], mimetype="text/html", headers={
        "Content-Disposition": f'attachment; filename="backtest-{job["backtest_id"]}.html"'})
