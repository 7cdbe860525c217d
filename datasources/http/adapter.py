"""The HTTP adapter of one source: a scope bound to the shared client."""

from __future__ import annotations

from typing import Any

from datasources import SCOPES
from datasources.base import check_scope
from datasources.http.client import SourceHttpClient
from datasources.identity import NationalId, as_national_id
from datasources.records import SourceRecord


class HttpSource:
    """A source answered by a remote server, through the worker's one pooled client."""

    def __init__(self, scope: str, client: SourceHttpClient) -> None:
        self.scope = check_scope(scope)
        self.client = client

    def __repr__(self) -> str:
        return f"HttpSource({self.scope!r}, {self.client.base_url!r})"

    def fetch(self, national_id: NationalId | str, *, timeout: float) -> SourceRecord:
        """Return the person's record from the remote source."""
        nid = as_national_id(national_id).number  # a malformed ID never leaves the process
        return self.client.query(self.scope, nid, timeout=timeout)


def build_http_sources(base_url: str, **client_options: Any) -> dict[str, HttpSource]:
    """Return one HTTP source per scope, all sharing one new client."""
    client = SourceHttpClient(base_url, **client_options)
    return {scope: HttpSource(scope, client) for scope in SCOPES}
