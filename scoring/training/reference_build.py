"""Write a model's reference (``reference.json`` and its card fields) from its training data.

``flashloan train`` writes it with the model; ``flashloan model reference`` writes it again for
a model already trained, from the same data (checked against the card's digest), without
changing the model or any other field of its card.

The background is a sample of the held-out test split: the applicants the policy approves
when every source answers, decided by the main model (a fallback's main model for a
fallback), with their features as this model reads them. The percentiles are the training
split's; the card's global view is the mean absolute exact contribution over the test split.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from scoring.batch.frames import applicant_ages
from scoring.online.canonical import file_sha256
from scoring.online.engine import DecisionEngine
from scoring.online.model import ModelArtifact
from scoring.online.policy import Policy
from scoring.online.reference import PERCENTILES, REFERENCE_FILE

# Rows of the background. Contributions cost the same per decision whatever its size
# (``scoring.online.interventional``); 200 keep the sampling error of the reference's mean margin
# small and the file small.
BACKGROUND_ROWS = 200


def held_out_approvals(decider: ModelArtifact, policy: Policy, history: pd.DataFrame,
                       features: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Return those of ``rows`` that ``decider`` and ``policy`` approve with every source.

    ``features`` are the history's spec-ordered features, every source present.
    """
    part = history.iloc[rows]
    decided = DecisionEngine(decider, policy).decide(
        features[rows], age=applicant_ages(part), purpose=part["purpose"].to_numpy(dtype=object),
        term_months=part["term_months"].to_numpy(dtype=float))
    return rows[decided.policy.outcome == "approved"]


def add_reference(model: ModelArtifact, history: pd.DataFrame, features: np.ndarray,
                  x: np.ndarray, split: Sequence[np.ndarray], *, seed: int,
                  decider: ModelArtifact, policy: Policy,
                  progress: Callable[[str], None] = lambda _msg: None) -> dict[str, Any]:
    """Write the reference of ``model`` beside it and return its new card.

    Parameters
    ----------
    features
        The history's spec-ordered features with every source present (who is approved).
    x
        The history's features as ``model`` reads them, in its order (what it is explained
        by): for a fallback, built as if its source had not answered.
    split
        Row indices of the training, validation and test splits the model was trained on.
    decider
        The model that decides with every source: ``model`` itself, or a fallback's main
        model.
    """
    train_ix, _, test_ix = split
    approved = held_out_approvals(decider, policy, history, features, test_ix)
    if approved.size == 0:
        raise ValueError(f"policy {policy.version} approves no applicant of the test split: "
                         "there is no reference population")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(approved, size=min(BACKGROUND_ROWS, approved.size),
                                replace=False))
    seen_as = (f"; their features as this model reads them, without "
               f"{', '.join(sorted(model.without))}" if model.without else "")
    population = (f"{chosen.size} applicants drawn at random (seed {seed}) from the "
                  f"{approved.size:,} of the held-out test split ({test_ix.size:,} rows) that "
                  f"policy {policy.version} approves when every source answers{seen_as}")
    progress(f"reference: {population}")
    background = x[chosen]
    document = reference_document(
        model.sha256, model.feature_names, background, x[train_ix], population=population,
        policy_version=policy.version,
        quantile_population=f"the training split ({train_ix.size:,} rows){seen_as}")
    contributions = model.booster.predict(xgb.DMatrix(x[test_ix], missing=np.nan),
                                          pred_contribs=True, validate_features=False)[:, :-1]
    importance = global_importance(
        contributions, model.feature_names,
        f"the held-out test split ({test_ix.size:,} rows){seen_as}")
    mean_margin = float(np.mean(model.margin(background), dtype=np.float64))
    card = write_reference(model.directory, document, mean_margin=mean_margin,
                           importance=importance)
    progress(f"wrote {model.directory / REFERENCE_FILE} (mean margin {mean_margin:.4f}) and "
             "the card's reference and global_importance")
    return card


def _plain(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values.tolist()]


def reference_document(model_sha256: str, feature_names: Sequence[str], background: np.ndarray,
                       training: np.ndarray, *, population: str, policy_version: str,
                       quantile_population: str) -> dict[str, Any]:
    """Return the content of ``reference.json``.

    ``background`` and ``training`` are model-ordered rows (NaN for missing): the approved
    applicants to explain against, and the training split whose percentiles are kept
    (ignoring missing values; null for a feature that is always missing).
    """
    training = np.asarray(training, dtype=np.float64)
    percentiles: dict[str, list[float | None]] = {}
    for j, name in enumerate(feature_names):
        column = training[:, j]
        present = column[~np.isnan(column)]
        percentiles[name] = (_plain(np.percentile(present, PERCENTILES)) if present.size
                             else [None] * len(PERCENTILES))
    return {
        "model_sha256": model_sha256,
        "features": list(feature_names),
        "background": {"population": population, "policy_version": policy_version,
                       "rows": [_plain(row) for row in np.asarray(background, dtype=np.float64)]},
        "quantiles": {"population": quantile_population, "percentiles": list(PERCENTILES),
                      "features": percentiles},
    }


def global_importance(contributions: np.ndarray, feature_names: Sequence[str],
                      population: str) -> dict[str, Any]:
    """Return the card's global view: each feature's mean absolute contribution, largest first."""
    means = np.mean(np.abs(contributions), axis=0)
    ranked = sorted(zip(feature_names, means.tolist(), strict=True), key=lambda p: -p[1])
    return {"population": population, "rows": int(contributions.shape[0]),
            "features": [{"name": n, "mean_abs_contribution": round(v, 6)} for n, v in ranked]}


def write_reference(directory: Path, document: Mapping[str, Any], *, mean_margin: float,
                    importance: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``reference.json`` and name it in ``card.json``; return the new card.

    Only the card's ``reference`` and ``global_importance`` change (placed after
    ``base_value_meaning``); every other field is kept as it was.
    """
    directory = Path(directory)
    path = directory / REFERENCE_FILE
    path.write_text(_render(document), encoding="utf-8")
    background = document["background"]
    fields = {
        "reference": {"file": REFERENCE_FILE, "sha256": file_sha256(path),
                      "population": background["population"], "rows": len(background["rows"]),
                      "policy_version": background["policy_version"],
                      "mean_margin": mean_margin},
        "global_importance": dict(importance),
    }
    card_path = directory / "card.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    kept = [(k, v) for k, v in card.items() if k not in fields]
    keys = [k for k, _ in kept]
    at = keys.index("base_value_meaning") + 1 if "base_value_meaning" in keys else len(kept)
    card = dict([*kept[:at], *fields.items(), *kept[at:]])
    card_path.write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return card


def _render(document: Mapping[str, Any]) -> str:
    """Return the document as JSON with one background row or feature's percentiles a line."""
    def one(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), allow_nan=False)

    background, quantiles = document["background"], document["quantiles"]
    rows = ",\n".join(f"      {one(row)}" for row in background["rows"])
    percentiles = ",\n".join(f"      {one(name)}: {one(values)}"
                              for name, values in quantiles["features"].items())
    return "\n".join([
        "{",
        f'  "model_sha256": {one(document["model_sha256"])},',
        f'  "features": {one(document["features"])},',
        '  "background": {',
        f'    "population": {one(background["population"])},',
        f'    "policy_version": {one(background["policy_version"])},',
        f'    "rows": [\n{rows}\n    ]',
        "  },",
        '  "quantiles": {',
        f'    "population": {one(quantiles["population"])},',
        f'    "percentiles": {one(quantiles["percentiles"])},',
        f'    "features": {{\n{percentiles}\n    }}',
        "  }",
        "}",
    ]) + "\n"
