"""Consents: record, read, withdraw."""

from __future__ import annotations

from service.usecases.consents import to_view
from service.web.auth import current, requires
from service.web.schemas import ConsentIn, ConsentOut
from service.web.views import examples
from service.web.views.blueprint import Blueprint
from service.web.wiring import wiring

blp = Blueprint("consents", __name__, url_prefix="/v1/consents",
                description="The applicant's consent to query the data sources")


@blp.route("", methods=["POST"])
@requires("consents.write")
@blp.arguments(ConsentIn(), example=examples.CONSENT)
@blp.response(201, ConsentOut)
def record_consent(body: dict):
    """Record a consent the applicant gave in the channel's front-end."""
    return wiring().consents.record(current(), body)


@blp.route("/<consent_id>", methods=["GET"])
@requires("consents.read")
@blp.response(200, ConsentOut)
def read_consent(consent_id: str):
    """Read a consent and whether it is live."""
    return to_view(wiring().consents.visible(current(), consent_id))


@blp.route("/<consent_id>", methods=["DELETE"])
@requires("consents.write")
@blp.response(200, ConsentOut)
def withdraw_consent(consent_id: str):
    """Withdraw a consent: no source is queried under it from now on."""
    return wiring().consents.withdraw(current(), consent_id)
