"""Reading a decision's record: its explanation, and the facts its policy read.

The explanation is not stored beside the record: the API, the notice, the chart and the console
read it from the decision's audit record, so that what is explained is exactly what was
recorded. Records written before a decision carried every policy fact (only the model's
features) read the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from scoring.online.reasons import REASONS_AVERAGE
from scoring.online.spec import FeatureSpec


def is_scored(record: Mapping[str, Any]) -> bool:
    """Whether a decision record holds a model's decision (a deferral before scoring has none)."""
    return "model_version" in record and "contributions" in record


def explanation_of(record: Mapping[str, Any], spec: FeatureSpec) -> dict[str, Any]:
    """Return the explanation of a scored decision from its record's payload.

    ``features`` lists the model's features in the spec's order, each with its group, the
    value the model read and its exact contribution to the margin. ``reasons_method``,
    ``reference`` and ``reference_contributions`` say what the reasons were ranked by: a
    record made before there were references ranked them by the exact contributions,
    against the average applicant, and names no reference.
    """
    if not is_scored(record):
        raise ValueError("the record holds no model decision to explain")
    decision = record["decision"]
    contributions = record["contributions"]
    values = record["features"]
    # The spec's order; a model's features are all in the spec (ModelArtifact checks).
    names = [n for n in spec.names if n in contributions]
    return {
        "application_id": record.get("application_id"),
        "model_version": record["model_version"], "model_sha256": record["model_sha256"],
        "policy_version": record["policy_version"],
        "outcome": decision["outcome"], "base_value": record["base_value"],
        "margin": record["margin"], "pd": decision["pd"], "score": decision["score"],
        "grade": decision["grade"], "rules_fired": decision["rules_fired"],
        "undetermined_rules": decision.get("undetermined_rules", []),
        "unknown_sources": record.get("unknown_sources", []),
        "unknown_features": record.get("unknown_features", []),
        "partial_features": record.get("partial_features", []),
        "features": [{"name": n, "group": spec.by_name(n).group, "value": values.get(n),
                      "contribution": contributions[n]} for n in names],
        "reasons": record["reasons"],
        "reasons_method": record.get("reasons_method", REASONS_AVERAGE),
        "reference": record.get("reference"),
        "reference_contributions": record.get("reference_contributions"),
        # What would lead to approval, as found at decision time (None before it was sought).
        "recourse": record.get("recourse"),
    }


APPLICATION_FACTS = ("age", "purpose", "term_months")
"""What the policy reads of an application besides its features."""


def recorded_facts(record: Mapping[str, Any], feature_names: Sequence[str]) -> dict[str, Any]:
    """Return what the policy read, as the record holds it: each feature (NaN when unknown)
    and the application's facts. Never a guessed value: raise ValueError naming what the
    record lacks.

    A record holds every feature of the spec (null when unknown). A feature it lacks may be
    missing only because its source did not answer (records from before every policy fact
    was kept held the model's features alone); any other is a record that cannot be trusted.
    """
    features = record["features"]
    unknown = set(record.get("unknown_features", ()))
    facts = record.get("facts", {})
    lacking = [n for n in feature_names if n not in features and n not in unknown]
    lacking += [k for k in APPLICATION_FACTS if k not in facts]
    if lacking:
        raise ValueError(f"the decision record lacks what the policy read: {', '.join(lacking)}")
    read: dict[str, Any] = {n: math.nan if features.get(n) is None else features[n]
                            for n in feature_names}
    read.update((k, facts[k]) for k in APPLICATION_FACTS)
    return read
