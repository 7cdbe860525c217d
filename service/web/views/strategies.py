"""The strategies in force: read by those who watch the book, changed by admins."""

from __future__ import annotations

from marshmallow import RAISE

from scoring.governance.strategy import StrategyError, StrategyPlan
from service.usecases.promotion import PlansExhausted, PromotionRefused, promote
from service.web.auth import current, requires
from service.web.errors import ApiError, may_answer
from service.web.schemas import StrategiesIn, StrategiesOut, StrategiesSetOut
from service.web.views.blueprint import Blueprint
from service.web.wiring import wiring

blp = Blueprint("strategies", __name__, url_prefix="/v1/strategies",
                description="Champion, challenger and shadows: which model and policy decide")


@blp.route("", methods=["GET"])
@requires("strategies.read")
@blp.response(200, StrategiesOut)
def read_strategies():
    """Give the strategies in force: champion, challenger with its share, and shadows."""
    return wiring().strategies.stored()


@blp.route("", methods=["PUT"])
@requires("strategies.set",
          note="Every model named must pass its card's checks (the AUC floor, monotone "
               "constraints present and honoured, the running spec's digest, the model file's "
               "SHA-256) and every policy must be a version within the regulatory caps; the "
               "change is an audit record `strategy.set`.")
@blp.arguments(StrategiesIn(), unknown=RAISE)
@blp.response(200, StrategiesSetOut)
@may_answer(why={422: "Here: a strategy is malformed, names the same strategy twice, or "
                      "fails a check; `fields` names each with every problem.",
                 409: "Here: the newest stored plan has the largest number a plan may have "
                      "(2147483647), so no plan can follow it; it was not set through the "
                      "service."})
def set_strategies(body: dict):
    """Set the champion, the challenger and the shadows; workers follow within refresh_s."""
    wired = wiring()
    try:
        plan = StrategyPlan.from_dict(body)
        result = promote(wired.strategies, plan, actor=current().actor, reason=body["reason"],
                         spec=wired.engine.model.spec, min_auc=wired.settings.promotion_min_auc)
    except StrategyError as exc:
        raise ApiError(422, str(exc), fields={exc.field: [str(exc)]}) from None
    except PlansExhausted as exc:
        raise ApiError(409, str(exc)) from None
    except PromotionRefused as exc:
        raise ApiError(422, f"the strategies were not changed: {exc}",
                       fields=exc.problems) from None
    return result
