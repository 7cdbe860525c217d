"""Rate limits under gunicorn with two workers: one allowance per key whichever worker answers,
counted in the host's own file or in Redis, and floods without a valid key refused once the
failed-authentication limit is reached, while valid keys from the same address are answered."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.databases import migrate, unavailable
from tests.e2e.conftest import HTTP_TIMEOUT_S, PII_KEY, assert_envelope
from tests.e2e.gunicorn_server import GunicornServer

pytestmark = pytest.mark.slow

KEY_LIMIT = 10
FAILURE_LIMIT = 6
REDIS_URL = "redis://127.0.0.1:6379/15"


class Limited:
    """One gunicorn server with two workers and low limits, and a way to make keys."""

    def __init__(self, server: GunicornServer, database_url: str) -> None:
        self.server = server
        self.database_url = database_url

    def new_key(self) -> str:
        from audit import AuditStore
        from service.usecases.api_keys import create_key

        store = AuditStore.from_url(self.database_url)
        try:
            return create_key(store.engine, "channel", f"e2e-limits-{secrets.token_hex(3)}")
        finally:
            store.dispose()

    def get(self, key: str | None) -> requests.Response:
        """One request on a connection of its own, so that either worker may take it."""
        headers = {"Connection": "close"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return requests.get(self.server.url("/v1/consents/c_none"), headers=headers,
                            timeout=HTTP_TIMEOUT_S)


@pytest.fixture(scope="module", params=["embedded", "redis"])
def limited(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limited]:
    """A server counting in the host's file (no Redis), then one counting in Redis."""

    settings = {}
    if request.param == "redis":
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            unavailable(f"Redis at {REDIS_URL} is not reachable: {exc}")
        settings["FLASHLOAN_REDIS_URL"] = REDIS_URL
    workdir = tmp_path_factory.mktemp(f"limits-{request.param}")
    url = f"sqlite:///{workdir / 'flashloan.db'}"
    migrate(url)
    server = GunicornServer(f"limits-{request.param}", workdir, {
        **settings,
        "FLASHLOAN_ENV": "test",
        "FLASHLOAN_DATABASE_URL": url,
        "FLASHLOAN_PII_KEY": PII_KEY,
        "FLASHLOAN_RATE_LIMIT": f"{KEY_LIMIT}/minute",
        "FLASHLOAN_AUTH_FAILURE_LIMIT": f"{FAILURE_LIMIT}/minute",
    }, workers=2)
    try:
        server.spawn()
        server.wait_ready()
        yield Limited(server, url)
    finally:
        code = server.stop()
    assert code == 0, server.log_text()
    assert "Traceback" not in server.log_text(), server.log_text()


def test_a_key_gets_one_allowance_whichever_worker_answers(limited: Limited) -> None:
    key = limited.new_key()
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: limited.get(key), range(5 * KEY_LIMIT)))
    codes = [r.status_code for r in responses]
    assert codes.count(404) == KEY_LIMIT, codes
    assert codes.count(429) == 4 * KEY_LIMIT, codes
    for response in responses:
        if response.status_code == 429:
            assert_envelope(response, 429, "rate_limited")
            assert int(response.headers["Retry-After"]) >= 1


def test_floods_without_a_valid_key_are_refused_after_the_failure_limit(
        limited: Limited) -> None:
    flood = [None if n % 2 else f"fl_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
             for n in range(3 * FAILURE_LIMIT)]
    responses = [limited.get(key) for key in flood]
    codes = [r.status_code for r in responses]
    assert codes == [401] * FAILURE_LIMIT + [429] * (2 * FAILURE_LIMIT), codes
    for response in responses[FAILURE_LIMIT:]:
        assert_envelope(response, 429, "rate_limited")
        assert int(response.headers["Retry-After"]) >= 1


def test_valid_keys_are_answered_while_their_address_is_refused_for_failing(
        limited: Limited) -> None:
    seen = limited.new_key()
    assert limited.get(seen).status_code == 404
    # Past the failure limit, whatever this address sent before.
    for _ in range(FAILURE_LIMIT + 1):
        bad = limited.get(f"fl_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}")
    assert_envelope(bad, 429, "rate_limited")
    never_seen = limited.new_key()
    codes = [limited.get(key).status_code for key in (never_seen, seen) * 3]
    assert codes == [404] * 6, codes
    refused = limited.get(f"fl_{never_seen.split('_')[1]}_{'x' * 43}")
    assert_envelope(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
