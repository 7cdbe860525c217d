"""An independent TreeSHAP of a shipped model: model.json read here, the algorithm from shap.

The service explains with XGBoost's own ``pred_contribs``, and ``shap.TreeExplainer`` given an
XGBoost booster takes the same shortcut. To check the service against something else, the
trees are read from model.json by this module and handed to shap as a plain tree ensemble,
so that shap's own TreeSHAP implementation does the work.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

MODELS = Path(__file__).resolve().parents[1] / "scoring" / "models"


def _tree(tree: Mapping[str, Any]) -> dict[str, np.ndarray]:
    left = np.asarray(tree["left_children"], dtype=np.int32)
    right = np.asarray(tree["right_children"], dtype=np.int32)
    leaf = left == -1
    # One field holds the split threshold of a node and the value of a leaf.
    condition = np.asarray(tree["split_conditions"], dtype=np.float32)
    default_left = np.asarray(tree["default_left"], dtype=np.int32) == 1
    return {
        "children_left": left,
        "children_right": right,
        "children_default": np.where(default_left, left, right).astype(np.int32),
        "features": np.where(leaf, -1, np.asarray(tree["split_indices"], dtype=np.int32)),
        # XGBoost goes left when x < t, shap when x <= t: take the float32 just below t.
        "thresholds": np.where(leaf, 0.0, np.nextafter(condition, np.float32(-np.inf)))
        .astype(np.float64),
        "values": np.where(leaf, condition, 0.0).astype(np.float64).reshape(-1, 1),
        "node_sample_weight": np.asarray(tree["sum_hessian"], dtype=np.float64),
    }


class ReferenceExplainer:
    """Exact TreeSHAP of ``scoring/models/<version>/model.json`` in log-odds."""

    def __init__(self, version: str) -> None:
        import shap

        path = MODELS / version / "model.json"
        with path.open(encoding="utf-8") as fh:
            learner = json.load(fh)["learner"]
        objective = learner["objective"]["name"]
        if objective != "binary:logistic":
            raise ValueError(f"model objective must be binary:logistic; got {objective!r}")
        booster = learner["gradient_booster"]
        if booster["name"] != "gbtree":
            raise ValueError(f"model booster must be gbtree; got {booster['name']!r}")
        base_score = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))
        self.feature_names: list[str] = list(learner["feature_names"])
        ensemble = {
            "trees": [_tree(t) for t in booster["model"]["trees"]],
            "base_offset": math.log(base_score / (1 - base_score)),
            "tree_output": "log_odds",
            "objective": "binary_crossentropy",
            "input_dtype": np.float32,
            "internal_dtype": np.float64,
        }
        self.explainer = shap.TreeExplainer(ensemble)
        if self.explainer.model.model_type != "internal":
            raise AssertionError("shap must run its own TreeSHAP, not XGBoost's")

    def explain(self, values: Mapping[str, float | None]) -> tuple[float, dict[str, float]]:
        """Return the base value and each feature's contribution for one row of values."""
        row = np.array([[np.nan if values[n] is None else values[n]
                         for n in self.feature_names]], dtype=np.float64)
        phi = np.asarray(self.explainer.shap_values(row))[0]
        base = float(np.ravel(self.explainer.expected_value)[0])
        return base, {n: float(phi[j]) for j, n in enumerate(self.feature_names)}

