"""Building the sources chosen by configuration."""

from __future__ import annotations

import pytest

from datasources import SCOPES
from datasources.base import empty_record
from datasources.factory import build_sources, close_sources
from datasources.http import HttpSource
from datasources.stub.adapters import StubSource

from .fakes import NID
from .test_stub_world import EXAMPLE, NO_TAX


def test_stub_sources_share_one_world_with_fixtures():
    sources = build_sources("stub", latency="5", faults="court_records=hang",
                            fixtures_path=str(EXAMPLE))
    assert set(sources) == set(SCOPES)
    assert all(isinstance(s, StubSource) for s in sources.values())
    assert len({id(s.world) for s in sources.values()}) == 1
    assert sources["income_tax"].fetch(NO_TAX, timeout=1.0) == empty_record("income_tax")


def test_http_sources_share_one_client():
    sources = build_sources("http", sources_url="https://sources.example.test/",
                            connect_timeout=0.5)
    assert all(isinstance(s, HttpSource) for s in sources.values())
    clients = {id(s.client) for s in sources.values()}
    assert len(clients) == 1
    client = sources["income_tax"].client
    assert (client.base_url, client.connect_timeout, client.verify) == (
        "https://sources.example.test", 0.5, True)
    close_sources(sources)


@pytest.mark.parametrize(("kind", "options", "message"), [
    ("grpc", {}, "source kind must be one of stub, http; got 'grpc'"),
    ("http", {}, "sources_url must be set"),
    ("stub", {"latency": "slow"}, "stub latency 'slow'"),
    ("stub", {"faults": "court=hang"}, "stub fault 'court=hang'"),
    ("stub", {"fixtures_path": "/nonexistent/fixtures.json"}, "must be readable"),
])
def test_bad_configuration_is_refused(kind, options, message):
    with pytest.raises(ValueError, match=message):
        build_sources(kind, **options)


def test_stub_sources_accept_a_seed():
    sources = build_sources("stub", seed=None)
    assert sources["court_records"].fetch(NID, timeout=1.0).lawsuits_5y >= 0
