"""Parsing the stub latency and fault settings."""

from __future__ import annotations

import random
import statistics

import pytest

from datasources.stub.behaviour import Delay, Fault, parse_faults, parse_latency


def test_empty_latency_is_zero_everywhere():
    model = parse_latency("")
    assert model.for_scope("credit_report") == Delay(0.0)
    assert parse_latency(None) == model


def test_one_latency_for_every_source():
    model = parse_latency("300")
    assert model.for_scope("court_records").sample_s(random.Random(1)) == pytest.approx(0.3)


def test_latency_per_source_with_a_default():
    model = parse_latency(" 50 , credit_report=800,income_tax=200 ")
    assert model.for_scope("credit_report") == Delay(800.0)
    assert model.for_scope("income_tax") == Delay(200.0)
    assert model.for_scope("provident_fund") == Delay(50.0)


def test_latency_per_source_only():
    model = parse_latency("credit_report=800")
    assert model.for_scope("credit_report") == Delay(800.0)
    assert model.for_scope("income_tax") == Delay(0.0)


def test_lognormal_latency_has_the_given_median_and_p99():
    delay = parse_latency("lognormal:150:800").for_scope("income_tax")
    rng = random.Random(7)
    samples = sorted(delay.sample_s(rng) * 1000 for _ in range(20_000))
    assert statistics.median(samples) == pytest.approx(150, rel=0.05)
    assert samples[int(0.99 * len(samples))] == pytest.approx(800, rel=0.15)


@pytest.mark.parametrize(("text", "message"), [
    ("fast", r"stub latency 'fast': the latency \(ms\) must be a number"),
    ("-5", r"stub latency '-5': the latency \(ms\) must be a number in \[0, 600000\]"),
    ("bank=300", "stub latency 'bank=300': source must be one of provident_fund"),
    ("income_tax=1,income_tax=2", "each source must appear once; got income_tax twice"),
    ("100,200", "at most one latency may apply to every source"),
    ("lognormal:150", "a log-normal latency must be lognormal:MEDIAN:P99"),
    ("lognormal:800:150", r"the 99th percentile \(ms\) must be a number in \[800"),
    ("normal:1:2", "a latency must be milliseconds or lognormal:MEDIAN:P99; got 'normal:1:2'"),
])
def test_bad_latency_names_the_bad_part(text, message):
    with pytest.raises(ValueError, match=message):
        parse_latency(text)


def test_faults_of_every_kind():
    spec = parse_faults("court_records=hang,income_tax=error:0.3,credit_report=slow:5000,"
                        "provident_fund=malformed,social_security=status:502")
    assert spec.for_scope("court_records") == Fault("hang")
    assert spec.for_scope("income_tax") == Fault("error", 0.3)
    assert spec.for_scope("credit_report") == Fault("slow", 5000.0)
    assert spec.for_scope("provident_fund") == Fault("malformed")
    assert spec.for_scope("social_security") == Fault("status", 502.0)


def test_no_faults_and_bare_error():
    assert parse_faults("").for_scope("income_tax") is None
    assert parse_faults("income_tax=error").for_scope("income_tax") == Fault("error", 1.0)
    for kind in ("reset", "oversize", "wrong_schema", "no_record"):
        assert parse_faults(f"income_tax={kind}").for_scope("income_tax") == Fault(kind)


@pytest.mark.parametrize(("text", "message"), [
    ("court_records", "an entry must be SOURCE=FAULT"),
    ("court=hang", "stub fault 'court=hang': source must be one of"),
    ("income_tax=explode", "fault must be one of hang, error, slow, malformed"),
    ("income_tax=error:1.5", r"the probability must be a number in \[0, 1\]; got '1.5'"),
    ("income_tax=error:often", "the probability must be a number"),
    ("credit_report=slow:", r"the delay \(ms\) must be a number"),
    ("credit_report=status:200", r"the HTTP status must be a number in \[300, 599\]"),
    ("credit_report=status:503.5", "the HTTP status must be an integer"),
    ("court_records=hang:5", "fault hang takes no argument; got '5'"),
    ("court_records=hang,court_records=reset", "each source must appear once"),
])
def test_bad_faults_name_the_bad_part(text, message):
    with pytest.raises(ValueError, match=message):
        parse_faults(text)
