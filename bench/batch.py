"""5. Batch scoring with explanations against raw XGBoost on the same rows."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import xgboost as xgb

from bench.common import table
from datasources.stub.world import generate, population_ids
from scoring.batch.frames import score_frame
from scoring.online.engine import DecisionEngine
from scoring.online.features import features_for_frame
from scoring.online.model import load_model
from scoring.online.policy import load_policy


def run(quick: bool) -> str:
    rows = 20_000 if quick else 100_000
    frame = pd.DataFrame(generate(population_ids(rows, 9)))
    engine = DecisionEngine(load_model(nthread=0), load_policy())
    x = engine.model.select(features_for_frame(frame).to_numpy())
    booster = engine.model.booster

    started = time.perf_counter()
    dm = xgb.DMatrix(x, missing=np.nan)
    booster.predict(dm, output_margin=True, validate_features=False)
    booster.predict(dm, pred_contribs=True, validate_features=False)
    raw_s = time.perf_counter() - started

    started = time.perf_counter()
    out = score_frame(frame, engine, explain=True)
    ours_s = time.perf_counter() - started
    assert len(out) == rows
    ratio = raw_s / ours_s
    return "\n".join([
        "## 5. Batch scoring with explanations",
        "",
        f"{rows:,} rows. Raw XGBoost: `predict` (margin) and `predict(pred_contribs=True)` on a "
        "ready feature matrix. Ours: `score_frame(explain=True)` from the raw source columns — "
        "features, margin and PD from the contributions alone, score, policy, reasons.",
        "",
        table(["", "seconds", "rows/s"],
              [["raw XGBoost", f"{raw_s:.1f}", f"{rows / raw_s:,.0f}"],
               ["flashloan score --explain", f"{ours_s:.1f}", f"{rows / ours_s:,.0f}"]]),
        "",
        f"Ratio: {ratio:.2f}× raw XGBoost's rows per second (goal: at least 0.8×).",
    ])
