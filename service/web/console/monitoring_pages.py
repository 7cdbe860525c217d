"""The monitoring dashboard: the live book over a window, each panel a chart with its numbers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, render_template, request

from scoring.governance.drift import ACT, WATCH
from service.usecases.monitoring.fairness import RATIO_FLOOR
from service.usecases.monitoring.windows import DEFAULT_WINDOW, WINDOWS
from service.web.charts import bars_svg, compare_svg, latency_svg, series_svg
from service.web.charts.panels.matrix import matrix_svg
from service.web.console.access import may, requires_capability
from service.web.console.blueprint import bp
from service.web.wiring import wiring

OUTCOME_KEYS = [("approved", "Approved", "#1e8449"), ("declined", "Declined", "#c0392b"),
                ("deferred", "Deferred", "#8795a3")]
# How many features the drift chart shows, those that moved most first.
DRIFT_SHOWN = 12
# A source answering less often than this is drawn red (the alerting rules use it too).
AVAILABILITY_FLOOR = 0.95


@bp.route("/monitoring")
@requires_capability("monitoring.read")
def monitoring():
    """Every panel of the dashboard over the window asked for (the last 24 hours by default)."""
    name = request.args.get("window", DEFAULT_WINDOW)
    if name not in WINDOWS:
        abort(400, description=f"window must be one of {', '.join(WINDOWS)}; got {name!r}")
    by = request.args.get("by") or None
    # The form offers one series choice for every window: one that does not apply to the
    # window chosen gives its own series.
    if by not in WINDOWS[name].series_by:
        by = None
    reader = wiring().monitoring
    window = reader.window(name, by=by)
    view = reader.dashboard(window, with_fairness=may("monitoring.fairness"))
    return render_template("console/monitoring.html", view=view,
                           charts=_charts(view, wiring().charts.uri), windows=WINDOWS,
                           window=window)


def _charts(view: dict[str, Any], uri: Callable[..., str]) -> dict[str, Any]:
    """Each panel's chart as a data URI; the tables beside them carry the same numbers."""
    sources, steps = view["sources"], view["latency"]["steps"]
    charts: dict[str, Any] = {
        "series": uri(series_svg, view["series"], keys=OUTCOME_KEYS,
                      title=f"Decisions {view['window']['by_label']}"),
        **_strategy_charts(view["strategies"], uri),
        "grades": uri(bars_svg, [{"label": f"Grade {g['grade']}", "value": g["count"]}
                                 for g in view["grades"]], title="Approvals by grade"),
        "sources": uri(latency_svg, [{"label": s["source"], "p50": s["p50_ms"],
                                      "p99": s["p99_ms"]} for s in sources],
                       title="Source latency, ms"),
        "availability": uri(bars_svg, [
            {"label": s["source"], "value": s["availability"],
             "level": "act" if (s["availability"] or 0) < AVAILABILITY_FLOOR else None}
            for s in sources], title="Source availability", percent=True,
            thresholds=[(AVAILABILITY_FLOOR, "95%")]),
        "steps": uri(latency_svg, [{"label": s["step"], "p50": s["p50_ms"],
                                    "p99": s["p99_ms"]} for s in steps],
                     title="Decision steps, ms"),
        "reasons": uri(bars_svg, [{"label": f"{r['code']} {r['text_en']}", "value": r["count"]}
                                  for r in view["reasons"]],
                       title="Most frequent decline reasons"),
        "models": [_model_charts(model, uri) for model in view["drift"]["models"]],
    }
    if view.get("fairness"):
        charts["fairness"] = [
            uri(bars_svg, [{"label": g["label"], "value": g["approval_ratio"],
                            "level": "act" if g["flagged"] else None}
                           for g in d["groups"] if not g["too_few"]],
                title=f"Approval rate over the most favoured group: {d['label'].lower()}",
                thresholds=[(RATIO_FLOOR, "4/5 rule")])
            for d in view["fairness"]["dimensions"]]
    return charts


def _strategy_charts(panel: dict[str, Any], uri: Callable[..., str]) -> dict[str, Any]:
    """Each strategy's approval rate, and each shadow's outcomes against the decided ones."""
    return {
        "strategies": uri(bars_svg, [{"label": f"{s['name']} ({s['role']})",
                                      "value": s["approval_rate"]}
                                     for s in panel["strategies"]],
                          title="Approval rate by strategy", percent=True),
        "swaps": [uri(matrix_svg, w["matrix"]["counts"], rows=w["matrix"]["rows"],
                      columns=w["matrix"]["columns"],
                      title=f"Shadow {w['shadow']} against the decided outcomes",
                      row_caption="decided", column_caption="the shadow would have",
                      diagonal=("same outcome", "another outcome"))
                  for w in panel["swaps"]]}


def _model_charts(model: dict[str, Any], uri: Callable[..., str]) -> dict[str, str] | None:
    """A model's score and PD against training, and its features' PSI (None without a
    training reference)."""
    if model["score"] is None:
        return None
    version = model["model_version"]
    return {
        "score": uri(compare_svg, _bins(model["score"]),
                     title=f"Score of {version} against training"),
        "pd": uri(compare_svg, _bins(model["pd"]), title=f"PD of {version} against training"),
        "drift": uri(bars_svg, [{"label": f["label"], "value": f["psi"], "level": f["level"]}
                                for f in model["features"][:DRIFT_SHOWN]],
                     title=f"PSI by feature, {version}",
                     thresholds=[(WATCH, "watch"), (ACT, "act")])}


def _bins(variable: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"label": b["label"], "observed": b["observed"], "expected": b["expected"]}
            for b in variable["bins"]]
