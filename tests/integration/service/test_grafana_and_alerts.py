"""The Grafana dashboard and the Prometheus rules ask only for series the service exports,
by labels those series have; every alert can be acted on."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from service.ops.metrics import COLLECTED_GAUGES, Metrics

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "flashloan.json"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DOC = ROOT / "docs" / "prometheus.md"
# Written by Prometheus itself for every target it scrapes.
PROMETHEUS_SERIES = {"up": frozenset({"job", "instance"})}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"),
            "gauge": ("",)}
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
SEVERITIES = {"critical", "warning", "info"}


# --- What the service exports


@dataclass(frozen=True)
class FakeOutcome:
    """The part of a source's outcome the metrics read."""

    scope: str
    status: str
    latency_ms: float
    ok: bool


def busy_metrics() -> Metrics:
    """Return metrics that have recorded one of everything, so that each has its labels."""
    metrics = Metrics()
    metrics.decision("approved", {"gather": 30.0}, elapsed_ms=45.0, score=640.0, pd=0.012,
                     model_version="v1")
    metrics.source(FakeOutcome("tax", "timeout", 2000.0, ok=False))
    metrics.request("POST", "/v1/applications", 201, 0.05)
    metrics.breakers({"tax": "open"})
    metrics.breaker_opened("tax")
    metrics.audit_failure()
    metrics.strategy_plan("not_its_record")
    return metrics


def exported_series() -> tuple[dict[str, frozenset[str]], set[str]]:
    """Return each series the service exports with its label names, and the metrics without
    samples (whose labels are therefore unknown)."""
    series: dict[str, set[str]] = {}
    unfed = set()
    for family in busy_metrics().registry.collect():
        for suffix in SUFFIXES[family.type]:
            series.setdefault(family.name + suffix, set())
        for s in family.samples:
            if s.name in series:
                series[s.name] |= set(s.labels)
        if not family.samples:
            unfed.add(family.name)
    for name, labels in COLLECTED_GAUGES.items():
        series[name] = set(labels)
    return {name: frozenset(labels) for name, labels in series.items()}, unfed


EXPORTED, UNFED = exported_series()


def test_every_metric_of_the_registry_has_been_fed():
    """Without samples a metric's labels are unknown, and the label checks would pass it."""
    assert not UNFED, f"feed these in busy_metrics(): {sorted(UNFED)}"
    assert EXPORTED["flashloan_score_bucket"] == {"model_version", "le"}
    assert EXPORTED["flashloan_breaker_openings_total"] == {"source"}


def test_the_collected_gauges_are_those_the_monitoring_collector_describes():
    from service.usecases.monitoring.collector import MonitoringCollector

    # describe() reads no database: it needs no monitoring to read from.
    described = {family.name for family in MonitoringCollector(None).describe()}
    assert described == set(COLLECTED_GAUGES)


# --- PromQL, as far as names and labels go

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_SELECTOR = re.compile(r"(?<![\w:])([A-Za-z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_BRACES = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
             "group_right", "bool", "offset", "inf", "nan"}
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass(frozen=True)
class Query:
    names: frozenset[str]
    matched: frozenset[tuple[str, str]]     # (series, label) of each label matcher
    grouped: frozenset[str]                 # labels of by/without/on/ignoring/group_*


def parse(expr: str) -> Query:
    """Return the series an expression reads, the labels it matches on and groups by."""
    text = _VARIABLE.sub("", _STRING.sub('""', expr))
    matched = {(name, label) for name, body in _SELECTOR.findall(text)
               for label in _MATCHER.findall(body)}
    text = _RANGE.sub("", _BRACES.sub("", text))
    grouped = {label.strip() for clause in _GROUPING.findall(text)
               for label in clause.split(",") if label.strip()}
    text = _GROUPING.sub(" ", text)
    names = {n for n in _IDENTIFIER.findall(text) if n.lower() not in _KEYWORDS}
    return Query(frozenset(names), frozenset(matched), frozenset(grouped))


def test_the_parser_finds_series_matchers_and_groupings():
    q = parse('histogram_quantile(0.99, sum by (source, le) (rate('
              'flashloan_source_seconds_bucket{status!="consent_refused", source=~"$src"}'
              '[$__rate_interval]))) / ignoring (outcome) group_left sum(x:y:rate5m) '
              '> 2 and on () vector(0) or up{job="a}b"} offset 1d')
    assert q.names == {"flashloan_source_seconds_bucket", "x:y:rate5m", "up"}
    assert q.matched == {("flashloan_source_seconds_bucket", "status"),
                         ("flashloan_source_seconds_bucket", "source"), ("up", "job")}
    assert q.grouped == {"source", "le", "outcome"}


class Series:
    """The series an expression may read: exported, recorded by the rules, or Prometheus's."""

    def __init__(self, recorded: dict[str, frozenset[str]] | None = None) -> None:
        self.known = {**EXPORTED, **PROMETHEUS_SERIES, **(recorded or {})}

    def labels(self, expr: str) -> set[str]:
        """Return the labels of every series the expression reads."""
        return set().union(*(self.known.get(n, set()) for n in parse(expr).names))

    def problems(self, expr: str, legend: str = "") -> Iterator[str]:
        q = parse(expr)
        for name in sorted(q.names - set(self.known)):
            yield f"{name} is not exported, recorded or Prometheus's: {expr}"
        labels = self.labels(expr)
        for name, label in sorted(q.matched):
            if name in self.known and label not in self.known[name]:
                yield f"{name} has no label {label}: {expr}"
        for label in sorted(q.grouped - labels):
            yield f"no series of the expression has the label {label}: {expr}"
        for label in _LEGEND.findall(legend):
            if label not in labels:
                yield f"the legend names {label}, which the expression lacks: {expr}"


def test_an_unknown_series_or_label_is_found():
    series = Series()
    assert list(series.problems("sum(rate(flashloan_decisions_total[5m]))")) == []
    # A counter is exported with its _total; a histogram as its buckets, count and sum.
    assert list(series.problems("rate(flashloan_decisions[5m])"))
    assert list(series.problems("rate(flashloan_score[5m])"))
    assert list(series.problems("flashloan_score_created"))
    assert list(series.problems('flashloan_breaker_state{scope="tax"}'))
    assert list(series.problems("sum by (scope) (flashloan_breaker_openings_total)"))
    assert list(series.problems("flashloan_breaker_state", legend="{{scope}}"))
    assert list(series.problems('flashloan_drift_psi{variable="score", feature="age"}'))


# --- The dashboard


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels(board: dict) -> Iterator[dict]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def graphs(board: dict) -> list[dict]:
    return [p for p in panels(board) if p["type"] != "row"]


def exprs(panel: dict) -> list[str]:
    return [t["expr"] for t in panel["targets"]]


def test_the_dashboard_asks_only_for_exported_series_by_their_labels():
    board = dashboard()
    series = Series()
    problems = [problem for panel in graphs(board) for t in panel["targets"]
                for problem in series.problems(t["expr"], t.get("legendFormat", ""))]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            found = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
            assert found, query
            problems += series.problems(f"sum by ({found[2]}) ({found[1]})")
    assert not problems, "\n".join(problems)


def test_the_dashboard_shows_every_metric_asked_for():
    used = set().union(*(parse(e).names for p in graphs(dashboard()) for e in exprs(p)))
    wanted = {"flashloan_decisions_total", "flashloan_decision_seconds_bucket",
              "flashloan_score_bucket", "flashloan_pd_bucket", "flashloan_source_seconds_bucket",
              "flashloan_source_seconds_count", "flashloan_breaker_state",
              "flashloan_breaker_openings_total", "flashloan_audit_failures_total",
              *COLLECTED_GAUGES}
    assert wanted - used == set()


def test_every_panel_has_a_title_a_place_and_queries_on_the_chosen_data_source():
    board = dashboard()
    assert board["schemaVersion"] >= 39 and board["uid"] and board["title"]
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    (source,) = [v for v in board["templating"]["list"] if v["name"] == "DS_PROMETHEUS"]
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    for panel in graphs(board):
        assert panel["title"].strip() and panel["description"].strip()
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for t in panel["targets"]:
            assert t["datasource"] == DATASOURCE and t["expr"].strip(), panel["title"]
        place = panel["gridPos"]
        assert place["x"] + place["w"] <= 24 and place["h"] > 0, panel["title"]
    taken: dict[tuple[int, int], str] = {}
    for panel in panels(board):
        place = panel["gridPos"]
        for x in range(place["x"], place["x"] + place["w"]):
            for y in range(place["y"], place["y"] + place["h"]):
                assert taken.setdefault((x, y), panel["title"]) == panel["title"], \
                    f"{panel['title']} overlaps {taken[(x, y)]}"
    # No data source of ours is named anywhere: a bank's Grafana has its own.
    builtin = {"type": "grafana", "uid": "-- Grafana --"}
    assert all(d in (DATASOURCE, builtin) for d in datasources(board))


def datasources(node: object) -> Iterator[object]:
    """Yield every data source named anywhere in a dashboard."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            else:
                yield from datasources(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasources(item)


def thresholds(panel: dict) -> set[float]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return {s["value"] for s in steps if s["value"] is not None}


def panels_reading(board: dict, name: str) -> list[dict]:
    return [p for p in graphs(board) if any(name in parse(e).names for e in exprs(p))]


def test_the_drift_panels_mark_psi_at_0_1_and_0_25():
    board = dashboard()
    drift = panels_reading(board, "flashloan_drift_psi")
    assert len(drift) == 2
    assert any('variable=~"score|pd"' in e for p in drift for e in exprs(p))
    assert any('topk(10,' in e and 'variable!~"score|pd"' in e for p in drift for e in exprs(p))
    for panel in drift:
        assert thresholds(panel) == {0.1, 0.25}, panel["title"]


def test_fairness_is_neither_exported_nor_read_by_the_dashboard_or_the_rules():
    """Fairness figures are for risk officers and auditors only, not for /metrics or Grafana."""
    fairness = "flashloan_fairness_ratio"
    assert fairness not in EXPORTED
    board = dashboard()
    assert not panels_reading(board, fairness)
    assert fairness not in json.dumps(board)
    assert not [rule for rule in rules() if fairness in parse(rule["expr"]).names]
    assert fairness not in RULES.read_text(encoding="utf-8")


def test_the_latency_panels_show_p50_and_p99():
    board = dashboard()
    for name in ("flashloan_decision_seconds_bucket", "flashloan_source_seconds_bucket"):
        (panel,) = panels_reading(board, name)
        text = " ".join(exprs(panel))
        assert "histogram_quantile(0.5," in text and "histogram_quantile(0.99," in text


# --- The rules


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
            for rule in group["rules"]]


def recorded_series() -> dict[str, frozenset[str]]:
    """Return each series the rules record, with the labels it keeps, checking each."""
    recorded: dict[str, frozenset[str]] = {}
    for rule in rules():
        if "record" in rule:
            problems = list(Series(recorded).problems(rule["expr"]))
            assert not problems, "\n".join(problems)
            assert rule["record"].count(":") == 2, "level:metric:operations"
            # What it groups by, or, for a ratio of recorded series, what they keep.
            inputs = parse(rule["expr"]).names & set(recorded)
            kept = set(parse(rule["expr"]).grouped).union(*(recorded[n] for n in inputs))
            recorded[rule["record"]] = frozenset(kept - {"le"})
    return recorded


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def test_every_rule_reads_only_exported_or_recorded_series():
    series = Series(recorded_series())
    problems = [p for rule in alerts() for p in series.problems(rule["expr"])]
    assert not problems, "\n".join(problems)
    assert all(("record" in rule) != ("alert" in rule) for rule in rules())


def test_the_annotations_name_only_labels_the_alerts_have():
    series = Series(recorded_series())
    for rule in alerts():
        named = set(re.findall(r"\$labels\.(\w+)", json.dumps(rule["annotations"])))
        assert named <= series.labels(rule["expr"]), rule["alert"]


def test_every_alert_waits_names_its_severity_and_says_what_and_where_to_read():
    doc = DOC.read_text(encoding="utf-8")
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names))
    for rule in alerts():
        name = rule["alert"]
        assert re.fullmatch(r"(\d+[smhdw])+", rule["for"]), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        notes = rule["annotations"]
        assert notes["summary"].strip() and notes["description"].strip(), name
        assert notes["runbook"] == f"docs/prometheus.md#{name.lower()}"
        assert re.search(rf"^### {name}$", doc, re.MULTILINE), f"{name} is not in {DOC.name}"


def alert(name: str) -> dict:
    (rule,) = [r for r in alerts() if r["alert"] == name]
    return rule


@pytest.mark.parametrize(("name", "series", "wait"), [
    ("FlashloanSourceAvailabilityLow", "flashloan:source_availability:ratio_rate5m", "5m"),
    ("FlashloanBreakerOpen", "flashloan_breaker_state", "0m"),
    ("FlashloanDriftHigh", "flashloan_drift_psi", "1h"),
    ("FlashloanDeferralSpike", "flashloan:deferral_share:ratio_rate10m", "5m"),
    ("FlashloanDecisionLatencyHigh", "flashloan:decision_seconds:p99_5m", "10m"),
    ("FlashloanAuditFailures", "flashloan_audit_failures_total", "0m"),
    ("FlashloanStrategyPlanRefused", "flashloan_strategy_plan_refused", "0m"),
])
def test_each_alert_asked_for_watches_its_series(name, series, wait):
    rule = alert(name)
    assert series in parse(rule["expr"]).names
    assert rule["for"] == wait


def test_the_alert_thresholds_are_the_documented_ones():
    assert "< 0.95" in alert("FlashloanSourceAvailabilityLow")["expr"]
    assert ">= 0.25" in alert("FlashloanDriftHigh")["expr"]
    spike = alert("FlashloanDeferralSpike")["expr"]
    assert "> 3 * flashloan:deferral_share:ratio_rate1d" in spike and "> 0.05" in spike
    assert "[5m]) == 2" in alert("FlashloanBreakerOpen")["expr"]


# --- Where they are loaded


def test_the_example_configurations_load_the_rules_and_the_dashboard():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    assert config["rule_files"] == [RULES.name]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "flashloan" and job["metrics_path"] == "/metrics"
    assert 'up{job="flashloan"}' in alert("FlashloanMetricsMissing")["expr"]
    assert job["authorization"]["type"] == "Bearer"
    source = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml")
                            .read_text(encoding="utf-8"))
    assert [d["type"] for d in source["datasources"]] == ["prometheus"]
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "flashloan.yaml")
                              .read_text(encoding="utf-8"))
    (files,) = provider["providers"]
    assert files["type"] == "file" and files["options"]["path"]
