"""Batch scoring: a whole file of applications decided and explained in one vectorised pass."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from datasources.identity import InvalidNationalId, parse_national_id
from scoring.online.engine import DecisionEngine
from scoring.online.features import features_for_frame

PASSTHROUGH = ("application_id", "national_id")


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file (by extension)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"national_id": str}, keep_default_na=True)
    raise ValueError(f"file must end in .csv or .parquet; got {path.name}")


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write a CSV or Parquet file (by extension)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        raise ValueError(f"file must end in .csv or .parquet; got {path.name}")


def applicant_ages(df: pd.DataFrame, today: date | None = None) -> np.ndarray:
    """Return ages from an ``age`` column, else derived from ``national_id``."""
    if "age" in df.columns:
        return df["age"].to_numpy(dtype=float)
    if "national_id" not in df.columns:
        raise ValueError("input must have an 'age' or a 'national_id' column")
    today = today or date.today()
    ages = np.empty(len(df))
    for i, nid in enumerate(df["national_id"].astype(str)):
        try:
            ages[i] = parse_national_id(nid, today=today).age_on(today)
        except InvalidNationalId as exc:
            raise ValueError(f"row {i}: {exc}") from None
    return ages


def score_frame(df: pd.DataFrame, engine: DecisionEngine, *, explain: bool = False) -> pd.DataFrame:
    """Decide every row; with ``explain``, add ``x_<feature>`` and ``shap_<feature>`` columns."""
    for col in ("purpose", "amount", "term_months"):
        if col not in df.columns:
            raise ValueError(f"input must have a {col!r} column")
    feats = features_for_frame(df, engine.model.spec)
    d = engine.decide(feats.to_numpy(), age=applicant_ages(df),
                      purpose=df["purpose"].to_numpy(dtype=object),
                      term_months=df["term_months"].to_numpy(dtype=float))
    out: dict[str, object] = {c: df[c].to_numpy() for c in PASSTHROUGH if c in df.columns}
    out.update({
        "margin": d.scored.margin,
        "pd": d.scored.pd,
        "score": d.scored.score.astype(np.int64),
        "grade": d.policy.grade,
        "outcome": d.policy.outcome,
        "credit_limit": d.policy.credit_limit,
        "annual_rate": d.policy.annual_rate,
        "reasons": [";".join(r.code for r in rs) for rs in d.reasons],
        "base_value": np.full(len(df), d.scored.base_value),
        "model_version": engine.model.version,
        "policy_version": engine.policy.version,
    })
    frame = pd.DataFrame(out, index=df.index)
    if explain:
        names = engine.model.feature_names
        x = engine.model.select(d.features)
        extra = {f"x_{n}": x[:, j] for j, n in enumerate(names)}
        extra.update({f"shap_{n}": d.scored.contributions[:, j] for j, n in enumerate(names)})
        frame = pd.concat([frame, pd.DataFrame(extra, index=df.index)], axis=1)
    return frame
