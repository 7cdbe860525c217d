"""HTTP adapters against the real stub server: every failure arrives as a typed error."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from datasources import SCOPES
from datasources.base import empty_record
from datasources.errors import SourceMalformed, SourceTimeout, SourceUnavailable
from datasources.http import HttpSource, SourceHttpClient, wire

from ...unit.datasources.fakes import NID, wait_until


def test_answers_every_source_over_one_pooled_connection(start_server, make_client, world):
    server = start_server()
    client = make_client(server)
    for _ in range(3):
        for scope in SCOPES:
            assert HttpSource(scope, client).fetch(NID, timeout=2.0) == world.record(scope, NID)
    assert server.request_counts == dict.fromkeys(SCOPES, 3)
    assert server.connections_opened == 1


@pytest.mark.parametrize(("fault", "kind", "retryable", "message"), [
    ("status:500", SourceUnavailable, True, "HTTP 500"),
    ("status:503", SourceUnavailable, True, "HTTP 503"),
    ("status:403", SourceUnavailable, False, "rejected the query with HTTP 403"),
    ("status:404", SourceUnavailable, False, "HTTP 404"),
    ("status:302", SourceMalformed, False, "unexpected HTTP 302"),
    ("error:1", SourceUnavailable, True, "HTTP 503"),
    ("reset", SourceUnavailable, True, "connection failed"),
    ("malformed", SourceMalformed, False, "not valid JSON"),
    ("wrong_schema", SourceMalformed, False, "does not match the record schema"),
    ("oversize", SourceMalformed, False, "exceeds the size limit of 262144 bytes"),
])
def test_wire_faults_become_typed_failures(start_server, make_client, fault, kind, retryable,
                                           message):
    server = start_server(f"credit_report={fault}")
    client = make_client(server)
    with pytest.raises(kind, match=message) as caught:
        HttpSource("credit_report", client).fetch(NID, timeout=2.0)
    assert type(caught.value) is kind
    assert caught.value.retryable is retryable
    assert caught.value.scope == "credit_report"
    assert NID not in str(caught.value)
    # The same client keeps working for the sources that behave.
    assert HttpSource("court_records", client).fetch(NID, timeout=2.0) is not None


@pytest.mark.parametrize("fault", ["hang", "slow:3000"])
def test_read_timeout_is_a_timeout_and_releases_the_server(start_server, make_client, fault):
    server = start_server(f"court_records={fault}")
    client = make_client(server, read_timeout=5.0)
    started = time.perf_counter()
    with pytest.raises(SourceTimeout) as caught:
        HttpSource("court_records", client).fetch(NID, timeout=0.3)
    assert 0.25 <= time.perf_counter() - started < 2.0
    assert caught.value.retryable is True
    # The client dropped the connection, so the server's handler stops waiting too.
    assert wait_until(lambda: server.in_progress == 0, timeout=3.0)


def test_client_read_timeout_caps_a_longer_call_timeout(start_server, make_client):
    server = start_server("court_records=hang")
    client = make_client(server, read_timeout=0.2)
    started = time.perf_counter()
    with pytest.raises(SourceTimeout):
        HttpSource("court_records", client).fetch(NID, timeout=30.0)
    assert time.perf_counter() - started < 2.0


def test_a_declared_oversize_body_is_refused_unread(start_server, make_client, world):
    server = start_server()
    assert len(wire.encode_answer("provident_fund", world.record("provident_fund", NID))) > 256
    client = make_client(server, max_body_bytes=256)
    with pytest.raises(SourceMalformed, match="exceeds the size limit of 256 bytes"):
        HttpSource("provident_fund", client).fetch(NID, timeout=2.0)


def test_an_explicit_no_record_is_the_typed_empty_answer(start_server, make_client):
    server = start_server("income_tax=no_record")
    client = make_client(server)
    assert HttpSource("income_tax", client).fetch(NID, timeout=2.0) == empty_record("income_tax")


def test_a_wrong_path_is_not_mistaken_for_no_record(start_server):
    server = start_server()
    with (SourceHttpClient(server.url + "/wrong-prefix") as client,
          pytest.raises(SourceUnavailable, match="HTTP 404") as caught):
        HttpSource("income_tax", client).fetch(NID, timeout=2.0)
    assert caught.value.retryable is False


def test_refused_connection_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (SourceHttpClient(f"http://127.0.0.1:{port}") as client,
          pytest.raises(SourceUnavailable, match="connection failed") as caught):
        HttpSource("income_tax", client).fetch(NID, timeout=2.0)
    assert caught.value.retryable is True


def test_server_rejects_bad_queries(start_server):
    server = start_server()
    with requests.Session() as session:
        url = server.url + wire.query_path("income_tax")
        assert session.post(url, data=b'{"national_id": "123"}', timeout=2).status_code == 422
        assert session.post(url, data=b"not json", timeout=2).status_code == 422
        assert session.post(url, data=b"x" * 5000, timeout=2).status_code == 413
        assert session.post(server.url + "/v1/sources/bank/query", data=b"{}",
                            timeout=2).status_code == 404
        assert session.get(server.url + "/healthz", timeout=2).json() == {"ok": True}
    assert server.request_counts["income_tax"] == 0  # none of them was a query
