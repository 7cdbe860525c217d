"""The live book: population drift against training, and fairness across groups."""

from __future__ import annotations

from marshmallow import RAISE

from scoring.governance.drift import ACT, WATCH
from service.usecases.monitoring.fairness import MIN_GROUP, RATIO_FLOOR
from service.web.auth import requires
from service.web.schemas import DriftOut, FairnessArgs, FairnessOut, WindowArgs
from service.web.views.blueprint import Blueprint
from service.web.wiring import wiring

blp = Blueprint("monitoring", __name__,
                description="Drift and fairness of the decisions made, over a window")

WINDOW_NOTE = ("A window is whole buckets of the roll-up ending now (or at `end`): the last "
               "hour by 5 minutes, the last 24 hours by hour, the last 7 or 30 days by day.")


@blp.route("/v1/monitoring/drift", methods=["GET"])
@requires("monitoring.read",
          note=f"{WINDOW_NOTE} PSI of the score, PD and each feature against the training "
               f"set of the model that decided: watch from {WATCH}, act from {ACT}.")
@blp.arguments(WindowArgs(), location="query", unknown=RAISE)
@blp.response(200, DriftOut)
def drift(args: dict):
    """Give the population stability index of score, PD and features against training."""
    monitoring = wiring().monitoring
    return monitoring.drift(monitoring.window(args["window"], by=args.get("by"),
                                              end=args.get("end")))


@blp.route("/v1/monitoring/fairness", methods=["GET"])
@requires("monitoring.fairness",
          note=f"{WINDOW_NOTE} Fairness is counted by day: its windows are 7d (the default) "
               "and 30d. Monitoring only: sex, age band and province are read from the "
               "national ID and never given to the model. A group's approval rate below "
               f"{RATIO_FLOOR} of the most favoured group's is flagged, for groups of "
               f"{MIN_GROUP} decided applications or more; a smaller group's figures are "
               "withheld.")
@blp.arguments(FairnessArgs(), location="query", unknown=RAISE)
@blp.response(200, FairnessOut)
def fairness(args: dict):
    """Give approval rate, mean PD and mean line by sex, age band and province."""
    monitoring = wiring().monitoring
    return monitoring.fairness(monitoring.window(args["window"], by=args.get("by"),
                                                 end=args.get("end")))
