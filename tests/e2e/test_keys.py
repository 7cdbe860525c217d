"""Keys under gunicorn with two workers: a key revoked through the API is refused by every
worker once the key cache's lifetime has passed, and both changes are in the audit log."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests.e2e.conftest import HTTP_TIMEOUT_S, PII_KEY, assert_envelope, create_keys
from tests.e2e.gunicorn_server import GunicornServer

pytestmark = pytest.mark.slow

CACHE_S = 1.0
# Enough requests on connections of their own that both workers see the key.
SPREAD = 16


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GunicornServer, dict]]:
    workdir = tmp_path_factory.mktemp("keys")
    url = f"sqlite:///{workdir / 'flashloan.db'}"
    keys = create_keys(url)
    server = GunicornServer("keys", workdir, {
        "FLASHLOAN_ENV": "test",
        "FLASHLOAN_DATABASE_URL": url,
        "FLASHLOAN_PII_KEY": PII_KEY,
        "FLASHLOAN_KEY_CACHE_S": str(CACHE_S),
        "FLASHLOAN_RATE_LIMIT": "100000/minute",
    }, workers=2)
    try:
        server.spawn()
        server.wait_ready()
        yield server, keys
    finally:
        code = server.stop()
    assert code == 0, server.log_text()
    assert "Traceback" not in server.log_text(), server.log_text()


def call(server: GunicornServer, method: str, path: str, key: str,
         body: dict | None = None) -> requests.Response:
    """One request on a connection of its own, so that either worker may take it."""
    return requests.request(method, server.url(path), json=body, timeout=HTTP_TIMEOUT_S,
                            headers={"Authorization": f"Bearer {key}", "Connection": "close"})


def test_a_revoked_key_is_refused_by_every_worker_after_the_cache_lifetime(keyed) -> None:
    server, keys = keyed
    made = call(server, "POST", "/v1/keys", keys["admin"], {"role": "auditor", "name": "Li Na"})
    assert made.status_code == 201, made.text
    key, key_id = made.json()["key"], made.json()["key_id"]
    assert all(call(server, "GET", "/v1/models", key).status_code == 200
               for _ in range(SPREAD))

    revoked = call(server, "DELETE", f"/v1/keys/{key_id}", keys["admin"])
    assert revoked.status_code == 200, revoked.text
    at = time.monotonic()
    time.sleep(max(0.0, at + CACHE_S - time.monotonic()))
    for _ in range(SPREAD):
        assert_envelope(call(server, "GET", "/v1/models", key), 401, "unauthenticated")

    listed = call(server, "GET", "/v1/keys", keys["admin"]).json()["items"]
    assert next(k for k in listed if k["key_id"] == key_id)["status"] == "revoked"
    audit = call(server, "GET", "/v1/audit/records?kind=key.created&kind=key.revoked&limit=100",
                 keys["auditor"])
    assert audit.status_code == 200, audit.text
    mine = [r for r in audit.json()["items"] if r["payload"]["key_id"] == key_id]
    admin = f"admin:{keys['admin'].split('_')[1]}"
    assert [(r["kind"], r["actor"]) for r in mine] == [("key.created", admin),
                                                       ("key.revoked", admin)]
    assert key.split("_", 2)[2] not in audit.text
