"""Scores, PDs, decision times and breaker openings are observed as given; collectors are
read at scrape time, on one worker or many."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from service.ops.metrics import COLLECTED_GAUGES, Metrics


class DriftCollector:
    """A stand-in for the drift gauges: one PSI, computed when collected."""

    def __init__(self, psi: float) -> None:
        self.psi = psi
        self.collected = 0

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.collected += 1
        gauge = GaugeMetricFamily("flashloan_drift_psi", "PSI over the last 24 hours",
                                  labels=COLLECTED_GAUGES["flashloan_drift_psi"])
        gauge.add_metric(["v1", "score"], self.psi)
        yield gauge


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_scored_decision_observes_its_score_pd_and_time():
    metrics = Metrics()
    metrics.decision("approved", {"gather": 40.0}, elapsed_ms=120.0, score=612.0, pd=0.018,
                     model_version="v1")
    assert sample(metrics, "flashloan_decisions_total", outcome="approved") == 1
    assert sample(metrics, "flashloan_score_count", model_version="v1") == 1
    assert sample(metrics, "flashloan_score_sum", model_version="v1") == 612.0
    assert sample(metrics, "flashloan_score_bucket", model_version="v1", le="600.0") == 0
    assert sample(metrics, "flashloan_score_bucket", model_version="v1", le="625.0") == 1
    assert sample(metrics, "flashloan_pd_bucket", model_version="v1", le="0.01") == 0
    assert sample(metrics, "flashloan_pd_bucket", model_version="v1", le="0.02") == 1
    assert sample(metrics, "flashloan_pd_sum", model_version="v1") == pytest.approx(0.018)
    assert sample(metrics, "flashloan_decision_seconds_sum", outcome="approved") == 0.12
    assert sample(metrics, "flashloan_decision_seconds_bucket", outcome="approved",
                  le="0.1") == 0
    assert sample(metrics, "flashloan_decision_seconds_bucket", outcome="approved",
                  le="0.25") == 1
    assert sample(metrics, "flashloan_step_seconds_sum", step="gather") == 0.04


def test_the_score_buckets_span_the_points_scale_and_the_pd_buckets_the_unit_interval():
    metrics = Metrics()
    metrics.decision("declined", {}, score=300.0, pd=1.0, model_version="v1")
    metrics.decision("declined", {}, score=900.0, pd=0.005, model_version="v1")
    assert sample(metrics, "flashloan_score_bucket", model_version="v1", le="300.0") == 1
    assert sample(metrics, "flashloan_score_bucket", model_version="v1", le="875.0") == 1
    assert sample(metrics, "flashloan_score_bucket", model_version="v1", le="900.0") == 2
    assert sample(metrics, "flashloan_pd_bucket", model_version="v1", le="0.005") == 1
    assert sample(metrics, "flashloan_pd_bucket", model_version="v1", le="0.5") == 1
    assert sample(metrics, "flashloan_pd_bucket", model_version="v1", le="1.0") == 2


def test_a_deferral_observes_its_time_but_no_score():
    metrics = Metrics()
    metrics.decision("approved", {}, elapsed_ms=50.0, score=650.0, pd=0.004, model_version="v1")
    metrics.decision("deferred", {"gather": 10_000.0}, elapsed_ms=10_020.0)
    assert sample(metrics, "flashloan_decisions_total", outcome="deferred") == 1
    assert sample(metrics, "flashloan_decision_seconds_count", outcome="deferred") == 1
    assert sample(metrics, "flashloan_score_count", model_version="v1") == 1
    assert sample(metrics, "flashloan_pd_count", model_version="v1") == 1
    assert sample(metrics, "flashloan_score_count", model_version="unknown") is None
    assert sample(metrics, "flashloan_pd_count", model_version="unknown") is None


def test_a_decision_without_its_time_observes_none():
    metrics = Metrics()
    metrics.decision("approved", {"score": 2.0})
    assert sample(metrics, "flashloan_decisions_total", outcome="approved") == 1
    assert sample(metrics, "flashloan_decision_seconds_count", outcome="approved") is None


def test_scores_are_kept_apart_by_model_version():
    metrics = Metrics()
    metrics.decision("approved", {}, score=640.0, pd=0.01, model_version="v1")
    metrics.decision("approved", {}, score=660.0, pd=0.008, model_version="v2")
    metrics.decision("approved", {}, score=670.0, pd=0.007, model_version="v2")
    assert sample(metrics, "flashloan_score_count", model_version="v1") == 1
    assert sample(metrics, "flashloan_score_count", model_version="v2") == 2
    assert sample(metrics, "flashloan_pd_count", model_version="v2") == 2


def test_breaker_openings_are_counted_by_source():
    metrics = Metrics()
    metrics.breaker_opened("tax")
    metrics.breaker_opened("tax")
    metrics.breaker_opened("court")
    assert sample(metrics, "flashloan_breaker_openings_total", source="tax") == 2
    assert sample(metrics, "flashloan_breaker_openings_total", source="court") == 1
    assert sample(metrics, "flashloan_breaker_openings_total", source="bureau") is None


def exposed(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


PSI_KEY = ("flashloan_drift_psi", (("model_version", "v1"), ("variable", "score")))


def test_a_collector_is_read_at_each_scrape_in_one_process(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = Metrics()
    drift = DriftCollector(0.04)
    metrics.add_collector(drift)
    assert exposed(metrics)[PSI_KEY] == 0.04
    drift.psi = 0.31
    assert sample(metrics, "flashloan_drift_psi", model_version="v1", variable="score") == 0.31
    assert exposed(metrics)[PSI_KEY] == 0.31


def test_a_collector_whose_names_are_taken_is_refused():
    metrics = Metrics()
    metrics.add_collector(DriftCollector(0.04))
    with pytest.raises(ValueError, match="flashloan_drift_psi"):
        metrics.add_collector(DriftCollector(0.05))


@pytest.fixture
def multiprocess(tmp_path, monkeypatch) -> Iterator[None]:
    """Metrics made from here on write to files in a folder of their own, as under gunicorn.

    prometheus_client chooses how values are kept when it is imported: the choice is made
    again here, and the files it opened are closed afterwards.
    """
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    mmaped = values.MultiProcessValue()
    monkeypatch.setattr(values, "ValueClass", mmaped)
    yield
    mmaped.close_all_files()


@pytest.mark.usefixtures("multiprocess")
def test_a_collector_is_read_at_each_scrape_besides_the_workers_files(tmp_path):
    metrics = Metrics()
    drift = DriftCollector(0.12)
    metrics.add_collector(drift)
    metrics.decision("approved", {}, elapsed_ms=80.0, score=620.0, pd=0.02, model_version="v1")
    assert list(tmp_path.glob("*.db")), "the metrics were not written to the folder"
    first = exposed(metrics)
    assert first[PSI_KEY] == 0.12
    assert first[("flashloan_score_count", (("model_version", "v1"),))] == 1
    assert first[("flashloan_decision_seconds_count", (("outcome", "approved"),))] == 1
    drift.psi = 0.27
    assert exposed(metrics)[PSI_KEY] == 0.27


@pytest.mark.usefixtures("multiprocess")
def test_a_collector_is_exposed_once_in_multiprocess_mode():
    metrics = Metrics()
    drift = DriftCollector(0.2)
    metrics.add_collector(drift)
    before = drift.collected
    body, _ = metrics.exposition()
    assert drift.collected == before + 1
    assert body.decode().count('flashloan_drift_psi{model_version="v1",variable="score"}') == 1
