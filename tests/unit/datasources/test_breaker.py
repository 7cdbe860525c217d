"""The circuit breaker, on an injected clock."""

from __future__ import annotations

import pytest

from datasources.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_consecutive_failures():
    clock = Clock()
    breaker = CircuitBreaker(3, 30.0, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        assert breaker.record_failure() is False
    assert breaker.state == "closed"
    # The failure that opens it says so.
    assert breaker.record_failure() is True
    assert breaker.state == "open"
    assert not breaker.allow()
    assert breaker.opened_count == 1


def test_a_success_resets_the_count():
    breaker = CircuitBreaker(2, 30.0, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"


def test_half_opens_after_the_cooldown_and_allows_one_trial():
    clock = Clock()
    breaker = CircuitBreaker(1, 30.0, clock=clock)
    breaker.record_failure()
    clock.now += 29.9
    assert breaker.state == "open" and not breaker.allow()
    clock.now += 0.1
    assert breaker.state == "half_open"
    assert breaker.allow()
    assert not breaker.allow()  # one trial at a time


def test_successful_trial_closes():
    clock = Clock()
    breaker = CircuitBreaker(1, 30.0, clock=clock)
    breaker.record_failure()
    clock.now += 30
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed"
    assert all(breaker.allow() for _ in range(3))


def test_failed_trial_reopens_for_another_cooldown():
    clock = Clock()
    breaker = CircuitBreaker(1, 30.0, clock=clock)
    breaker.record_failure()
    clock.now += 30
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    assert breaker.opened_count == 2
    clock.now += 29
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_a_lost_trial_is_given_up_after_a_cooldown():
    clock = Clock()
    breaker = CircuitBreaker(1, 10.0, clock=clock)
    breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    clock.now += 10
    assert breaker.allow()


@pytest.mark.parametrize(("threshold", "cooldown", "message"), [
    (0, 1.0, "threshold must be at least 1"),
    (1, 0.0, "cool-down must be positive"),
])
def test_bad_settings(threshold, cooldown, message):
    with pytest.raises(ValueError, match=message):
        CircuitBreaker(threshold, cooldown)
