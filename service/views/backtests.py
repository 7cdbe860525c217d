"""Backtests: risk officers replay the decision log through a candidate strategy."""

from __future__ import annotations

from flask import Response
from marshmallow import RAISE

from scoring.model import ModelError
from scoring.policy import PolicyError
from scoring.strategy import Strategy, StrategyError
from service.auth import current, requires
from service.backtests.jobs import BacktestNotFound
from service.backtests.run import Backtest
from service.errors import ApiError, may_answer
from service.schemas.backtests import BacktestIn, BacktestListOut, BacktestOut
from service.views.blueprint import Blueprint
from service.wiring import wiring

blp = Blueprint("backtests", __name__, url_prefix="/v1/backtests",
                description="A candidate strategy replayed over the decisions logged")

_NOT_FOUND = "Here: no backtest has this id."


@blp.route("", methods=["POST"])
@requires("risk_officer", note="The backtest runs in the background: poll "
                               "GET /v1/backtests/{backtest_id} until its status is done or "
                               "failed. The request is an audit record.")
@blp.arguments(BacktestIn(), unknown=RAISE)
@blp.response(202, BacktestOut)
@may_answer(why={422: "Here: the strategy is malformed or its model or policy cannot be "
                      "loaded."})
def request_backtest(body: dict):
    """Start a backtest of a strategy over the logged decisions of a window."""
    try:
        strategy = Strategy.parse(body["strategy"], "strategy")
        return wiring().backtests.request(
            Backtest(strategy, body["since"], body["until"], body["lgd"]), current().actor)
    except (StrategyError, ModelError, PolicyError) as exc:
        raise ApiError(422, str(exc), fields={"strategy": [str(exc)]}) from None


@blp.route("", methods=["GET"])
@requires("risk_officer", "auditor")
@blp.response(200, BacktestListOut)
def list_backtests():
    """List the latest backtests, newest first, without their summaries."""
    return {"items": wiring().backtests.list()}


@blp.route("/<backtest_id>", methods=["GET"])
@requires("risk_officer", "auditor")
@blp.response(200, BacktestOut)
@may_answer(why={404: _NOT_FOUND})
def read_backtest(backtest_id: str):
    """Read a backtest: its status and, once done, its summary."""
    try:
        return wiring().backtests.get(backtest_id)
    except BacktestNotFound as exc:
        raise ApiError(404, str(exc)) from None


@blp.route("/<backtest_id>/report", methods=["GET"])
@requires("risk_officer", "auditor")
@blp.response(200, {"type": "string"}, content_type="text/html")
@may_answer(why={404: _NOT_FOUND, 409: "Here: the backtest has not finished, or failed."})
def backtest_report(backtest_id: str):
    """Read a finished backtest's report: one self-contained HTML page with its charts."""
    try:
        job = wiring().backtests.get(backtest_id, with_report=True)
    except BacktestNotFound as exc:
        raise ApiError(404, str(exc)) from None
    if job["status"] != "done":
        raise ApiError(409, f"backtest {backtest_id} is {job['status']}: no report yet"
                       + (f" ({job['error']})" if job["error"] else ""))
    return Response(job["report"], mimetype="text/html")
