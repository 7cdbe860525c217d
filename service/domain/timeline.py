"""The timeline of one decision: each step's wall-clock time and its duration."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from service.domain.encoding import now_text


class Timeline:
    """Steps with their times, measured on one monotonic clock from the request's start."""

    def __init__(self, earlier: Iterable[dict] = ()) -> None:
        """Start timing; ``earlier`` are the steps of an application's earlier attempts."""
        self.started_wall = datetime.now(UTC)
        self.started = time.perf_counter()
        self._last = self.started
        self.steps: list[dict] = list(earlier)
        self.durations: dict[str, float] = {}

    def step(self, name: str) -> None:
        now = time.perf_counter()
        ms = (now - self._last) * 1000
        self._last = now
        at = self.started_wall + timedelta(seconds=now - self.started)
        self.steps.append({"step": name, "at": now_text(at), "ms": round(ms, 3)})
        self.durations[name] = ms

    def aside(self, name: str) -> None:
        """Time a step that the answer does not show (the shadows' decisions): its duration
        is kept for the monitoring, and the next step's does not include it."""
        now = time.perf_counter()
        self.durations[name] = (now - self._last) * 1000
        self._last = now

    @property
    def decided_ms(self) -> float:
        """The time from the start to the latest step (shown or aside), from the steps' own
        clock readings: the shown steps' durations add up to it, with those timed aside.

        A clock read after the last step would count the wait for the interpreter of a
        busy thread in no step.
        """
        return round((self._last - self.started) * 1000, 3)

    @property
    def elapsed_ms(self) -> float:
        """The time from the start to now."""
        return round((time.perf_counter() - self.started) * 1000, 3)
