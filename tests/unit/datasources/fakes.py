"""Small hand-written fakes for the datasources tests: counting sources and a consent store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from datasources import SCOPES
from datasources.base import empty_record
from datasources.consent import Consent, ConsentGate
from datasources.errors import SourceTimeout
from datasources.identity import make_national_id
from datasources.records import SourceRecord

NID = make_national_id("440106", datetime(1990, 5, 17).date(), 123)
SUBJECT = "hmac-of-the-applicant"
NOW = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


class Sleep:
    """A scripted call that takes ``seconds`` (and times out like a well-behaved adapter)."""

    def __init__(self, seconds: float, then: SourceRecord | Exception | None = None) -> None:
        self.seconds = seconds
        self.then = then


class Block:
    """A scripted call that ignores its timeout and waits for the test to release it."""

    def __init__(self) -> None:
        self.release = threading.Event()


class CountingSource:
    """A source that counts its calls, records when each ran, and follows a script.

    Each call takes the next script item (the last one repeats): a record to return, an
    exception to raise, a :class:`Sleep` or a :class:`Block`.
    """

    def __init__(self, scope: str, *script: object) -> None:
        self.scope = scope
        self.script = list(script) or [empty_record(scope)]
        self.calls = 0
        self.timeouts: list[float] = []
        self.intervals: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def fetch(self, national_id: str, *, timeout: float) -> SourceRecord:
        with self._lock:
            step = self.script[min(self.calls, len(self.script) - 1)]
            self.calls += 1
            self.timeouts.append(timeout)
        start = time.perf_counter()
        try:
            return self._run(step, timeout)
        finally:
            with self._lock:
                self.intervals.append((start, time.perf_counter()))

    def _run(self, step: object, timeout: float) -> SourceRecord:
        if isinstance(step, Block):
            step.release.wait(30)
            raise SourceTimeout(self.scope, "released")
        if isinstance(step, Sleep):
            if step.seconds > timeout:
                time.sleep(timeout)
                raise SourceTimeout(self.scope, "slow")
            time.sleep(step.seconds)
            step = step.then if step.then is not None else empty_record(self.scope)
        if isinstance(step, BaseException):
            raise step
        return step  # type: ignore[return-value]


def counting_sources(*script: object) -> dict[str, CountingSource]:
    """Return one counting source per scope, all with the same script."""
    return {scope: CountingSource(scope, *script) for scope in SCOPES}


class MemoryConsents:
    """An in-memory consent store: the lookup the gate calls, plus withdrawal."""

    def __init__(self, *consents: Consent) -> None:
        self._consents = {c.consent_id: c for c in consents}
        self.lookups = 0
        self._lock = threading.Lock()

    def __call__(self, consent_id: str) -> Consent | None:
        with self._lock:
            self.lookups += 1
            return self._consents.get(consent_id)

    def add(self, consent: Consent) -> None:
        with self._lock:
            self._consents[consent.consent_id] = consent

    def withdraw(self, consent_id: str, at: datetime) -> None:
        with self._lock:
            self._consents[consent_id] = self._consents[consent_id].withdraw(at)


def make_consent(scopes: Iterable[str] = SCOPES, **changes: object) -> Consent:
    """Return a consent live at NOW for SUBJECT, with some fields changed."""
    consent = Consent(consent_id="c-1", subject=SUBJECT, scopes=frozenset(scopes),
                      purpose="credit_application", granted_at=NOW - timedelta(days=1),
                      expires_at=NOW + timedelta(days=30), text_version="auth-2026-01",
                      channel="app-ios")
    return replace(consent, **changes) if changes else consent


def gate_for(*consents: Consent, at: datetime = NOW) -> tuple[ConsentGate, MemoryConsents]:
    """Return a gate over an in-memory store holding ``consents``, with the clock at ``at``."""
    store = MemoryConsents(*consents)
    return ConsentGate(store, clock=lambda: at), store


class Recording:
    """Wrap a source and record when each of its calls started and ended."""

    def __init__(self, source: object) -> None:
        self.source = source
        self.scope = source.scope  # type: ignore[attr-defined]
        self.intervals: list[tuple[float, float]] = []

    def fetch(self, national_id: str, *, timeout: float) -> SourceRecord:
        start = time.perf_counter()
        try:
            return self.source.fetch(national_id, timeout=timeout)  # type: ignore[attr-defined]
        finally:
            self.intervals.append((start, time.perf_counter()))


def all_overlap(intervals: Iterable[tuple[float, float]]) -> bool:
    """Return whether some instant lies inside every interval."""
    spans = list(intervals)
    return max(start for start, _ in spans) < min(end for _, end in spans)


def wait_until(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it holds or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
