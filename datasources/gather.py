"""Query the consented sources in parallel under one deadline, with retries and breakers."""

from __future__ import annotations

import itertools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait

from datasources.base import Source, check_scope, is_blocking
from datasources.breaker import CircuitBreaker
from datasources.consent import Authorisation, Consent, ConsentGate
from datasources.errors import (
    CircuitOpen,
    ConsentMissing,
    SourceError,
    SourceTimeout,
    SourceUnavailable,
)
from datasources.identity import NationalId, as_national_id
from datasources.outcome import GatherResult, SourceOutcome, status_of
from datasources.records import SourceRecord

log = logging.getLogger(__name__)

# A retry is only worth starting if at least this much of the deadline would be left.
MIN_ATTEMPT_S = 0.05


def authorised_fetch(gate: ConsentGate, source: Source, national_id: str, *, subject: str,
                     consent_id: str, timeout: float, channel: str | None = None,
                     ) -> tuple[SourceRecord, Authorisation]:
    """Ask the gate, then the source; raise ConsentMissing before any I/O if not covered."""
    authorisation = gate.authorise(consent_id, source.scope, subject, channel=channel)
    return source.fetch(national_id, timeout=timeout), authorisation


class _Progress:
    """What a query task has done so far, readable by the gathering that may abandon it."""

    __slots__ = ("abandoned", "attempts", "authorisation", "opened_breaker")

    def __init__(self) -> None:
        self.attempts = 0
        # Whether one of this query's failures opened the source's breaker.
        self.opened_breaker = False
        self.authorisation: Authorisation | None = None
        self.abandoned = False


_instances = itertools.count(1)


class Gatherer:
    """Gather the sources an application needs; build once per worker process, then reuse.

    Parameters
    ----------
    sources
        The adapter of each scope.
    gate
        Asked before every call to a source, retries included.
    deadline_s
        The overall budget of one :meth:`gather`.
    source_timeout_s
        The timeout of one call (capped by what is left of the deadline); the deadline
        when None.
    max_attempts, backoff_base_s, backoff_max_s
        Retries of retryable failures, with jittered exponential backoff, inside the deadline.
    breaker_threshold, breaker_cooldown_s
        Consecutive failures that open a source's breaker, and how long it stays open.
    threads_per_source
        Threads of each source's own pool, shared by all gatherings of this worker
        (default 4: four concurrent calls of each source). Each source has a pool of its
        own, a bulkhead: a source whose calls hang, or whose adapter ignores its timeout,
        holds at most its own threads, and every other source is still called.
    on_outcome
        Called with every source outcome (metrics); its errors are logged and ignored.
    """

    def __init__(self, sources: Mapping[str, Source], gate: ConsentGate, *,
                 deadline_s: float = 10.0, source_timeout_s: float | None = None,
                 max_attempts: int = 3, backoff_base_s: float = 0.05, backoff_max_s: float = 1.0,
                 breaker_threshold: int = 5, breaker_cooldown_s: float = 30.0,
                 threads_per_source: int = 4,
                 on_outcome: Callable[[SourceOutcome], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        if not 0 < deadline_s <= 600:
            raise ValueError(f"deadline_s must be in (0, 600] seconds; got {deadline_s}")
        if source_timeout_s is not None and not source_timeout_s > 0:
            raise ValueError(f"source_timeout_s must be positive seconds; got {source_timeout_s}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1; got {max_attempts}")
        if threads_per_source < 1:
            raise ValueError(f"threads_per_source must be at least 1; got {threads_per_source}")
        if backoff_base_s < 0 or backoff_max_s < 0:
            raise ValueError(f"backoff must be non-negative; got {backoff_base_s}, "
                             f"{backoff_max_s}")
        for scope, source in sources.items():
            if check_scope(scope) != getattr(source, "scope", None):
                raise ValueError(f"source for {scope} must have scope {scope}; "
                                 f"got {getattr(source, 'scope', None)!r}")
        self.sources = dict(sources)
        self.gate = gate
        self.deadline_s = float(deadline_s)
        self.source_timeout_s = float(source_timeout_s or deadline_s)
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.threads_per_source = threads_per_source
        self.on_outcome = on_outcome
        self._clock = clock
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._breakers = {scope: CircuitBreaker(breaker_threshold, breaker_cooldown_s,
                                                clock=clock) for scope in self.sources}
        self._lock = threading.Lock()
        self._executors: dict[str, ThreadPoolExecutor] = {}
        self._pid = 0
        self._closing = threading.Event()
        self._in_flight = 0
        # Names this gatherer's pool threads, so that they can be told apart in a dump.
        self.thread_name_prefix = f"flashloan-gather-{next(_instances)}"

    def __enter__(self) -> Gatherer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def breaker_states(self) -> dict[str, str]:
        """Return the state of each source's breaker: closed, open or half_open."""
        return {scope: breaker.state for scope, breaker in self._breakers.items()}

    def breaker(self, scope: str) -> CircuitBreaker:
        """Return the breaker of ``scope``."""
        return self._breakers[scope]

    def in_flight(self) -> int:
        """Return how many source queries are running right now (on the pool or inline)."""
        with self._lock:
            return self._in_flight

    def pool_threads(self) -> int:
        """Return how many threads this gatherer's pools have started (never above
        ``threads_per_source`` for each source)."""
        prefix = self.thread_name_prefix + "-"
        return sum(t.name.startswith(prefix) for t in threading.enumerate())

    def close(self) -> None:
        """Stop the pool: no new gatherings; waiting retries give up; running calls finish."""
        self._closing.set()
        with self._lock:
            executors, self._executors = self._executors, {}
        for executor in executors.values():
            executor.shutdown(wait=False, cancel_futures=True)

    def _pools(self) -> dict[str, ThreadPoolExecutor]:
        """Return each source's pool, made on first use in this process."""
        with self._lock:
            if self._closing.is_set():
                raise RuntimeError("gatherer is closed")
            if self._pid != os.getpid():
                # Threads do not survive fork: a worker forked from a parent that gathered
                # gets pools of its own.
                self._executors, self._pid = {}, os.getpid()
            for scope in self.sources:
                if scope not in self._executors:
                    self._executors[scope] = ThreadPoolExecutor(
                        self.threads_per_source,
                        thread_name_prefix=f"{self.thread_name_prefix}-{scope}")
            return self._executors

    def gather(self, national_id: NationalId | str, subject: str, consent_id: str,
               scopes: Iterable[str], *, channel: str | None = None,
               consent: Consent | None = None) -> GatherResult:
        """Query every scope in parallel and return each one's outcome by the deadline.

        ``subject`` is the pseudonymised national ID the consent must name; ``channel``,
        when given, must be the consent's channel too. ``consent``, when the caller has just
        read it, authorises the first call of each source without reading it again; every
        retry reads it afresh, so a withdrawal still stops the next call.
        """
        nid = as_national_id(national_id)
        wanted = list(dict.fromkeys(check_scope(s) for s in scopes))
        pools = self._pools()
        start = self._clock()
        deadline = start + self.deadline_s
        outcomes: dict[str, SourceOutcome] = {}
        tasks: dict[Future[SourceOutcome], tuple[str, _Progress]] = {}
        inline: list[tuple[str, Source]] = []
        for scope in wanted:
            source = self.sources.get(scope)
            if source is None:
                outcomes[scope] = self._outcome(scope, start, SourceUnavailable(
                    scope, "no source is configured for this scope", retryable=False), 0, None)
                continue
            if not is_blocking(source):
                inline.append((scope, source))
                continue
            progress = _Progress()
            future = pools[scope].submit(self._query, scope, source, nid, subject, consent_id,
                                         channel, start, deadline, progress, consent)
            tasks[future] = (scope, progress)
        # Sources that answer from memory are asked here, while the pool waits on the others:
        # a hand-off to a pool thread would cost more than their answer. Same consent checks,
        # breaker, retries and deadline as on the pool.
        for scope, source in inline:
            outcomes[scope] = self._query(scope, source, nid, subject, consent_id, channel,
                                          start, deadline, _Progress(), consent)
        if tasks:
            wait(tasks, timeout=max(0.0, deadline - self._clock()))
        for future, (scope, progress) in tasks.items():
            if future.done() and not future.cancelled():
                outcomes[scope] = future.result()
                continue
            # Past the deadline: the task may not start any further call, and its pool
            # thread comes back once its current call reaches its own timeout.
            progress.abandoned = True
            future.cancel()
            error = SourceTimeout(scope, f"no answer within the deadline of {self.deadline_s:g} s")
            outcomes[scope] = self._outcome(scope, start, error, progress.attempts,
                                            progress.authorisation)
        ordered = {scope: outcomes[scope] for scope in wanted}
        for outcome in ordered.values():
            self._report(outcome)
        return GatherResult(ordered, (self._clock() - start) * 1000)

    def _query(self, scope: str, source: Source, nid: NationalId, subject: str, consent_id: str,
               channel: str | None, start: float, deadline: float,
               progress: _Progress, consent: Consent | None = None) -> SourceOutcome:
        with self._lock:
            self._in_flight += 1
        try:
            return self._attempts(scope, source, nid, subject, consent_id, channel, start,
                                  deadline, progress, consent)
        except Exception as exc:  # a bug here must cost one source, not the whole gathering
            log.error("gathering %s failed with %s", scope, type(exc).__name__, exc_info=True)
            return self._outcome(scope, start, SourceUnavailable(
                scope, f"gathering failed ({type(exc).__name__})", retryable=False),
                progress.attempts, progress.authorisation)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _attempts(self, scope: str, source: Source, nid: NationalId, subject: str, consent_id: str,
                  channel: str | None, start: float, deadline: float,
                  progress: _Progress, consent: Consent | None = None) -> SourceOutcome:
        breaker = self._breakers[scope]
        last: SourceError | None = None
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0 or progress.abandoned:
                last = last or SourceTimeout(scope, "the deadline passed before the call")
                break
            try:
                if consent is not None and progress.attempts == 0:
                    progress.authorisation = self.gate.check(consent, consent_id, scope,
                                                             subject, channel=channel)
                else:
                    progress.authorisation = self.gate.authorise(consent_id, scope, subject,
                                                                 channel=channel)
            except ConsentMissing as exc:
                # Also mid-retry: a withdrawal stops the very next call.
                return self._outcome(scope, start, exc, progress.attempts, None)
            if not breaker.allow():
                last = last or CircuitOpen(scope, "circuit breaker is open; not called")
                break
            progress.attempts += 1
            try:
                record = source.fetch(nid, timeout=min(self.source_timeout_s, remaining))
            except SourceError as exc:
                error = exc
            except Exception as exc:  # an adapter bug must not escape as someone else's error
                log.warning("source %s adapter raised %s", scope, type(exc).__name__,
                            exc_info=True)
                error = SourceUnavailable(scope, f"adapter failed ({type(exc).__name__})",
                                          retryable=False)
            else:
                breaker.record_success()
                return SourceOutcome(scope, "ok", record, None, progress.attempts,
                                     (self._clock() - start) * 1000,
                                     progress.authorisation.consent_id,
                                     progress.authorisation.consent_digest)
            if breaker.record_failure():
                progress.opened_breaker = True
            last = error
            if not error.retryable or progress.attempts >= self.max_attempts:
                break
            delay = self._backoff(progress.attempts)
            if self._clock() + delay + MIN_ATTEMPT_S >= deadline:
                break
            if self._closing.wait(delay):
                break
        return self._outcome(scope, start, last, progress.attempts, progress.authorisation,
                             opened_breaker=progress.opened_breaker)

    def _backoff(self, attempts: int) -> float:
        """Return the pause before the next attempt: exponential, with equal jitter."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempts - 1))
        with self._rng_lock:
            return ceiling * (0.5 + 0.5 * self._rng.random())

    def _outcome(self, scope: str, start: float, error: SourceError, attempts: int,
                 authorisation: Authorisation | None, *,
                 opened_breaker: bool = False) -> SourceOutcome:
        return SourceOutcome(scope, status_of(error), None, str(error), attempts,
                             (self._clock() - start) * 1000,
                             authorisation.consent_id if authorisation else None,
                             authorisation.consent_digest if authorisation else None,
                             opened_breaker)

    def _report(self, outcome: SourceOutcome) -> None:
        if self.on_outcome is None:
            return
        try:
            self.on_outcome(outcome)
        except Exception:
            log.exception("on_outcome hook failed for source %s", outcome.scope)
