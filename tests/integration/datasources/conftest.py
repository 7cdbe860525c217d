"""Real stub source servers on localhost, and HTTP clients that are closed after each test."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from datasources.http import SourceHttpClient
from datasources.stub.adapters import StubWorld
from datasources.stub.behaviour import parse_faults, parse_latency
from datasources.stub.server import StubSourceServer, running_server

from ...unit.datasources.test_stub_world import EXAMPLE


@pytest.fixture(scope="session")
def world() -> StubWorld:
    """The stub world with the example fixtures (dishonest debtor, no tax record, ...)."""
    return StubWorld.from_file(EXAMPLE)


@pytest.fixture
def start_server(world: StubWorld) -> Iterator[Callable[..., StubSourceServer]]:
    """Start a stub source server with the given faults and latency; stopped after the test."""
    with contextlib.ExitStack() as stack:
        def start(faults: str = "", latency: str = "") -> StubSourceServer:
            return stack.enter_context(running_server(world, parse_latency(latency),
                                                      parse_faults(faults)))

        yield start


@pytest.fixture
def make_client(start_server) -> Iterator[Callable[..., SourceHttpClient]]:  # type: ignore[no-untyped-def]
    """Make clients of a server; closed before the servers stop."""
    clients: list[SourceHttpClient] = []

    def make(server: StubSourceServer, **options: object) -> SourceHttpClient:
        client = SourceHttpClient(server.url, **options)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
