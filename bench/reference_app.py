"""The reference: the cost a user would pay for the model alone.

A minimal Flask app serving the same ``model.json``: for one posted feature vector it returns
XGBoost's margin and its ``pred_contribs``, nothing else. It runs under gunicorn at its own
fastest setting (sync workers) and the service at its production settings, two workers each,
so the ratio of their throughputs is the price of everything else a decision does
(validation, consent, sources, policy, reasons, audit).
"""

from __future__ import annotations

import os

import numpy as np
import xgboost as xgb
from flask import Flask, jsonify, request

from scoring.online.model import model_dir


def create_app() -> Flask:
    app = Flask(__name__)
    booster = xgb.Booster()
    booster.load_model(str(model_dir(os.environ.get("FLASHLOAN_MODEL_VERSION")) / "model.json"))
    booster.set_param({"nthread": 1})

    @app.post("/score")
    def score():
        x = np.asarray([request.get_json()["features"]], dtype=np.float64)
        dm = xgb.DMatrix(x, missing=np.nan, nthread=1)
        margin = booster.predict(dm, output_margin=True, validate_features=False)
        contribs = booster.predict(dm, pred_contribs=True, validate_features=False)
        return jsonify({"margin": float(margin[0]), "contributions": contribs[0].tolist()})

    return app


app = create_app()
