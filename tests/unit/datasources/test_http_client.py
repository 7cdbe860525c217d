"""The HTTP client's configuration and error translation, without a network."""

from __future__ import annotations

import pytest
import requests
import urllib3

from datasources.errors import SourceMalformed, SourceTimeout, SourceUnavailable
from datasources.http import HttpSource, SourceHttpClient
from datasources.http.client import _translate
from datasources.identity import InvalidNationalId


def test_one_session_with_a_pool_and_no_library_retries():
    with SourceHttpClient("http://127.0.0.1:9", pool_maxsize=24) as client:
        session = client.session
        assert client.session is session
        adapter = session.get_adapter("http://127.0.0.1:9/")
        assert adapter._pool_maxsize == 24
        assert adapter.max_retries.total == 0
        assert session.verify is True
        assert session.trust_env is False


def test_a_forked_worker_gets_its_own_session():
    with SourceHttpClient("http://127.0.0.1:9") as client:
        first = client.session
        client._pid = -1  # as seen from a child process after fork
        assert client.session is not first


@pytest.mark.parametrize(("options", "message"), [
    ({"base_url": "ftp://x"}, "sources URL must be http"),
    ({"base_url": ""}, "sources URL must be http"),
    ({"connect_timeout": 0}, "connect_timeout must be a positive number"),
    ({"read_timeout": float("inf")}, "read_timeout must be a positive number"),
    ({"max_body_bytes": 10}, "max_body_bytes must be at least 256"),
    ({"pool_maxsize": 0}, "pool_maxsize must be at least 1"),
])
def test_bad_client_settings(options, message):
    options = {"base_url": "http://127.0.0.1:9", **options}
    with pytest.raises(ValueError, match=message):
        SourceHttpClient(options.pop("base_url"), **options)


def test_timeouts_must_be_finite_and_positive():
    with SourceHttpClient("http://127.0.0.1:9") as client:
        with pytest.raises(SourceTimeout, match="no time left"):
            client.query("income_tax", "x", timeout=0)
        with pytest.raises(ValueError, match="timeout must be a finite number"):
            client.query("income_tax", "x", timeout=float("nan"))


def test_a_bad_national_id_never_leaves_the_process():
    with SourceHttpClient("http://127.0.0.1:9") as client:
        with pytest.raises(InvalidNationalId):
            HttpSource("income_tax", client).fetch("not-an-id", timeout=1.0)
        assert client._session is None  # no session was even needed


@pytest.mark.parametrize(("exc", "kind", "retryable"), [
    (requests.exceptions.ConnectTimeout(), SourceUnavailable, True),
    (requests.exceptions.ReadTimeout(), SourceTimeout, True),
    (requests.exceptions.ConnectionError(urllib3.exceptions.ReadTimeoutError(None, "/", "t")),
     SourceTimeout, True),
    (requests.exceptions.SSLError(), SourceUnavailable, False),
    (requests.exceptions.ConnectionError(), SourceUnavailable, True),
    (requests.exceptions.ChunkedEncodingError(), SourceUnavailable, True),
    (requests.exceptions.ContentDecodingError(), SourceMalformed, False),
    (requests.exceptions.InvalidURL(), SourceUnavailable, False),
    (ConnectionResetError(), SourceUnavailable, True),
    (urllib3.exceptions.ProtocolError(), SourceUnavailable, True),
    (RuntimeError(), SourceUnavailable, False),
])
def test_library_errors_become_ours(exc, kind, retryable):
    error = _translate("credit_report", exc)
    assert type(error) is kind
    assert error.retryable is retryable
    assert error.scope == "credit_report"
