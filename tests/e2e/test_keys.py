"""Keys under gunicorn with two workers (the deployment's main server, whose key cache lasts
KEY_CACHE_S): a key revoked through the API is refused by every worker once the key cache's
lifetime has passed, and both changes are in the audit log."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
import requests

from tests.e2e.conftest import HTTP_TIMEOUT_S, KEY_CACHE_S, Deployment, assert_envelope
from tests.e2e.gunicorn_server import GunicornServer

pytestmark = pytest.mark.slow

# Enough requests on connections of their own that both workers see the key.
SPREAD = 16


def call(server: GunicornServer, method: str, path: str, key: str,
         body: dict | None = None) -> requests.Response:
    """One request on a connection of its own, so that either worker may take it."""
    return requests.request(method, server.url(path), json=body, timeout=HTTP_TIMEOUT_S,
                            headers={"Authorization": f"Bearer {key}", "Connection": "close"})


def key_records(server: GunicornServer, auditor: str) -> tuple[list[dict], str]:
    """Every key.created and key.revoked record, page after page; and the pages' text."""
    items: list[dict] = []
    texts: list[str] = []
    path = "/v1/audit/records?kind=key.created&kind=key.revoked&limit=100"
    cursor = None
    while True:
        page = call(server, "GET", path + (f"&cursor={quote(cursor)}" if cursor else ""),
                    auditor)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        texts.append(page.text)
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items, "\n".join(texts)


def test_a_revoked_key_is_refused_by_every_worker_after_the_cache_lifetime(
        deployment: Deployment) -> None:
    server, keys = deployment.main, deployment.keys
    made = call(server, "POST", "/v1/keys", keys["admin"], {"role": "auditor", "name": "Li Na"})
    assert made.status_code == 201, made.text
    key, key_id = made.json()["key"], made.json()["key_id"]
    assert all(call(server, "GET", "/v1/models", key).status_code == 200
               for _ in range(SPREAD))

    revoked = call(server, "DELETE", f"/v1/keys/{key_id}", keys["admin"])
    assert revoked.status_code == 200, revoked.text
    at = time.monotonic()
    time.sleep(max(0.0, at + KEY_CACHE_S - time.monotonic()))
    for _ in range(SPREAD):
        assert_envelope(call(server, "GET", "/v1/models", key), 401, "unauthenticated")

    listed = call(server, "GET", "/v1/keys", keys["admin"]).json()["items"]
    assert next(k for k in listed if k["key_id"] == key_id)["status"] == "revoked"
    records, audit_text = key_records(server, keys["auditor"])
    mine = [r for r in records if r["payload"]["key_id"] == key_id]
    admin = f"admin:{keys['admin'].split('_')[1]}"
    assert [(r["kind"], r["actor"]) for r in mine] == [("key.created", admin),
                                                       ("key.revoked", admin)]
    assert key.split("_", 2)[2] not in audit_text
