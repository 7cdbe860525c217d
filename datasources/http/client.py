"""One pooled HTTP client per worker, shared by the five HTTP adapters."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from datasources.base import empty_record
from datasources.errors import (
    SourceError,
    SourceMalformed,
    SourceTimeout,
    SourceUnavailable,
    error_for_status,
)
from datasources.http import wire
from datasources.records import SourceRecord

log = logging.getLogger(__name__)

USER_AGENT = "flashloan-datasources/1"


class SourceHttpClient:
    """Query source servers over one pooled ``requests`` session.

    Parameters
    ----------
    base_url
        ``http(s)://host[:port][/prefix]`` of the source gateway.
    connect_timeout, read_timeout
        Upper bounds in seconds; each call also caps both by its own ``timeout``.
    verify
        TLS verification: ``True`` (the default), or a CA bundle path. ``False`` is for
        local experiments only.
    cert
        A client certificate (path, or (cert, key) paths) for mutual TLS.
    max_body_bytes
        Answers larger than this are refused as malformed, without reading them whole.
    pool_maxsize
        Connections kept per host; at least the gatherer's worker count.
    """

    def __init__(self, base_url: str, *, connect_timeout: float = 1.0, read_timeout: float = 5.0,
                 verify: bool | str = True, cert: str | tuple[str, str] | None = None,
                 max_body_bytes: int = 256 * 1024, pool_maxsize: int = 32,
                 headers: Mapping[str, str] | None = None) -> None:
        parts = urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"sources URL must be http(s)://host[:port]; got {base_url!r}")
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if not (isinstance(value, int | float) and 0 < value < math.inf):
                raise ValueError(f"{name} must be a positive number of seconds; got {value!r}")
        if max_body_bytes < 256:
            raise ValueError(f"max_body_bytes must be at least 256; got {max_body_bytes}")
        if pool_maxsize < 1:
            raise ValueError(f"pool_maxsize must be at least 1; got {pool_maxsize}")
        if verify is False:
            log.warning("TLS verification is off for the source client; never in production")
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.verify = verify
        self.cert = cert
        self.max_body_bytes = max_body_bytes
        self.pool_maxsize = pool_maxsize
        self._headers = {"User-Agent": USER_AGENT, "Accept": wire.JSON_TYPE,
                         "Accept-Encoding": "identity", "Content-Type": wire.JSON_TYPE,
                         **(headers or {})}
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._pid = 0

    def __enter__(self) -> SourceHttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def session(self) -> requests.Session:
        """Return the session of this process, creating it on first use (and after a fork)."""
        with self._lock:
            if self._session is None or self._pid != os.getpid():
                # A session inherited through fork shares sockets with the parent: start anew.
                self._session = self._new_session()
                self._pid = os.getpid()
            return self._session

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        # No retries here: the gatherer retries, within its deadline, only what is retryable.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.pool_maxsize, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.verify = self.verify
        session.cert = self.cert
        session.trust_env = False  # proxies and .netrc from the environment must not apply
        return session

    def close(self) -> None:
        """Close the pooled connections."""
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def query(self, scope: str, national_id: str, *, timeout: float) -> SourceRecord:
        """Ask the source of ``scope`` for the person's record within ``timeout`` seconds."""
        if not (isinstance(timeout, int | float) and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a finite number of seconds; got {timeout!r}")
        if timeout <= 0:
            raise SourceTimeout(scope, "no time left for the call")
        url = self.base_url + wire.query_path(scope)
        deadline = time.monotonic() + timeout
        limits = (min(self.connect_timeout, timeout), min(self.read_timeout, timeout))
        try:
            with self.session.post(url, data=wire.encode_query(national_id),
                                   headers=self._headers, timeout=limits, stream=True,
                                   allow_redirects=False) as response:
                body = self._read_body(scope, response, deadline)
                return self._interpret(scope, response, body)
        except SourceError:
            raise
        except Exception as exc:
            raise _translate(scope, exc) from exc

    def _read_body(self, scope: str, response: requests.Response, deadline: float) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise SourceMalformed(scope, f"answer exceeds the size limit of "
                                         f"{self.max_body_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=16 * 1024):
            size += len(chunk)
            if size > self.max_body_bytes:
                raise SourceMalformed(scope, f"answer exceeds the size limit of "
                                             f"{self.max_body_bytes} bytes")
            # The read timeout bounds each socket read; this bounds the whole answer.
            if time.monotonic() > deadline:
                raise SourceTimeout(scope, "answer did not arrive within the call's timeout")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _interpret(scope: str, response: requests.Response, body: bytes) -> SourceRecord:
        status = response.status_code
        if status == 200:
            kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind != wire.JSON_TYPE:
                raise SourceMalformed(scope, "answer is not JSON (Content-Type)")
            return wire.decode_answer(scope, body)
        if status == 404 and wire.is_no_record(body):
            return empty_record(scope)
        raise error_for_status(scope, status)


def _translate(scope: str, exc: Exception) -> SourceError:
    """Return our error for a library's exception."""
    name = type(exc).__name__
    ex = requests.exceptions
    if isinstance(exc, ex.ConnectTimeout):
        return SourceUnavailable(scope, "connection timed out")
    if isinstance(exc, ex.ReadTimeout) or _is_read_timeout(exc):
        return SourceTimeout(scope, "no answer within the read timeout")
    if isinstance(exc, ex.SSLError):
        return SourceUnavailable(scope, "TLS handshake or verification failed", retryable=False)
    if isinstance(exc, ex.ConnectionError | ex.ChunkedEncodingError):
        return SourceUnavailable(scope, f"connection failed ({name})")
    if isinstance(exc, ex.ContentDecodingError):
        return SourceMalformed(scope, "answer could not be decoded")
    if isinstance(exc, ex.RequestException | ValueError):
        return SourceUnavailable(scope, f"request could not be made ({name})", retryable=False)
    if isinstance(exc, OSError | urllib3.exceptions.HTTPError):
        return SourceUnavailable(scope, f"connection failed ({name})")
    return SourceUnavailable(scope, f"unexpected client error ({name})", retryable=False)


def _is_read_timeout(exc: BaseException) -> bool:
    # requests wraps a read timeout met while streaming the body in a ConnectionError.
    seen: Any = exc
    for _ in range(4):
        if isinstance(seen, urllib3.exceptions.ReadTimeoutError | TimeoutError):
            return True
        args = getattr(seen, "args", ())
        seen = args[0] if args and isinstance(args[0], BaseException) else seen.__context__
        if seen is None:
            return False
    return False
