"""A decision's explanation, read from its record: the one place both are defined together.

The explanation is not stored beside the record: the API, the notice, the chart and the console
read it from the decision's audit record, so that what is explained is exactly what was
recorded. Records written before a decision carried every policy fact (only the model's
features) read the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scoring.spec import FeatureSpec


def is_scored(record: Mapping[str, Any]) -> bool:
    """Whether a decision record holds a model's decision (a deferral before scoring has none)."""
    return "model_version" in record and "contributions" in record


def explanation_of(record: Mapping[str, Any], spec: FeatureSpec) -> dict[str, Any]:
    """Return the explanation of a scored decision from its record's payload.

    ``features`` lists the model's features in the spec's order, each with its group, the
    value the model read and its exact contribution to the margin.
    """
    if not is_scored(record):
        raise ValueError("the record holds no model decision to explain")
    decision = record["decision"]
    contributions = record["contributions"]
    values = record["features"]
    names = [n for n in spec.names if n in contributions]
    # A model feature the spec no longer knows still shows, after the spec's own.
    names += sorted(n for n in contributions if n not in set(names))
    known = set(spec.names)
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
        "features": [{"name": n, "group": spec.by_name(n).group if n in known else None,
                      "value": values.get(n), "contribution": contributions[n]}
                     for n in names],
        "reasons": record["reasons"],
    }
