"""The reason codes: every code a decision, a partial approval or a review can carry."""

from __future__ import annotations

from service.web.auth import requires
from service.web.schemas import ReasonCatalogueOut
from service.web.views.blueprint import Blueprint
from service.web.wiring import wiring

blp = Blueprint("reasons", __name__, url_prefix="/v1/reasons",
                description="Reason codes and their meanings")


@blp.route("", methods=["GET"])
@requires("reasons.read")
@blp.response(200, ReasonCatalogueOut)
def list_reasons():
    """List every reason code once, with its texts and whether the applicant can act on it."""
    return wiring().reasons
