"""Model cards."""

from __future__ import annotations

from scoring.online.model import ModelError, list_versions, read_card
from service.web.auth import requires
from service.web.errors import ApiError
from service.web.schemas import ModelCardOut, ModelListOut
from service.web.views.blueprint import Blueprint
from service.web.wiring import wiring

blp = Blueprint("models", __name__, url_prefix="/v1/models", description="Model cards")


@blp.route("", methods=["GET"])
@requires("models.read")
@blp.response(200, ModelListOut)
def list_models():
    """List the model versions this service has, each with its roles in the strategies in
    force (champion, challenger, shadow, or fallback of one of them)."""
    roles = wiring().strategies.roles()
    search = wiring().settings.model_search
    items = []
    for version in list_versions(search):
        card = read_card(version, search)
        items.append({"version": version, "created": card["created"],
                      "active": "champion" in roles.get(version, ()),
                      "roles": roles.get(version, []), "auc": card["metrics"]["auc"],
                      "oracle_auc": card["metrics"].get("oracle_auc"),
                      "features": len(card["features"])})
    return {"items": items}


@blp.route("/<version>", methods=["GET"])
@requires("models.read")
@blp.response(200, ModelCardOut)
def model_card(version: str):
    """Read one model's card: features, constraints, training data, metrics."""
    search = wiring().settings.model_search
    if version not in list_versions(search):
        raise ApiError(404, "no such model version")
    try:
        card = read_card(version, search)
    except ModelError:
        raise ApiError(404, "no such model version") from None
    roles = wiring().strategies.roles()
    return {"version": version, "active": "champion" in roles.get(version, ()),
            "roles": roles.get(version, []), "card": card}
