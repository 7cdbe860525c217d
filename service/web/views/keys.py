"""API keys: list, create and revoke (admin); a key's secret is shown once, when it is made."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates

from service.usecases.api_keys import (
    KEY_ID_LENGTH,
    MAX_NAME_LENGTH,
    ROLES,
    KeyNotFound,
    issue_key,
    list_keys,
)
from service.usecases.api_keys import revoke_key as revoke_stored_key
from service.web.auth import current, requires
from service.web.errors import ApiError
from service.web.schemas import Strict
from service.web.views.blueprint import Blueprint
from service.web.wiring import wiring

REVOCATION_NOTE = (
    "A revoked key is refused at once by the worker that revoked it, and by every other "
    "worker within the key cache's lifetime, `FLASHLOAN_KEY_CACHE_S` (30 s unless set; the "
    "API description states this deployment's).")

blp = Blueprint("keys", __name__, url_prefix="/v1/keys",
                description="API keys, one role each: listed, created and revoked by an "
                            "admin. " + REVOCATION_NOTE)


def cache_lifetime_note(lifetime_s: float) -> str:
    """The API description's sentence on how soon a revoked key is refused."""
    return (f"A revoked key (`DELETE /v1/keys/{{key_id}}`) is refused by every worker of this "
            f"deployment within {lifetime_s:g} s, the lifetime of each worker's key cache "
            "(`FLASHLOAN_KEY_CACHE_S`).")


class KeyIn(Strict):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    name = fields.String(required=True, metadata={
        "description": "who holds the key; for a channel key, the channel's name, which its "
                       "consents name"})

    @validates("name")
    def _name(self, value: str, **kwargs: object) -> None:
        if not 1 <= len(value.strip()) <= MAX_NAME_LENGTH:
            raise ValidationError(f"name must be 1 to {MAX_NAME_LENGTH} characters besides "
                                  f"spaces; got {len(value.strip())}")


class KeyOut(Strict):
    key_id = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    status = fields.String(required=True, validate=validate.OneOf(["active", "revoked"]))
    created_at = fields.String(required=True)
    revoked_at = fields.String(allow_none=True, required=True)


class NewKeyOut(KeyOut):
    key = fields.String(required=True, metadata={
        "description": "the key, shown this once: send it as `Authorization: Bearer <key>`"})


class KeyListOut(Strict):
    items = fields.List(fields.Nested(KeyOut), required=True)


@blp.route("", methods=["GET"])
@requires("keys.manage")
@blp.response(200, KeyListOut)
def list_api_keys():
    """List every key, oldest first: id, name, role and status, never a secret."""
    return {"items": list_keys(wiring().store.engine)}


@blp.route("", methods=["POST"])
@requires("keys.manage")
@blp.arguments(KeyIn(), example={"role": "channel", "name": "my-bank"})
@blp.response(201, NewKeyOut)
def create_api_key(body: dict):
    """Create a key for a role; the answer holds the key, which is never shown again."""
    made = issue_key(wiring().store.engine, body["role"], body["name"], actor=current().actor)
    return {**made.view, "key": made.key}


@blp.route("/<key_id>", methods=["DELETE"])
@requires("keys.manage", note=REVOCATION_NOTE)
@blp.response(200, KeyOut)
def revoke_api_key(key_id: str):
    """Revoke a key; revoking a revoked key changes nothing."""
    wired = wiring()
    if len(key_id) != KEY_ID_LENGTH:
        raise ApiError(404, "no such key")
    try:
        view, _ = revoke_stored_key(wired.store.engine, key_id, actor=current().actor)
    except KeyNotFound:
        raise ApiError(404, "no such key") from None
    wired.keys.forget(key_id)
    return view
