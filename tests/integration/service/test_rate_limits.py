"""Rate limits: one allowance per key for every worker of a host (with Redis, of every host);
failed authentications limited per client address, never a valid key; unknown key ids looked
up once."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from tests.databases import unavailable
from tests.e2e.gunicorn_server import free_port

HOME = "127.0.0.1"
ELSEWHERE = "198.51.100.7"
REDIS_URL = "redis://127.0.0.1:6379/15"


def call(client, key: str | None = None, *, address: str = HOME,
         headers: dict[str, str] | None = None, path: str = "/v1/consents/c_none"):
    """GET ``path`` from ``address`` with ``key`` (or none)."""
    sent = {"Authorization": f"Bearer {key}"} if key else {}
    return client.http.get(path, headers={**sent, **(headers or {})},
                           environ_base={"REMOTE_ADDR": address})


def unknown_key() -> str:
    return f"fl_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def assert_rate_limited(response) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert set(response.get_json()["error"]) == {"code", "message", "fields"}
    assert int(response.headers["Retry-After"]) >= 1


@contextmanager
def key_lookups(client) -> Iterator[list[str]]:
    """Record every statement on the api_keys table while the block runs."""
    engine = client.app.extensions["flashloan"].store.engine
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:
        if "api_keys" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_the_workers_of_one_host_share_a_keys_allowance(make_client):
    first = make_client(rate_limit="3/minute")
    answered = call(first, first.keys["channel"])
    assert (answered.headers["X-RateLimit-Limit"], answered.headers["X-RateLimit-Remaining"]) == (
        "3", "2")
    codes = [answered.status_code, call(first, first.keys["channel"]).status_code]
    # Another worker of the same host: the same database and var folder, its own process state.
    second = make_client(rate_limit="3/minute")
    codes += [call(second, first.keys["channel"]).status_code for _ in range(2)]
    assert codes == [404, 404, 404, 429]
    assert_rate_limited(call(first, first.keys["channel"]))
    assert call(second, first.keys["other_channel"]).status_code == 404


def test_failed_authentications_are_limited_per_client_address(make_client):
    client = make_client(auth_failure_limit="4/minute")
    assert call(client, client.keys["channel"]).status_code == 404  # verified before the flood
    wrong_secret = f"fl_{client.keys['auditor'].split('_')[1]}_{'x' * 43}"
    flood = [None, "not-a-flashloan-key", unknown_key(), wrong_secret, unknown_key(), None]
    responses = [call(client, key) for key in flood]
    assert [r.status_code for r in responses] == [401, 401, 401, 401, 429, 429]
    for response in responses[4:]:
        assert_rate_limited(response)
    # Another address has an allowance of its own.
    assert call(client, unknown_key(), address=ELSEWHERE).status_code == 401


@pytest.fixture(params=["host", "redis"])
def counters(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings that count the limits in the host's counter file, then in Redis."""
    if request.param == "host":
        return {}
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL} is not reachable: {exc}")
    return {"redis_url": REDIS_URL}


def test_valid_keys_pass_while_their_address_is_over_the_failure_limit(make_client, counters):
    client = make_client(auth_failure_limit="3/minute", **counters)
    # Another worker of the host that remembers no key: each one it sees is looked up, as
    # once a remembered key has expired.
    forgetful = make_client(auth_failure_limit="3/minute", key_cache_s=0, **counters)
    channel = client.keys["channel"]
    assert call(client, channel).status_code == 404  # remembered from now on
    assert [call(client, unknown_key()).status_code for _ in range(4)] == [401] * 3 + [429]
    wrong_secret = f"fl_{channel.split('_')[1]}_{'x' * 43}"
    for refused in (None, "not-a-flashloan-key", unknown_key(), wrong_secret):
        for valid in (call(client, channel), call(forgetful, channel),
                      call(client, client.keys["other_channel"]),
                      call(forgetful, forgetful.keys["other_channel"])):
            assert valid.status_code == 404, valid.get_json()  # past authentication
        assert_rate_limited(call(client, refused))
    # A key's requests count against its own allowance, not its address's.
    first = call(client, client.keys["auditor"])
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == (
        "600", "599")


def test_a_flood_of_made_up_key_ids_costs_one_lookup_per_id(make_client):
    client = make_client(auth_failure_limit="5/minute")
    made_up = [unknown_key() for _ in range(4)]
    with key_lookups(client) as lookups:
        codes = [call(client, made_up[n % 4]).status_code for n in range(40)]
    assert codes == [401] * 5 + [429] * 35
    assert len(lookups) == 4, lookups


def test_an_unknown_key_id_is_looked_up_once_while_it_is_remembered(make_client):
    client = make_client(auth_failure_limit="1000/minute")
    key = unknown_key()
    with key_lookups(client) as lookups:
        codes = [call(client, key).status_code for _ in range(10)]
    assert codes == [401] * 10
    assert len(lookups) == 1, lookups


def test_unknown_key_ids_never_push_known_keys_out_of_the_cache(make_client):
    from service.web.auth import KeyRing

    client = make_client()
    wired = client.app.extensions["flashloan"]
    ring = KeyRing(wired.store.engine, wired.limits, ttl_s=60, capacity=8)
    known = f"Bearer {client.keys['channel']}"
    with client.app.test_request_context():
        ring.authenticate(known, HOME)
        for _ in range(50):
            try:
                ring.authenticate(f"Bearer {unknown_key()}", HOME)
            except Exception as exc:
                assert getattr(exc, "status", None) == 401, exc
        assert len(ring) <= 2 * 8
        with key_lookups(client) as lookups:
            assert ring.authenticate(known, HOME).role == "channel"
    assert lookups == []


def test_the_client_address_is_the_one_the_trusted_proxy_forwards(make_client):
    client = make_client(auth_failure_limit="2/minute", trusted_proxies=1)

    def through_proxy(client_address: str):
        return call(client, unknown_key(), headers={"X-Forwarded-For": client_address})

    codes = [through_proxy("203.0.113.7").status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    assert through_proxy("203.0.113.8").status_code == 401


def test_forwarded_addresses_are_not_believed_without_a_trusted_proxy(make_client):
    client = make_client(auth_failure_limit="2/minute")
    codes = [call(client, unknown_key(), headers={"X-Forwarded-For": f"203.0.113.{n}"})
             .status_code for n in range(3)]
    assert codes == [401, 401, 429]


def test_limits_that_cannot_be_counted_are_a_503_in_the_envelope(make_client):
    client = make_client(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    response = call(client, client.keys["channel"])
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "unavailable"
    assert int(response.headers["Retry-After"]) >= 1


def test_two_apps_in_one_process_count_apart(make_client, tmp_path):
    # Two hosts' workers in one process (var folders of their own): each app owns its limits,
    # counts only its own requests and applies the limit it was configured with.
    first = make_client(rate_limit="2/minute", auth_failure_limit="2/minute")
    second = make_client(rate_limit="3/minute", auth_failure_limit="3/minute",
                         var_dir=tmp_path / "another-host")
    assert first.app.extensions["flashloan"].limits is not (
        second.app.extensions["flashloan"].limits)
    key = first.keys["channel"]
    assert [call(first, key).status_code for _ in range(3)] == [404, 404, 429]
    answered = call(second, key)
    assert (answered.status_code, answered.headers["X-RateLimit-Limit"],
            answered.headers["X-RateLimit-Remaining"]) == (404, "3", "2")
    assert [call(second, key).status_code for _ in range(3)] == [404, 404, 429]
    assert [call(first, unknown_key()).status_code for _ in range(3)] == [401, 401, 429]
    assert [call(second, unknown_key()).status_code for _ in range(4)] == [401, 401, 401, 429]
