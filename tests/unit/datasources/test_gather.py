"""The gatherer: parallel calls, one deadline, retries inside it, breakers, no leaked threads."""

from __future__ import annotations

import random
import time

import pytest

from datasources import SCOPES
from datasources.errors import SourceMalformed, SourceTimeout, SourceUnavailable
from datasources.gather import Gatherer
from datasources.identity import InvalidNationalId
from datasources.stub.adapters import StubWorld, build_stub_sources

from .fakes import (
    NID,
    NOW,
    SUBJECT,
    Block,
    CountingSource,
    Recording,
    Sleep,
    all_overlap,
    counting_sources,
    gate_for,
    make_consent,
    wait_until,
)

WORLD = StubWorld()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gatherer(sources, **options) -> Gatherer:  # type: ignore[no-untyped-def]
    gate, _ = gate_for(make_consent())
    options.setdefault("rng", random.Random(0))
    return Gatherer(sources, gate, **options)


def test_gathers_every_source_with_its_consent():
    consent = make_consent()
    gate, _ = gate_for(consent)
    with Gatherer(build_stub_sources(WORLD), gate) as g:
        result = g.gather(NID, SUBJECT, "c-1", SCOPES)
    assert list(result.outcomes) == list(SCOPES)
    assert result.records == WORLD.records(NID)
    for outcome in result.outcomes.values():
        assert (outcome.status, outcome.attempts, outcome.error) == ("ok", 1, None)
        assert (outcome.consent_id, outcome.consent_digest) == ("c-1", consent.digest())
        assert 0 <= outcome.latency_ms <= result.elapsed_ms
    assert result.sufficient and result.missing_reasons == []


def test_five_slow_sources_overlap():
    sources = {s: Recording(src) for s, src in build_stub_sources(WORLD, "300").items()}
    with gatherer(sources) as g:
        result = g.gather(NID, SUBJECT, "c-1", SCOPES)
    assert result.statuses() == dict.fromkeys(SCOPES, "ok")
    intervals = [iv for src in sources.values() for iv in src.intervals]
    assert len(intervals) == 5
    assert all_overlap(intervals)
    assert result.elapsed_ms < 5 * 300  # sanity only: the figures go to the benchmark


def test_hung_source_times_out_at_the_deadline_and_frees_its_thread():
    sources = build_stub_sources(WORLD, faults="court_records=hang")
    with gatherer(sources, deadline_s=0.5, threads_per_source=1) as g:
        started = time.perf_counter()
        result = g.gather(NID, SUBJECT, "c-1", SCOPES)
        waited = time.perf_counter() - started
        assert 0.45 <= waited < 2.0
        hung = result.outcomes["court_records"]
        assert (hung.status, hung.attempts, hung.consent_id) == ("timeout", 1, "c-1")
        assert all(result.outcomes[s].ok for s in SCOPES if s != "court_records")
        assert not result.sufficient
        assert result.missing_reasons == ["court_records: timeout"]
        assert wait_until(lambda: g.in_flight() == 0)
        assert g.pool_threads() <= 5
        again = g.gather(NID, SUBJECT, "c-1", [s for s in SCOPES if s != "court_records"])
        assert all(o.ok for o in again.outcomes.values())


def test_after_a_hang_the_whole_pool_serves_the_next_gathering_in_parallel():
    sources = {s: CountingSource(s, Sleep(0.1)) for s in SCOPES}
    sources["court_records"] = CountingSource("court_records", Sleep(60), Sleep(0.1))
    with gatherer(sources, deadline_s=0.3, threads_per_source=1) as g:
        first = g.gather(NID, SUBJECT, "c-1", SCOPES)
        assert first.outcomes["court_records"].status == "timeout"
        assert wait_until(lambda: g.in_flight() == 0)
        second = g.gather(NID, SUBJECT, "c-1", SCOPES)
    assert second.sufficient
    # Five calls at once on a pool of five: the hung call's thread was free again.
    assert all_overlap(src.intervals[-1] for src in sources.values())


def test_an_adapter_ignoring_its_timeout_holds_one_pool_thread_and_no_more():
    block = Block()
    sources = counting_sources()
    sources["court_records"] = CountingSource("court_records", block)
    with gatherer(sources, deadline_s=0.3, threads_per_source=3, max_attempts=1) as g:
        for _ in range(3):
            result = g.gather(NID, SUBJECT, "c-1", SCOPES)
            assert result.outcomes["court_records"].status == "timeout"
        assert g.in_flight() == 3
        assert g.pool_threads() <= 3 * len(SCOPES)
        block.release.set()
        assert wait_until(lambda: g.in_flight() == 0)
        assert sources["court_records"].calls == 3


def test_a_source_that_holds_its_threads_never_starves_the_others():
    # An adapter that ignores its timeout keeps every thread it is given. Each source has a
    # pool of its own: once the stuck source's two threads are held, its next calls wait
    # and time out unmade, and the other sources are called as ever, gathering after
    # gathering; a pool shared by all would have run out of threads after ten.
    block = Block()
    sources = counting_sources()
    sources["court_records"] = CountingSource("court_records", block)
    with gatherer(sources, deadline_s=0.2, threads_per_source=2, max_attempts=1) as g:
        for n in range(12):
            result = g.gather(NID, SUBJECT, "c-1", SCOPES)
            stuck = result.outcomes["court_records"]
            assert stuck.status == "timeout"
            assert stuck.attempts == (1 if n < 2 else 0), n
            assert all(result.outcomes[s].ok for s in SCOPES if s != "court_records"), n
        assert sources["court_records"].calls == 2
        assert g.in_flight() == 2
        assert g.pool_threads() <= 2 * len(SCOPES)
        block.release.set()
        assert wait_until(lambda: g.in_flight() == 0)


def test_queued_queries_past_the_deadline_never_reach_the_source():
    block = Block()
    slow = CountingSource("credit_report", block)
    with gatherer({"credit_report": slow}, deadline_s=0.2, threads_per_source=1) as g:
        first = g.gather(NID, SUBJECT, "c-1", ["credit_report"])
        second = g.gather(NID, SUBJECT, "c-1", ["credit_report"])  # waits behind the first
        block.release.set()
        assert wait_until(lambda: g.in_flight() == 0)
    assert first.outcomes["credit_report"].attempts == 1
    assert (second.outcomes["credit_report"].status,
            second.outcomes["credit_report"].attempts) == ("timeout", 0)
    time.sleep(0.05)
    assert slow.calls == 1


def test_retryable_failures_are_retried_until_an_answer():
    flaky = CountingSource("income_tax", SourceUnavailable("income_tax", "503"),
                           SourceTimeout("income_tax", "slow"), WORLD.record("income_tax", NID))
    with gatherer({"income_tax": flaky}, backoff_base_s=0.001) as g:
        outcome = g.gather(NID, SUBJECT, "c-1", ["income_tax"]).outcomes["income_tax"]
    assert (outcome.status, outcome.attempts) == ("ok", 3)
    assert flaky.calls == 3


def test_retries_stop_at_max_attempts():
    down = CountingSource("income_tax", SourceUnavailable("income_tax", "503"))
    with gatherer({"income_tax": down}, max_attempts=2, backoff_base_s=0.001) as g:
        outcome = g.gather(NID, SUBJECT, "c-1", ["income_tax"]).outcomes["income_tax"]
    assert (outcome.status, outcome.attempts, outcome.error) == (
        "unavailable", 2, "income_tax: 503")


def test_non_retryable_failures_are_not_retried():
    bad = CountingSource("credit_report", SourceMalformed("credit_report", "not JSON"))
    refused = CountingSource("income_tax", SourceUnavailable("income_tax", "403", retryable=False))
    with gatherer({"credit_report": bad, "income_tax": refused}, backoff_base_s=0.001) as g:
        result = g.gather(NID, SUBJECT, "c-1", ["credit_report", "income_tax"])
    assert result.statuses() == {"credit_report": "malformed", "income_tax": "unavailable"}
    assert bad.calls == refused.calls == 1


def test_no_retry_when_the_backoff_would_overrun_the_deadline():
    down = CountingSource("income_tax", SourceUnavailable("income_tax", "503"))
    with gatherer({"income_tax": down}, deadline_s=0.5, backoff_base_s=1.0) as g:
        started = time.perf_counter()
        outcome = g.gather(NID, SUBJECT, "c-1", ["income_tax"]).outcomes["income_tax"]
        assert time.perf_counter() - started < 0.4
    assert (outcome.status, outcome.attempts) == ("unavailable", 1)


def test_per_source_timeout_leaves_room_for_a_retry():
    slow_once = CountingSource("court_records", Sleep(5.0), WORLD.record("court_records", NID))
    with gatherer({"court_records": slow_once}, deadline_s=3.0, source_timeout_s=0.1,
                  backoff_base_s=0.001) as g:
        outcome = g.gather(NID, SUBJECT, "c-1", ["court_records"]).outcomes["court_records"]
    assert (outcome.status, outcome.attempts) == ("ok", 2)
    assert slow_once.timeouts[0] == pytest.approx(0.1)


def test_call_timeout_is_capped_by_what_is_left_of_the_deadline():
    source = CountingSource("court_records")
    with gatherer({"court_records": source}, deadline_s=0.5, source_timeout_s=30) as g:
        g.gather(NID, SUBJECT, "c-1", ["court_records"])
    assert 0 < source.timeouts[0] <= 0.5


def test_withdrawal_during_retries_stops_the_next_call():
    gate, store = gate_for(make_consent())

    class WithdrawnMeanwhile(CountingSource):
        def fetch(self, national_id, *, timeout):  # type: ignore[no-untyped-def]
            store.withdraw("c-1", NOW)
            return super().fetch(national_id, timeout=timeout)

    source = WithdrawnMeanwhile("income_tax", SourceUnavailable("income_tax", "503"))
    with Gatherer({"income_tax": source}, gate, backoff_base_s=0.001) as g:
        outcome = g.gather(NID, SUBJECT, "c-1", ["income_tax"]).outcomes["income_tax"]
    assert (outcome.status, outcome.attempts) == ("consent_refused", 1)
    assert "withdrawn" in (outcome.error or "")
    assert source.calls == 1


def test_breaker_opens_fails_fast_and_recovers():
    clock = Clock()
    gate, _ = gate_for(make_consent())
    down = CountingSource("credit_report", SourceUnavailable("credit_report", "503"))
    with Gatherer({"credit_report": down}, gate, max_attempts=1, breaker_threshold=3,
                  breaker_cooldown_s=30, clock=clock) as g:
        failed = [g.gather(NID, SUBJECT, "c-1", ["credit_report"]).outcomes["credit_report"]
                  for _ in range(3)]
        assert {o.status for o in failed} == {"unavailable"}
        # The third failure opened it, and its outcome says so (the dashboard counts it).
        assert [o.opened_breaker for o in failed] == [False, False, True]
        assert g.breaker_states() == {"credit_report": "open"}
        fast = g.gather(NID, SUBJECT, "c-1", ["credit_report"]).outcomes["credit_report"]
        assert (fast.status, fast.attempts, fast.opened_breaker) == ("circuit_open", 0, False)
        assert down.calls == 3
        clock.now += 30
        assert g.breaker_states() == {"credit_report": "half_open"}
        down.script = [WORLD.record("credit_report", NID)]
        healed = g.gather(NID, SUBJECT, "c-1", ["credit_report"]).outcomes["credit_report"]
        assert (healed.status, healed.attempts) == ("ok", 1)
        assert g.breaker_states() == {"credit_report": "closed"}


def test_breaker_opening_mid_retries_keeps_the_real_failure():
    down = CountingSource("credit_report", SourceUnavailable("credit_report", "503"))
    with gatherer({"credit_report": down}, max_attempts=3, breaker_threshold=2,
                  backoff_base_s=0.001) as g:
        outcome = g.gather(NID, SUBJECT, "c-1", ["credit_report"]).outcomes["credit_report"]
    assert (outcome.status, outcome.attempts, outcome.opened_breaker) == ("unavailable", 2, True)


def test_every_outcome_reaches_the_hook_once():
    seen = []
    sources = counting_sources()
    sources["income_tax"] = CountingSource("income_tax", SourceMalformed("income_tax", "bad"))
    with gatherer(sources, on_outcome=seen.append) as g:
        result = g.gather(NID, SUBJECT, "c-1", SCOPES)
    assert sorted(o.scope for o in seen) == sorted(SCOPES)
    assert {o.scope: o for o in seen} == result.outcomes


def test_a_failing_hook_does_not_break_the_gathering():
    def broken(outcome):  # type: ignore[no-untyped-def]
        raise RuntimeError("metrics backend down")

    with gatherer(counting_sources(), on_outcome=broken) as g:
        assert g.gather(NID, SUBJECT, "c-1", SCOPES).sufficient


def test_an_adapter_bug_becomes_a_typed_failure_without_retry():
    buggy = CountingSource("provident_fund", KeyError("boom"))
    with gatherer({"provident_fund": buggy}) as g:
        outcome = g.gather(NID, SUBJECT, "c-1", ["provident_fund"]).outcomes["provident_fund"]
    assert (outcome.status, outcome.attempts) == ("unavailable", 1)
    assert "KeyError" in (outcome.error or "") and "boom" not in (outcome.error or "")


def test_a_bug_in_the_gate_costs_the_sources_not_the_gathering():
    class Gate:
        def authorise(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise AttributeError("gate bug")

    sources = counting_sources()
    with Gatherer(sources, Gate(), deadline_s=2) as g:  # type: ignore[arg-type]
        result = g.gather(NID, SUBJECT, "c-1", SCOPES)
    assert set(result.statuses().values()) == {"unavailable"}
    assert all(s.calls == 0 for s in sources.values())


def test_scopes_are_checked_deduplicated_and_kept_in_order():
    with gatherer({"income_tax": CountingSource("income_tax")}) as g:
        result = g.gather(NID, SUBJECT, "c-1", ["court_records", "income_tax", "income_tax"])
        assert list(result.outcomes) == ["court_records", "income_tax"]
        assert result.outcomes["court_records"].status == "unavailable"
        assert "no source is configured" in (result.outcomes["court_records"].error or "")
        with pytest.raises(ValueError, match="scope must be one of"):
            g.gather(NID, SUBJECT, "c-1", ["bank_statements"])
        with pytest.raises(InvalidNationalId):
            g.gather("110101199001011230", SUBJECT, "c-1", ["income_tax"])


def test_outcomes_carry_no_personal_data():
    with gatherer(build_stub_sources(WORLD)) as g:
        result = g.gather(NID, SUBJECT, "c-1", SCOPES)
    for outcome in result.outcomes.values():
        flat = str(outcome.to_dict())
        assert NID not in flat and SUBJECT not in flat and "record" not in outcome.to_dict()


def test_closed_gatherer_refuses_work():
    g = gatherer(counting_sources())
    g.close()
    with pytest.raises(RuntimeError, match="closed"):
        g.gather(NID, SUBJECT, "c-1", SCOPES)


@pytest.mark.parametrize(("options", "message"), [
    ({"deadline_s": 0}, "deadline_s must be in"),
    ({"source_timeout_s": -1}, "source_timeout_s must be positive"),
    ({"max_attempts": 0}, "max_attempts must be at least 1"),
    ({"backoff_base_s": -0.1}, "backoff must be non-negative"),
])
def test_bad_settings_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        gatherer(counting_sources(), **options)


def test_sources_must_match_their_scope():
    with pytest.raises(ValueError, match="source for income_tax must have scope income_tax"):
        gatherer({"income_tax": CountingSource("court_records")})


def test_a_consent_just_read_authorises_first_calls_and_retries_read_it_again():
    consent = make_consent()
    gate, store = gate_for(consent)
    ok = counting_sources()
    with Gatherer(ok, gate) as g:
        result = g.gather(NID, SUBJECT, "c-1", SCOPES, consent=consent)
    assert result.sufficient and store.lookups == 0

    class WithdrawnMeanwhile(CountingSource):
        def fetch(self, national_id, *, timeout):  # type: ignore[no-untyped-def]
            store.withdraw("c-1", NOW)
            return super().fetch(national_id, timeout=timeout)

    flaky = WithdrawnMeanwhile("income_tax", SourceUnavailable("income_tax", "503"))
    with Gatherer({"income_tax": flaky}, gate, backoff_base_s=0.001) as g:
        outcome = g.gather(NID, SUBJECT, "c-1", ["income_tax"],
                           consent=consent).outcomes["income_tax"]
    assert (outcome.status, outcome.attempts, flaky.calls) == ("consent_refused", 1, 1)
    assert store.lookups == 1


def test_a_consent_passed_in_is_still_checked():
    consent = make_consent(scopes=["credit_report"])
    gate, _ = gate_for(consent)
    sources = counting_sources()
    with Gatherer(sources, gate) as g:
        result = g.gather(NID, SUBJECT, "c-1", ["income_tax"], consent=consent)
    assert result.outcomes["income_tax"].status == "consent_refused"
    assert sources["income_tax"].calls == 0


class Threaded(CountingSource):
    """Records the thread each call ran on; ``blocking`` as given."""

    def __init__(self, scope: str, *script: object, blocking: bool) -> None:
        super().__init__(scope, *script)
        self.blocking = blocking
        self.threads: list[str] = []

    def fetch(self, national_id, *, timeout):  # type: ignore[no-untyped-def]
        import threading

        self.threads.append(threading.current_thread().name)
        return super().fetch(national_id, timeout=timeout)


def test_sources_that_answer_from_memory_are_asked_in_the_gathering_thread():
    import threading

    here = threading.current_thread().name
    memory = Threaded("credit_report", WORLD.record("credit_report", NID), blocking=False)
    network = Threaded("court_records", WORLD.record("court_records", NID), blocking=True)
    with gatherer({"credit_report": memory, "court_records": network}) as g:
        result = g.gather(NID, SUBJECT, "c-1", ["credit_report", "court_records"])
        assert g.in_flight() == 0
    assert result.statuses() == {"credit_report": "ok", "court_records": "ok"}
    assert memory.threads == [here]
    assert network.threads != [here] and network.threads[0].startswith(g.thread_name_prefix)


def test_a_source_asked_in_the_gathering_thread_keeps_retries_consent_and_breaker():
    gate, store = gate_for(make_consent())
    flaky = Threaded("income_tax", SourceUnavailable("income_tax", "503"),
                     WORLD.record("income_tax", NID), blocking=False)
    with Gatherer({"income_tax": flaky}, gate, backoff_base_s=0.001) as g:
        outcome = g.gather(NID, SUBJECT, "c-1", ["income_tax"]).outcomes["income_tax"]
        assert (outcome.status, outcome.attempts) == ("ok", 2)
        store.withdraw("c-1", NOW)
        refused = g.gather(NID, SUBJECT, "c-1", ["income_tax"]).outcomes["income_tax"]
    assert refused.status == "consent_refused" and flaky.calls == 2
    down = Threaded("income_tax", SourceUnavailable("income_tax", "503", retryable=False),
                    blocking=False)
    with gatherer({"income_tax": down}, breaker_threshold=2) as g:
        for _ in range(3):
            last = g.gather(NID, SUBJECT, "c-1", ["income_tax"]).outcomes["income_tax"]
    assert last.status == "circuit_open" and down.calls == 2


@pytest.mark.parametrize(("latency", "faults", "blocking"), [
    ("", "", False),
    ("0", "credit_report=error:0.5", False),
    ("", "court_records=error:0.5", True),
    ("", "court_records=malformed", True),
    ("5", "", True),
    ("lognormal:150:800", "", True),
    ("", "court_records=hang", True),
    ("", "court_records=slow:200", True),
])
def test_stub_sources_say_whether_they_wait(latency: str, faults: str, blocking: bool):
    sources = build_stub_sources(WORLD, latency, faults)
    assert sources["court_records"].blocking is blocking
    faulty = {entry.split("=")[0] for entry in faults.split(",") if entry}
    for scope, source in sources.items():
        assert source.blocking is (latency not in ("", "0") or scope in faulty)
