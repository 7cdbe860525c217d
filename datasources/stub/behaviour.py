"""Latency and faults of the stub sources, parsed from the stub settings (DESIGN §5).

Latency (``FLASHLOAN_STUB_LATENCY_MS``): comma-separated entries, each ``VALUE`` (every
source) or ``SCOPE=VALUE``; a value is milliseconds (``300``) or a log-normal distribution
``lognormal:MEDIAN:P99`` in milliseconds. ``300,credit_report=800`` gives the credit report
800 ms and every other source 300 ms.

Faults (``FLASHLOAN_STUB_FAULTS``): comma-separated ``SCOPE=FAULT``, at most one per source.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from datasources import SCOPES

# Faults both the stub adapters and the stub server simulate.
FAULT_KINDS = ("hang", "error", "slow", "malformed")
# Wire-level faults for testing HTTP adapters; the stub adapters raise the typed error the
# HTTP adapter would raise for them, so both implementations agree.
SERVER_FAULT_KINDS = ("status", "reset", "oversize", "wrong_schema", "no_record")
_Z99 = 2.3263478740408408  # the standard normal's 99th percentile


@dataclass(frozen=True, slots=True)
class Delay:
    """A delay in milliseconds: fixed, or log-normal given its median and 99th percentile."""

    median_ms: float
    p99_ms: float | None = None

    def sample_s(self, rng: random.Random) -> float:
        """Draw one delay in seconds."""
        if self.p99_ms is None or self.median_ms == 0:
            return self.median_ms / 1000
        sigma = (math.log(self.p99_ms) - math.log(self.median_ms)) / _Z99
        return rng.lognormvariate(math.log(self.median_ms), sigma) / 1000


NO_DELAY = Delay(0.0)


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """The delay of each source; sources not named get ``default``."""

    default: Delay = NO_DELAY
    per_scope: dict[str, Delay] = field(default_factory=dict)

    def for_scope(self, scope: str) -> Delay:
        """Return the delay distribution of ``scope``."""
        return self.per_scope.get(scope, self.default)


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault: ``kind`` and its argument (probability, milliseconds or status)."""

    kind: str
    arg: float | None = None


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """The injected fault of each source, if any."""

    per_scope: dict[str, Fault] = field(default_factory=dict)

    def for_scope(self, scope: str) -> Fault | None:
        """Return the fault of ``scope``, or None when it behaves."""
        return self.per_scope.get(scope)


def _entries(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _split_scope(entry: str, what: str) -> tuple[str, str]:
    scope, _, value = entry.partition("=")
    scope, value = scope.strip(), value.strip()
    if scope not in SCOPES:
        raise ValueError(f"{what} {entry!r}: source must be one of {', '.join(SCOPES)}; "
                         f"got {scope!r}")
    return scope, value


def _number(text: str, entry: str, what: str, name: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:
        raise ValueError(f"{what} {entry!r}: {name} must be a number in [{low:g}, {high:g}]; "
                         f"got {text!r}")
    return value


def _parse_delay(value: str, entry: str) -> Delay:
    what = "stub latency"
    parts = value.split(":")
    if parts[0] == "lognormal":
        if len(parts) != 3:
            raise ValueError(f"{what} {entry!r}: a log-normal latency must be "
                             f"lognormal:MEDIAN:P99; got {value!r}")
        median = _number(parts[1], entry, what, "the median (ms)", 0.001, 600_000)
        p99 = _number(parts[2], entry, what, "the 99th percentile (ms)", median, 600_000)
        return Delay(median, p99)
    if len(parts) != 1:
        raise ValueError(f"{what} {entry!r}: a latency must be milliseconds or "
                         f"lognormal:MEDIAN:P99; got {value!r}")
    return Delay(_number(value, entry, what, "the latency (ms)", 0, 600_000))


def parse_latency(text: str | None) -> LatencyModel:
    """Parse the stub latency setting; raise ValueError naming the bad entry."""
    default: Delay | None = None
    per_scope: dict[str, Delay] = {}
    for entry in _entries(text or ""):
        if "=" in entry:
            scope, value = _split_scope(entry, "stub latency")
            if scope in per_scope:
                raise ValueError(f"stub latency {entry!r}: each source must appear once; "
                                 f"got {scope} twice")
            per_scope[scope] = _parse_delay(value, entry)
        else:
            if default is not None:
                raise ValueError(f"stub latency {entry!r}: at most one latency may apply to "
                                 "every source; got two")
            default = _parse_delay(entry, entry)
    return LatencyModel(default or NO_DELAY, per_scope)


def _parse_fault(value: str, entry: str) -> Fault:
    what = "stub fault"
    kind, _, arg = value.partition(":")
    known = FAULT_KINDS + SERVER_FAULT_KINDS
    if kind not in known:
        raise ValueError(f"{what} {entry!r}: fault must be one of {', '.join(known)}; "
                         f"got {kind!r}")
    if kind == "error":
        return Fault(kind, _number(arg, entry, what, "the probability", 0, 1) if arg else 1.0)
    if kind == "slow":
        return Fault(kind, _number(arg, entry, what, "the delay (ms)", 0, 600_000))
    if kind == "status":
        status = _number(arg, entry, what, "the HTTP status", 300, 599)
        if not status.is_integer():
            raise ValueError(f"{what} {entry!r}: the HTTP status must be an integer; got {arg!r}")
        return Fault(kind, status)
    if arg:
        raise ValueError(f"{what} {entry!r}: fault {kind} takes no argument; got {arg!r}")
    return Fault(kind)


def parse_faults(text: str | None) -> FaultSpec:
    """Parse the stub faults setting; raise ValueError naming the bad entry."""
    per_scope: dict[str, Fault] = {}
    for entry in _entries(text or ""):
        if "=" not in entry:
            raise ValueError(f"stub fault {entry!r}: an entry must be SOURCE=FAULT; "
                             f"got no '='")
        scope, value = _split_scope(entry, "stub fault")
        if scope in per_scope:
            raise ValueError(f"stub fault {entry!r}: each source must appear once; "
                             f"got {scope} twice")
        per_scope[scope] = _parse_fault(value, entry)
    return FaultSpec(per_scope)
