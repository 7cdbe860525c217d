"""Model cards: every shipped version, and one card with its metrics and charts."""

from __future__ import annotations

from flask import abort, render_template, request
from markupsafe import Markup

from scoring.online.model import ModelError, list_versions, read_card
from service.web.charts import PointsScale, global_importance, importance_svg, parse_units
from service.web.console.access import requires_capability
from service.web.console.blueprint import bp
from service.web.console.calibration import calibration_svg
from service.web.wiring import wiring

METRICS = (
    ("auc", "AUC", "Area under the ROC curve on the held-out set."),
    ("oracle_auc", "Oracle AUC", "The AUC of the true probability of default: the ceiling."),
    ("ks", "KS", "Largest gap between the score distributions of defaulters and others."),
    ("gini", "Gini", "2 × AUC − 1."),
    ("brier", "Brier score", "Mean squared error of the calibrated PD (lower is better)."),
    ("mean_pd", "Mean predicted PD", "Average calibrated PD on the held-out set."),
    ("default_rate", "Observed default rate", "Share of the held-out set that defaulted."),
    ("n", "Held-out rows", "Applications the metrics were measured on."),
    ("defaults", "Held-out defaults", "Defaults among them."),
)


def _cards() -> list[dict]:
    search = wiring().settings.model_search
    roles = wiring().strategies.roles()
    items = []
    for version in list_versions(search):
        try:
            card = read_card(version, search)
        except (ModelError, OSError, ValueError):
            continue
        items.append({"version": version, "created": card.get("created"),
                      "roles": roles.get(version, []), "metrics": card.get("metrics", {}),
                      "features": len(card.get("features", []))})
    return items


@bp.route("/models")
@requires_capability("models.read")
def models():
    """The model versions this service has, and which one decides."""
    return render_template("console/models.html", items=_cards())


@bp.route("/models/<version>")
@requires_capability("models.read")
def model(version: str):
    """One model card: metrics, calibration, global view, features and training data."""
    try:
        units = parse_units(request.args.get("units"))
    except ValueError as exc:
        abort(400, description=f"{exc}.")
    search = wiring().settings.model_search
    if version not in list_versions(search):
        abort(404, description="There is no such model version. The list of models is "
                               "under Models.")
    try:
        card = read_card(version, search)
    except (ModelError, OSError, ValueError):
        abort(404, description="This model's card cannot be read.")
    metrics = card.get("metrics", {})
    table = metrics.get("calibration_table") or []
    chart = Markup(calibration_svg(table, version=version)) if table else None
    spec = wiring().engine.model.spec
    features = []
    for name, direction in zip(card.get("features", []),
                               card.get("monotone_constraints", []), strict=False):
        try:
            feature = spec.by_name(name)
        except KeyError:
            features.append({"name": name, "monotone": direction, "group": "",
                             "description": ""})
            continue
        features.append({"name": name, "monotone": direction, "group": feature.group,
                         "description": feature.description})
    return render_template("console/model.html", card=card, version=version,
                           roles=wiring().strategies.roles().get(version, []),
                           metrics=[(label, metrics.get(key), about)
                                    for key, label, about in METRICS if key in metrics],
                           table=table, chart=chart, features=features,
                           **_global_view(card, spec, units))


def _global_view(card: dict, spec, units: str) -> dict:
    """The card's global view as the page shows it: a chart, or why there is none."""
    found: dict = {"units": units, "importance": None, "importance_problem": None,
                   "importance_units": units}
    try:
        view = global_importance(card)
    except ValueError as exc:
        return {**found, "importance_problem": str(exc)}
    if view is None:
        return found
    # A card without calibration or scaling has no points: its view is drawn in log-odds.
    shown = units if PointsScale.from_card(card) is not None else "log_odds"
    # Our own SVG; every text in it is escaped where it is drawn.
    return {**found, "importance": Markup(importance_svg(card, spec, units=shown)),
            "importance_view": view, "importance_units": shown}
