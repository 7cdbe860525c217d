"""An answer's elapsed_ms is the sum of its timeline's steps, however slowly its thread runs.

A busy worker's thread may wait for the interpreter between any two instructions, so the
clock here moves on by several milliseconds at every reading: a figure read from the clock
apart from the steps' own readings would differ from their sum by as much.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

import service.domain.timeline as timeline_module
from service.domain.principal import Principal
from service.domain.timeline import Timeline
from service.usecases.live_plans import LivePlan
from tests.unit.service.fakes import build_flow, shipped_plan, world_records
from tests.unit.service.test_decision_flow import APPROVED, DECLINED, application, consent_of

PRINCIPAL = Principal(key_id="k1", name="bank-app", role="channel")
# How far the clock moves between two readings of it.
TICK_S = 0.004


class SlowClock:
    """perf_counter of a thread that is held up for ``TICK_S`` before every reading."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        self.now += TICK_S
        return self.now


@pytest.fixture
def slow_clock(monkeypatch: pytest.MonkeyPatch) -> SlowClock:
    clock = SlowClock()
    monkeypatch.setattr(timeline_module, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    return clock


@pytest.fixture(scope="module")
def live() -> LivePlan:
    return shipped_plan()


@pytest.mark.parametrize("national_id", [APPROVED, DECLINED])
def test_elapsed_ms_is_the_sum_of_the_timeline(live: LivePlan, slow_clock: SlowClock,
                                               national_id: str) -> None:
    parts = build_flow(live, [consent_of(national_id)], world_records(APPROVED, DECLINED))
    status, text = parts.flow.apply(PRINCIPAL, application(national_id), None)
    assert status == 201, text
    answer = json.loads(text)
    steps = sum(step["ms"] for step in answer["timeline"])
    assert math.isclose(answer["elapsed_ms"], steps, abs_tol=0.01), (answer["elapsed_ms"], steps)
    (record,) = parts.database.rows("audit_records")
    assert json.loads(record["payload"])["decided_ms"] == answer["elapsed_ms"]


def test_a_step_timed_aside_counts_in_the_time_taken_but_not_in_the_steps(
        slow_clock: SlowClock) -> None:
    tl = Timeline()
    tl.step("received")
    tl.aside("shadows_decided")
    tl.step("audited")
    shown = sum(step["ms"] for step in tl.steps)
    assert math.isclose(tl.decided_ms, shown + tl.durations["shadows_decided"], abs_tol=0.01)
    assert math.isclose(tl.decided_ms, 3 * TICK_S * 1000, abs_tol=0.01)
    assert tl.elapsed_ms > tl.decided_ms  # the clock read now, after the last step
