"""HTTP adapters: one pooled client per worker, one adapter per source (see docs/datasources.md)."""

from datasources.http.adapter import HttpSource, build_http_sources
from datasources.http.client import SourceHttpClient

__all__ = ["HttpSource", "SourceHttpClient", "build_http_sources"]
