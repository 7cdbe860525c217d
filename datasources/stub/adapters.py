"""Stub source adapters over the synthetic world, with injected latency and faults."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datasources import SCOPES
from datasources.base import check_scope, empty_record
from datasources.errors import (
    SourceMalformed,
    SourceTimeout,
    SourceUnavailable,
    error_for_status,
)
from datasources.identity import NationalId, as_national_id
from datasources.records import SourceRecord
from datasources.stub.behaviour import (
    NO_DELAY,
    Fault,
    FaultSpec,
    LatencyModel,
    parse_faults,
    parse_latency,
)
from datasources.stub.fixtures import apply_fixture, load_fixtures, normalise_fixtures

__all__ = ["FaultSpec", "LatencyModel", "StubSource", "StubWorld", "fault_outcome",
           "parse_faults", "parse_latency"]


class StubWorld:
    """The five records of any national ID: generated, cached, with fixtures laid over.

    Thread-safe. Generating one person costs about a millisecond, so people are kept in a
    bounded least-recently-used cache; fixture people are resolved once, at construction,
    so a bad fixture fails at start-up rather than in the middle of a request.
    """

    def __init__(self, fixtures: Mapping[str, Mapping[str, Any]] | None = None, *,
                 cache_size: int = 10_000) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1; got {cache_size}")
        self._cache: OrderedDict[str, dict[str, SourceRecord]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._pinned: dict[str, dict[str, SourceRecord]] = {}
        for nid, person in normalise_fixtures({} if fixtures is None else fixtures).items():
            records = self._generate(nid)
            for scope, spec in person.items():
                records[scope] = apply_fixture(scope, records[scope], spec,
                                               where=f"stub fixture {nid}")
            self._pinned[nid] = records

    @classmethod
    def from_file(cls, path: str | Path | None, **kwargs: Any) -> StubWorld:
        """Build a world with the fixtures of a JSON file (none when ``path`` is empty)."""
        return cls(load_fixtures(path) if path else None, **kwargs)

    @property
    def fixture_ids(self) -> frozenset[str]:
        """Return the national IDs whose records are pinned by fixtures."""
        return frozenset(self._pinned)

    def records(self, national_id: NationalId | str) -> dict[str, SourceRecord]:
        """Return the person's five records, keyed by scope."""
        nid = as_national_id(national_id).number
        pinned = self._pinned.get(nid)
        if pinned is not None:
            return dict(pinned)
        with self._lock:
            cached = self._cache.get(nid)
            if cached is not None:
                self._cache.move_to_end(nid)
                return dict(cached)
        # Generate outside the lock: two threads may both generate one person, harmlessly.
        records = self._generate(nid)
        with self._lock:
            self._cache[nid] = records
            self._cache.move_to_end(nid)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return dict(records)

    def record(self, scope: str, national_id: NationalId | str) -> SourceRecord:
        """Return one source's record of the person."""
        return self.records(national_id)[check_scope(scope)]

    @staticmethod
    def _generate(nid: str) -> dict[str, SourceRecord]:
        # The world pulls in numpy and scipy: import on first use, not when this module loads.
        from datasources.stub.world import generate, records_at

        return records_at(generate([nid]), 0)


def fault_outcome(scope: str, fault: Fault | None, roll: float) -> SourceRecord | None:
    """Apply a fault after the delay: raise its error, return its record, or None to go on.

    The wire-level faults raise what the HTTP adapter raises for them, so the stub adapters
    and the HTTP adapters against the stub server agree case by case.
    """
    if fault is None:
        return None
    kind = fault.kind
    if kind == "error":
        if roll < (fault.arg if fault.arg is not None else 1.0):
            raise error_for_status(scope, 503)
        return None
    if kind in ("malformed", "oversize", "wrong_schema"):
        raise SourceMalformed(scope, {"malformed": "answer is not valid JSON",
                                      "oversize": "answer exceeds the size limit",
                                      "wrong_schema": "answer does not match the record schema",
                                      }[kind])
    if kind == "status":
        raise error_for_status(scope, int(fault.arg or 500))
    if kind == "reset":
        raise SourceUnavailable(scope, "connection failed (ConnectionError)")
    if kind == "no_record":
        return empty_record(scope)
    return None  # hang and slow act through the delay


class StubSource:
    """A source answering from the synthetic world, as slowly and as badly as configured."""

    def __init__(self, scope: str, world: StubWorld, latency: LatencyModel | None = None,
                 faults: FaultSpec | None = None, *, seed: int | None = 0) -> None:
        self.scope = check_scope(scope)
        self.world = world
        self._delay = (latency or LatencyModel()).for_scope(scope)
        self._fault = (faults or FaultSpec()).for_scope(scope)
        # One generator per source instance, seeded by scope: error:p is reproducible.
        self._rng = random.Random(None if seed is None else f"{seed}:{scope}")
        self._lock = threading.Lock()
        # Without a delay or a fault, an answer comes from memory at once. A faulty source
        # stays on the pool: its retries pause, which must not hold up the gathering thread.
        self.blocking = not (self._delay == NO_DELAY and self._fault is None)

    def __repr__(self) -> str:
        return f"StubSource({self.scope!r}, fault={self._fault})"

    def fetch(self, national_id: NationalId | str, *, timeout: float) -> SourceRecord:
        """Return the person's record after the configured delay, or the configured failure."""
        # A malformed ID is refused before anything else; a parsed one is not parsed again.
        nid = as_national_id(national_id)
        if not (isinstance(timeout, int | float) and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a finite number of seconds; got {timeout!r}")
        if timeout <= 0:
            raise SourceTimeout(self.scope, "no time left for the call")
        with self._lock:
            delay = self._delay.sample_s(self._rng)
            roll = self._rng.random()
        if self._fault is not None and self._fault.kind == "hang":
            delay = math.inf
        elif self._fault is not None and self._fault.kind == "slow":
            delay = (self._fault.arg or 0.0) / 1000
        if delay > timeout:
            # Wait out the caller's timeout only: a hung stub never holds a thread longer.
            time.sleep(timeout)
            raise SourceTimeout(self.scope, f"no answer within {timeout:.3g} s")
        if delay > 0:
            time.sleep(delay)
        faulty = fault_outcome(self.scope, self._fault, roll)
        if faulty is not None:
            return faulty
        return self.world.record(self.scope, nid)


def build_stub_sources(world: StubWorld, latency: str | LatencyModel = "",
                       faults: str | FaultSpec = "", *,
                       seed: int | None = 0) -> dict[str, StubSource]:
    """Return one stub source per scope, sharing ``world``."""
    model = parse_latency(latency) if isinstance(latency, str) else latency
    spec = parse_faults(faults) if isinstance(faults, str) else faults
    return {scope: StubSource(scope, world, model, spec, seed=seed) for scope in SCOPES}
