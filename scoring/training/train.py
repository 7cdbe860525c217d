"""Train a model: features from raw history, monotone XGBoost, calibration, metrics, card.

The model's reference population (``reference.json``, ``scoring.training.reference_build``) and its
drift reference (the card's ``monitoring``, ``scoring.governance.drift``) are written with it, and
can be
written again for a trained model from the same data (:mod:`scoring.training.rebuild`).
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from pandas.api.types import is_numeric_dtype

from datasources.base import INCOME_SCOPES
from datasources.records import raw_columns
from scoring.governance.drift import build_drift_reference
from scoring.online.canonical import file_sha256
from scoring.online.features import features_for_frame
from scoring.online.model import ModelArtifact
from scoring.online.policy import Policy, load_policy
from scoring.online.reference import REFERENCE_FILE
from scoring.online.scaling import PlattCalibration, ScoreScaling
from scoring.online.spec import FeatureSpec, load_spec
from scoring.online.unknown import unknown_features
from scoring.training.fitting import EARLY_STOPPING, Fit, LocalFit
from scoring.training.metrics import summary
from scoring.training.reference_build import add_reference

PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": ["logloss", "auc"],
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.05,
    "min_child_weight": 5.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "lambda": 2.0,
    "max_bin": 256,
}


def stratified_split(y: np.ndarray, seed: int, fractions=(0.6, 0.2, 0.2)) -> list[np.ndarray]:
    """Return train/validation/test row indices with the default rate kept in each part."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == label))
        cuts = np.cumsum([round(f * len(idx)) for f in fractions[:-1]])
        for k, chunk in enumerate(np.split(idx, cuts)):
            parts[k].append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def frame_digest(df: pd.DataFrame) -> str:
    """Return a SHA-256 of a DataFrame's column names and values, in order.

    Built from the values themselves, not from pandas' own hashing, whose result depends on
    how a pandas or pyarrow release stores a column: the digest in a model card must
    reproduce with any version that reads the same data. Numbers of any storage (numpy,
    nullable, arrow; booleans as 0 and 1) are written as float64 with NaN for missing; any
    other value as its text, length-prefixed, with missing as its own marker.
    """
    h = hashlib.sha256()
    for name in df.columns:
        column = df[name]
        label = str(name).encode("utf-8")
        h.update(len(label).to_bytes(8, "little") + label)
        if is_numeric_dtype(column.dtype):
            values = column.to_numpy(dtype="float64", na_value=np.nan)
            h.update(b"n" + np.ascontiguousarray(values, dtype="<f8").tobytes())
            continue
        h.update(b"t")
        for value in column.to_numpy(dtype=object):
            if _missing(value):
                h.update(b"-")
            else:
                text = str(value).encode("utf-8")
                h.update(b"+" + len(text).to_bytes(8, "little") + text)
    return h.hexdigest()


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and value != value)


def without_source(history: pd.DataFrame, scope: str) -> pd.DataFrame:
    """Return the history as if ``scope`` had not answered: its raw columns all missing."""
    blank = history.copy()
    for column in raw_columns(scope):
        blank[column] = None if blank[column].dtype == object else np.nan
    return blank


def model_features(history: pd.DataFrame, spec: FeatureSpec, names: list[str],
                   without: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Return the history's spec-ordered features with every source, and what a model reads.

    A model trained ``without`` an income source reads its ``names`` built as if that source
    had not answered.
    """
    full = features_for_frame(history, spec).to_numpy()
    if without is None:
        return full, full[:, [spec.names.index(n) for n in names]]
    frame = features_for_frame(without_source(history, without), spec)
    return full, frame[names].to_numpy()


def train(history: pd.DataFrame, out: Path, *, version: str | None = None, seed: int = 0,
          data_description: dict[str, Any] | None = None, command: str | None = None,
          progress: Callable[[str], None] = lambda _msg: None, nthread: int = 0,
          without: str | None = None, baseline: Any = None,
          policy: Policy | None = None, fit: Fit | None = None) -> dict:
    """Train on a raw history (source columns, application, ``defaulted``); write the artifact.

    With ``without`` (an income source), train a fallback model: every row's features are
    built as if that source had not answered, and the features it leaves unknown are not
    model inputs. ``baseline`` (a ``ModelArtifact`` trained on the same history and seed)
    is scored on the same held-out rows, with every source, for the card's comparison.

    ``fit`` runs the boosting rounds (default: :class:`LocalFit` on ``nthread`` threads);
    the data, split, parameters, constraints, calibration, metrics and card are the same
    whichever it is, and the card's ``trained_on`` says which.

    The card's ``monitoring`` holds the training split's bins of score, PD and every
    feature the model reads (``scoring.governance.drift``). The reference (``reference.json``) is
    written too, the approved applicants decided by ``policy`` (default: the current one)
    with this model, or for a fallback with ``baseline``: a fallback trained without its
    main model has none.
    """
    if "defaulted" not in history.columns:
        raise ValueError("training data must have a 'defaulted' column (0/1)")
    if without is not None and without not in INCOME_SCOPES:
        raise ValueError(f"without must be one of {', '.join(INCOME_SCOPES)}; got {without!r}")
    y = history["defaulted"].to_numpy().astype(int)
    if set(np.unique(y)) - {0, 1}:
        raise ValueError("defaulted must be 0 or 1 in every row")
    spec = load_spec()
    started = time.perf_counter()
    unknown = unknown_features(spec, () if without is None else (without,))
    names = [n for n in spec.names if n not in unknown.unknown]
    progress(f"building {len(names)} features for {len(history):,} rows"
             + (f" as if {without} had not answered" if without else ""))
    full, x = model_features(history, spec, names, without)
    true_pd = history["true_pd"].to_numpy() if "true_pd" in history.columns else None
    data_digest = frame_digest(history)
    train_ix, valid_ix, test_ix = stratified_split(y, seed)
    progress(f"split: train {len(train_ix):,}, validation {len(valid_ix):,}, "
             f"test {len(test_ix):,} (default rate {y.mean():.2%})")
    dvalid = xgb.DMatrix(x[valid_ix], label=y[valid_ix], missing=np.nan, feature_names=names)
    dtest = xgb.DMatrix(x[test_ix], missing=np.nan, feature_names=names)
    monotone = spec.monotone_constraints(names)
    params = {**PARAMS, "seed": seed, "nthread": nthread,
              "base_score": float(np.clip(y[train_ix].mean(), 1e-4, 1 - 1e-4)),
              "monotone_constraints": "(" + ",".join(map(str, monotone)) + ")"}
    fit = fit or LocalFit(nthread)
    booster = fit(params, (x[train_ix], y[train_ix]), (x[valid_ix], y[valid_ix]), names,
                  progress)
    best = int(booster.best_iteration)
    booster = booster[: best + 1]
    progress(f"stopped at round {best + 1}; calibrating on validation")
    calibration = PlattCalibration.fit(booster.predict(dvalid, output_margin=True), y[valid_ix])
    scaling = ScoreScaling()
    test_pd = calibration.pd(booster.predict(dtest, output_margin=True))
    metrics = summary(y[test_ix], test_pd, None if true_pd is None else true_pd[test_ix])
    progress(f"test AUC {metrics['auc']:.4f} (oracle {metrics['oracle_auc']}), "
             f"KS {metrics['ks']:.4f}, Brier {metrics['brier']:.5f}")
    comparison = None
    if baseline is not None:
        comparison = _compare(baseline, full[test_ix], y[test_ix], metrics["auc"],
                              seed, data_digest)
        progress(f"main model {baseline.version} on the same test rows with every source: "
                 f"AUC {comparison['main_auc']:.4f} (this model loses "
                 f"{comparison['auc_lost']:.4f})")

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.json"
    booster.save_model(str(model_path))
    contribs = booster.predict(xgb.DMatrix(x[:1], missing=np.nan, feature_names=names),
                               pred_contribs=True)
    train_margin = booster.predict(xgb.DMatrix(x[train_ix], missing=np.nan,
                                               feature_names=names), output_margin=True)
    card = {
        "version": version or out.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        **({"without": [without], "unknown_features": list(unknown.unknown),
            "partial_features": list(unknown.partial),
            "fallback_for": (f"applications whose {without} source did not answer: its "
                             "features are unknown, the cross-source features come from the "
                             "other income sources")} if without else {}),
        "features": names,
        "monotone_constraints": monotone,
        "spec_version": spec.version,
        "spec_digest": spec.digest,
        # The part of the spec the model depends on: a later change of texts keeps it valid.
        "spec_model_digest": spec.model_digest,
        "training_data": {
            **(data_description or {}),
            "rows": len(history),
            "default_rate": round(float(y.mean()), 6),
            "digest": data_digest,
            "split": {"train": len(train_ix), "validation": len(valid_ix), "test": len(test_ix),
                      "method": "stratified by defaulted", "seed": seed},
        },
        "params": {**{k: v for k, v in params.items() if k != "monotone_constraints"},
                   "monotone_constraints": monotone, "num_boost_round": best + 1,
                   "early_stopping_rounds": EARLY_STOPPING},
        "trained_on": fit.trained_on(),
        "calibration": calibration.to_dict(),
        "score_scaling": scaling.to_dict(),
        "base_value": float(contribs[0, -1]),
        "base_value_meaning": "expected margin (log-odds) over the training data: the "
                              "reference every contribution is measured from",
        "monitoring": drift_reference(x[train_ix], names, train_margin, calibration, scaling),
        "metrics": metrics,
        **({"compared_with_main": comparison} if comparison else {}),
        "model_sha256": file_sha256(model_path),
        "libraries": training_libraries(),
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    (out / "card.json").write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n",
                                   encoding="utf-8")
    progress(f"wrote {model_path} and card.json")
    # A reference left by an earlier model in this folder is not this model's.
    (out / REFERENCE_FILE).unlink(missing_ok=True)
    if without is not None and baseline is None:
        progress("no reference: a fallback's approved applicants are decided by its main "
                 "model (--main)")
        return card
    model = ModelArtifact(out, nthread=nthread, with_reference=False)
    return add_reference(model, history, full, x, (train_ix, valid_ix, test_ix), seed=seed,
                         decider=model if without is None else baseline,
                         policy=policy or load_policy(), progress=progress)


def drift_reference(x_train: np.ndarray, names: list[str], margin: np.ndarray,
                    calibration: PlattCalibration, scaling: ScoreScaling) -> dict[str, Any]:
    """Return the card's ``monitoring``: the training split binned, with its PDs and scores.

    ``margin`` is the model's margin of each row of ``x_train``, its training features.
    """
    pds = calibration.pd(margin)
    return build_drift_reference(x_train, names, scaling.score(pds), pds)


# A fallback may lose at most this much AUC against the main model on the same rows.
FALLBACK_AUC_TOLERANCE = 0.02


def _compare(baseline: Any, x_test: np.ndarray, y_test: np.ndarray, auc: float,
             seed: int, data_digest: str) -> dict[str, Any]:
    """Return the main model's AUC on the same held-out rows beside this model's."""
    data = baseline.card.get("training_data", {})
    main_seed = data.get("split", {}).get("seed")
    if main_seed != seed or data.get("digest") != data_digest:
        raise ValueError(f"the main model {baseline.version} must be trained on the same data "
                         f"and split seed to compare on the same rows; its card says seed "
                         f"{main_seed}, data digest {data.get('digest')}")
    main_auc = summary(y_test, baseline.calibration.pd(baseline.predict_margin(x_test)),
                       None)["auc"]
    lost = round(main_auc - auc, 4)
    return {"main_model": baseline.version, "main_auc": main_auc, "auc": auc,
            "auc_lost": lost, "tolerance": FALLBACK_AUC_TOLERANCE,
            "within_tolerance": bool(lost <= FALLBACK_AUC_TOLERANCE),
            "test_rows": "the same held-out rows as the main model (same data digest, seed "
                         "and stratified split)"}


def training_libraries() -> dict[str, str]:
    """Return the versions that made a model: the ones its data and trees depend on."""
    import scipy

    return {"xgboost": xgb.__version__, "numpy": np.__version__, "pandas": pd.__version__,
            "scipy": scipy.__version__, "python": platform.python_version(),
            "machine": platform.machine()}
