"""Rewriting a trained model's reference and drift reference from the data it was trained
on, without retraining it: the model and every other field of its card stay as they are."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.online.model import ModelArtifact
from scoring.online.policy import Policy, load_policy
from scoring.training.reference_build import add_reference
from scoring.training.train import drift_reference, frame_digest, model_features, stratified_split


def training_rows(model: ModelArtifact, history: pd.DataFrame
                  ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Return the split and features of the history ``model`` was trained on.

    The history must be the card's (same digest). Return the training, validation and test
    row indices, the spec-ordered features with every source, and the features as the model
    reads them (for a fallback, built as if its source had not answered).
    """
    data = model.card["training_data"]
    found = frame_digest(history)
    if found != data["digest"]:
        raise ValueError(f"the training data must be model {model.version}'s (digest "
                         f"{data['digest']}); got digest {found}")
    without = sorted(model.without)[0] if model.without else None
    split = stratified_split(history["defaulted"].to_numpy().astype(int),
                             int(data["split"]["seed"]))
    full, x = model_features(history, model.spec, model.feature_names, without)
    return split, full, x


def rebuild_reference(directory: Path, history: pd.DataFrame, *, policy: Policy | None = None,
                      main: ModelArtifact | None = None,
                      progress: Callable[[str], None] = lambda _msg: None) -> dict:
    """Write a trained model's reference again, from the history it was trained on.

    The history must be the card's (same digest); the model and every other card field are
    left as they are. A fallback needs ``main``, the main model trained on the same data,
    whose decisions say who is approved. Return the new card.
    """
    model = ModelArtifact(directory, with_reference=False)
    data = model.card["training_data"]
    if model.without:
        if main is None:
            raise ValueError(f"model {model.version} is a fallback: its reference needs the "
                             "main model whose decisions say who is approved")
        if main.card["training_data"]["digest"] != data["digest"] or main.without:
            raise ValueError(f"main model {main.version} must be trained with every source on "
                             f"model {model.version}'s data")
    split, full, x = training_rows(model, history)
    return add_reference(model, history, full, x, split, seed=int(data["split"]["seed"]),
                         decider=main or model, policy=policy or load_policy(),
                         progress=progress)


# The drift reference goes right after the first of these fields the card has.
_MONITORING_AFTER = ("global_importance", "reference", "base_value_meaning")


def rebuild_monitoring(directory: Path, history: pd.DataFrame, *,
                       progress: Callable[[str], None] = lambda _msg: None) -> dict:
    """Write a trained model's drift reference (its card's ``monitoring``) again.

    From the history it was trained on (the card's digest): the model's own scores and PDs
    of its training split. Only ``monitoring`` changes in ``card.json``, placed after the
    reference and global view; model.json and every other field stay as they are. Return
    the new card.
    """
    model = ModelArtifact(directory, with_reference=False)
    (train_ix, _, _), _, x = training_rows(model, history)
    progress(f"binning the training split ({train_ix.size:,} rows): score, PD and "
             f"{len(model.feature_names)} features")
    section = drift_reference(x[train_ix], model.feature_names, model.margin(x[train_ix]),
                              model.calibration, model.scaling)
    card_path = Path(directory) / "card.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    kept = [(k, v) for k, v in card.items() if k != "monitoring"]
    keys = [k for k, _ in kept]
    at = next((keys.index(k) + 1 for k in _MONITORING_AFTER if k in keys), len(kept))
    card = dict([*kept[:at], ("monitoring", section), *kept[at:]])
    card_path.write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n",
                         encoding="utf-8")
    progress(f"wrote the monitoring section of {card_path}")
    return card
