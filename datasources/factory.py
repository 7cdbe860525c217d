"""Build the five sources chosen by configuration: stub or HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datasources.base import Source

SOURCE_KINDS = ("stub", "http")


def build_sources(kind: str, *, sources_url: str | None = None, latency: str = "",
                  faults: str = "", fixtures_path: str | Path | None = None,
                  **options: Any) -> dict[str, Source]:
    """Return one source per scope.

    ``stub``: stub sources sharing one world (fixtures from ``fixtures_path``), with the
    stub ``latency`` and ``faults`` settings; ``options`` go to the stub sources (``seed``).
    ``http``: HTTP sources at ``sources_url`` sharing one pooled client; ``options`` go to
    :class:`~datasources.http.SourceHttpClient`. The stub settings do not apply to it.
    """
    if kind == "stub":
        from datasources.stub.adapters import StubWorld, build_stub_sources

        world = StubWorld.from_file(fixtures_path)
        return dict(build_stub_sources(world, latency, faults, **options))
    if kind == "http":
        if not sources_url:
            raise ValueError("sources_url must be set for http sources; got none")
        from datasources.http import build_http_sources

        return dict(build_http_sources(sources_url, **options))
    raise ValueError(f"source kind must be one of {', '.join(SOURCE_KINDS)}; got {kind!r}")


def close_sources(sources: Mapping[str, Source]) -> None:
    """Close what the sources hold open (the shared HTTP client), once each."""
    seen: set[int] = set()
    for source in sources.values():
        client = getattr(source, "client", None)
        if client is not None and id(client) not in seen and hasattr(client, "close"):
            seen.add(id(client))
            client.close()
