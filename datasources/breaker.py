"""A circuit breaker per source: stop calling a source that keeps failing, then probe it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """Count consecutive failures; open at ``threshold``; half-open after ``cooldown_s``.

    Closed: every call goes through. Open: calls fail fast until the cool-down has passed.
    Half-open: one trial call goes through; its success closes the breaker, its failure
    opens it for another cool-down. A trial that never reports (its thread was lost) is
    given up after one cool-down so the breaker cannot stay half-open forever.
    """

    def __init__(self, threshold: int = 5, cooldown_s: float = 30.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if threshold < 1:
            raise ValueError(f"breaker threshold must be at least 1; got {threshold}")
        if not cooldown_s > 0:
            raise ValueError(f"breaker cool-down must be positive seconds; got {cooldown_s}")
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_at: float | None = None
        self.opened_count = 0  # how many times it has opened, for metrics

    @property
    def state(self) -> str:
        """Return ``closed``, ``open`` or ``half_open`` as of now."""
        with self._lock:
            return self._state(self._clock())

    def _state(self, now: float) -> str:
        if self._opened_at is None:
            return CLOSED
        if now - self._opened_at >= self.cooldown_s:
            return HALF_OPEN
        return OPEN

    def allow(self) -> bool:
        """Return whether a call may go out now (taking the trial slot when half-open)."""
        with self._lock:
            now = self._clock()
            state = self._state(now)
            if state == CLOSED:
                return True
            if state == OPEN:
                return False
            if self._trial_at is None or now - self._trial_at >= self.cooldown_s:
                self._trial_at = now
                return True
            return False

    def record_success(self) -> None:
        """Note a successful call: close the breaker."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_at = None

    def record_failure(self) -> bool:
        """Note a failed call: open the breaker at the threshold or after a failed trial.

        Return whether this failure opened it, so that whoever saw the call fail can say so.
        """
        with self._lock:
            now = self._clock()
            self._failures += 1
            trial_failed = self._opened_at is not None and self._trial_at is not None
            if trial_failed or (self._opened_at is None and self._failures >= self.threshold):
                self._opened_at = now
                self._trial_at = None
                self.opened_count += 1
                return True
            return False
