"""Backtests: risk officers replay the decision log through a candidate strategy."""

from __future__ import annotations

from flask import Response
from marshmallow import RAISE

from scoring.governance.strategy import Strategy, StrategyError
from scoring.online.model import ModelError
from scoring.online.policy import PolicyError
from service.usecases.backtests.jobs import BacktestLimitReached, BacktestNotFound, NotCancellable
from service.usecases.backtests.run import Backtest
from service.web.auth import current, requires
from service.web.errors import ApiError, may_answer
from service.web.schemas.backtests import BacktestIn, BacktestListOut, BacktestOut
from service.web.views.blueprint import Blueprint
from service.web.wiring import wiring

blp = Blueprint("backtests", __name__, url_prefix="/v1/backtests",
                description="A candidate strategy replayed over the decisions logged")

_NOT_FOUND = "Here: no backtest has this id."
# The code of a 429 past each cap on unfinished backtests.
LIMIT_CODES = {"requester": "too_many_backtests", "queue": "backtest_queue_full"}


@blp.route("", methods=["POST"])
@requires("backtests.run", note="The backtest is queued and runs in the background, in a "
                                "process of its own: poll GET /v1/backtests/{backtest_id} "
                                "until its status is done, failed or cancelled. The request "
                                "is an audit record.")
@blp.arguments(BacktestIn(), unknown=RAISE)
@blp.response(202, BacktestOut)
@may_answer(why={422: "Here: `strategy` is not MODEL/POLICY (a model version and a policy "
                      "version, never a path), names a version that is not known, or names a "
                      "fallback model, which cannot decide alone.",
                 429: "Here: also when the requester already has `BACKTESTS_PER_REQUESTER` "
                      "backtests waiting or running (`too_many_backtests`), or the queue holds "
                      "`BACKTEST_QUEUE_LIMIT` (`backtest_queue_full`); `Retry-After` is about "
                      "how long a backtest runs here. Nothing is written."})
def request_backtest(body: dict):
    """Start a backtest of a strategy over the logged decisions of a window."""
    try:
        strategy = Strategy.parse(body["strategy"], "strategy")
        return wiring().backtests.request(
            Backtest(strategy, body["since"], body["until"], body["lgd"]), current().actor)
    except (StrategyError, ModelError, PolicyError) as exc:
        raise ApiError(422, str(exc), fields={"strategy": [str(exc)]}) from None
    except BacktestLimitReached as exc:
        raise ApiError(429, exc.message, code=LIMIT_CODES[exc.scope],
                       headers={"Retry-After": str(exc.retry_after_s)}) from None


@blp.route("", methods=["GET"])
@requires("backtests.read")
@blp.response(200, BacktestListOut)
def list_backtests():
    """List the latest backtests, newest first, without their summaries."""
    return {"items": wiring().backtests.list()}


@blp.route("/<backtest_id>", methods=["GET"])
@requires("backtests.read")
@blp.response(200, BacktestOut)
@may_answer(why={404: _NOT_FOUND})
def read_backtest(backtest_id: str):
    """Read a backtest: its status and, once done, its summary."""
    try:
        return wiring().backtests.get(backtest_id)
    except BacktestNotFound as exc:
        raise ApiError(404, str(exc)) from None


@blp.route("/<backtest_id>", methods=["DELETE"])
@requires("backtests.run", note="Any risk officer may cancel any queued or running backtest; "
                                "a running one's process is stopped. The cancellation is an "
                                "audit record, `backtest.cancelled`.")
@blp.response(200, BacktestOut)
@may_answer(why={404: _NOT_FOUND,
                 409: "Here: the backtest has ended (done, failed or cancelled)."})
def cancel_backtest(backtest_id: str):
    """Cancel a queued or running backtest."""
    try:
        return wiring().backtests.cancel(backtest_id, current().actor)
    except BacktestNotFound as exc:
        raise ApiError(404, str(exc)) from None
    except NotCancellable as exc:
        raise ApiError(409, str(exc)) from None


@blp.route("/<backtest_id>/report", methods=["GET"])
@requires("backtests.read")
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
