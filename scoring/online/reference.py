"""A model's reference population, stored beside it as ``reference.json``.

It holds (a) a background sample of approved applicants, the population a decision's reasons
are measured against (``scoring.online.interventional``), and (b) each feature's percentiles over
the model's training split, the bounds of plausible values. The card names the file with its
SHA-256 (``reference``), so that an altered file is refused like an altered model; a model
whose card names none still loads, and its reasons are measured against the average
applicant instead. ``scoring.training.reference_build`` writes it.

The file::

    {"model_sha256": ..., "features": [names, in the model's order],
     "background": {"population": words, "policy_version": ..., "rows": [[value|null, ...]]},
     "quantiles": {"population": words, "percentiles": [0, 1, ..., 100],
                   "features": {name: [value at each percentile|null, ...]}}}
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scoring.online.canonical import file_sha256

REFERENCE_FILE = "reference.json"
PERCENTILES = tuple(range(101))
# The background's mean margin is recomputed at load; it may differ from the card's by the
# last digits of float32 sums in another XGBoost build, never by more.
MEAN_MARGIN_TOLERANCE = 1e-5


class InvalidReference(ValueError):
    """A reference that is missing, altered or does not fit its model."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A loaded reference: the background and the training data's percentiles."""

    sha256: str
    population: str
    policy_version: str
    feature_names: tuple[str, ...]
    background: np.ndarray                 # (rows, F) in the model's order, NaN for missing
    quantiles: Mapping[str, np.ndarray]    # each feature's value at PERCENTILES, NaN if none
    mean_margin: float                     # the model's mean margin over the background

    def quantile(self, name: str, percentile: int) -> float:
        """Return a feature's value at a whole percentile (0-100) of the training split."""
        if name not in self.quantiles:
            raise KeyError(f"feature {name!r} has no quantiles in this reference")
        if percentile not in PERCENTILES:
            raise ValueError(f"percentile must be a whole number from 0 to 100; got {percentile}")
        return float(self.quantiles[name][percentile])

    def bounds(self, names: Sequence[str] | None = None, low: int = 1,
               high: int = 99) -> dict[str, tuple[float, float]]:
        """Return each feature's (low, high) percentiles: its plausible values."""
        return {n: (self.quantile(n, low), self.quantile(n, high))
                for n in (names or self.feature_names)}


def load_reference(directory: Path, card: Mapping[str, Any], feature_names: Sequence[str],
                   margin: Callable[[np.ndarray], np.ndarray]) -> Reference | None:
    """Load the reference the card names, checked; None when the card names none.

    ``margin`` is the model's raw margin of model-ordered rows: the background's mean
    margin is what interventional contributions add up to with the margin.
    """
    named = card.get("reference")
    path = Path(directory) / REFERENCE_FILE
    if named is None:
        if path.exists():
            raise InvalidReference(f"{REFERENCE_FILE} is not named by its card: it cannot be "
                                   "checked")
        return None
    path = Path(directory) / named["file"]
    if not path.is_file():
        raise InvalidReference(f"the card names {named['file']}, which is missing")
    sha256 = file_sha256(path)
    if sha256 != named["sha256"]:
        raise InvalidReference(f"{named['file']} SHA-256 {sha256} does not match its card "
                             f"({named['sha256']})")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc["model_sha256"] != card["model_sha256"] or doc["features"] != list(feature_names):
        raise InvalidReference(f"{named['file']} was made for another model or feature order")
    background = np.array([[math.nan if v is None else v for v in row]
                           for row in doc["background"]["rows"]], dtype=np.float64)
    if background.ndim != 2 or background.shape[0] == 0 or \
            background.shape[1] != len(feature_names):
        raise InvalidReference(f"{named['file']} background must hold rows of "
                             f"{len(feature_names)} features")
    quantiles = doc["quantiles"]
    if quantiles["percentiles"] != list(PERCENTILES) or \
            set(quantiles["features"]) != set(feature_names):
        raise InvalidReference(f"{named['file']} must give percentiles 0-100 of every feature")
    values = {n: np.array([math.nan if v is None else v for v in quantiles["features"][n]],
                          dtype=np.float64) for n in feature_names}
    mean_margin = float(np.mean(margin(background), dtype=np.float64))
    if abs(mean_margin - float(named["mean_margin"])) > MEAN_MARGIN_TOLERANCE:
        raise InvalidReference(f"the background's mean margin is {mean_margin}; its card "
                             f"says {named['mean_margin']}")
    return Reference(sha256, str(named["population"]), str(named["policy_version"]),
                     tuple(feature_names), background, values, mean_margin)
