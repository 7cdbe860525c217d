"""What a backtest found: the candidate's decisions against the recorded ones, in figures.

Every figure is plain JSON (numbers, text, lists, objects; ``None`` where there is nothing to
measure), so that a summary can be stored, sent and drawn as it is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from scoring.governance.drift import level, sample_shift

__all__ = ["OUTCOMES", "REASON_SEPARATOR", "summarise"]

OUTCOMES = ("approved", "declined", "deferred")
REASON_SEPARATOR = ";"
# Two rates closer than this are one rate (each is recorded rounded to six decimals).
_RATE_TOLERANCE = 1e-9


def summarise(frame: pd.DataFrame, replayed: pd.DataFrame, *, lgd: float,
              changed_limit: int = 200) -> dict[str, Any]:
    """Compare the candidate's decisions (``replayed``) with the recorded ones (``frame``).

    Parameters
    ----------
    frame
        The logged decisions (see :mod:`scoring.batch.backtest`), with ``application_id``,
        ``decided_at`` and ``defaulted`` (1.0 or 0.0 where the loan's outcome is known,
        NaN otherwise).
    replayed
        :func:`scoring.batch.backtest.replay_frame` of ``frame``: the same index.
    lgd
        The loss given default, in [0, 1]: expected loss is Σ PD × line × LGD over the
        approvals.
    changed_limit
        How many of the changed decisions to list (all are counted).
    """
    if not 0.0 <= lgd <= 1.0:
        raise ValueError(f"lgd must be between 0 and 1; got {lgd}")
    if changed_limit < 0:
        raise ValueError(f"changed_limit must be at least 0; got {changed_limit}")
    if not frame.index.equals(replayed.index):
        raise ValueError("replayed must have the index of frame: one row per logged decision")
    rows = len(frame)
    recorded, candidate = _outcomes(frame["outcome"]), _outcomes(replayed["c_outcome"])
    rec_ok, cand_ok = recorded == "approved", candidate == "approved"
    rec_pd, cand_pd = _floats(frame["pd"]), _floats(replayed["c_pd"])
    rec_line, cand_line = _floats(frame["credit_limit"]), _floats(replayed["c_credit_limit"])
    defaulted = _floats(frame["defaulted"])
    swap_in = (recorded == "declined") & cand_ok
    swap_out = rec_ok & (candidate == "declined")
    changed = _changed(frame, replayed, recorded, candidate)
    rec_loss = _expected_loss(rec_pd, rec_line, rec_ok, lgd)
    cand_loss = _expected_loss(cand_pd, cand_line, cand_ok, lgd)
    return {
        "rows": rows,
        "lgd": lgd,
        "recorded_strategies": {str(k): int(v) for k, v in
                                frame["strategy"].value_counts(sort=False).sort_index().items()}
        if "strategy" in frame.columns else {},
        "unscored": int((replayed["c_note"].fillna("") != "").sum())
        if "c_note" in replayed.columns else 0,
        "approval": {"recorded": _share(rec_ok), "candidate": _share(cand_ok),
                     "recorded_count": int(rec_ok.sum()), "candidate_count": int(cand_ok.sum()),
                     "change_pp": (None if rows == 0 else
                                   _plain((cand_ok.mean() - rec_ok.mean()) * 100.0))},
        "swap": {"outcomes": list(OUTCOMES),
                 "matrix": {r: {c: int(((recorded == r) & (candidate == c)).sum())
                                for c in OUTCOMES} for r in OUTCOMES},
                 "swap_in": int(swap_in.sum()), "swap_out": int(swap_out.sum())},
        "expected_loss": {"recorded": rec_loss, "candidate": cand_loss,
                          "change": _plain(cand_loss - rec_loss)},
        "realised_default": {"approved_by_both": _realised(rec_ok & cand_ok, defaulted),
                             "swap_in": _realised(swap_in, defaulted),
                             "swap_out": _realised(swap_out, defaulted),
                             "recorded_approvals": _realised(rec_ok, defaulted)},
        "score_shift": _score_shift(frame["score"], replayed["c_score"]),
        "means": {"pd": {"recorded": _mean(rec_pd), "candidate": _mean(cand_pd)},
                  "line": {"recorded": _mean(rec_line[rec_ok]),
                           "candidate": _mean(cand_line[cand_ok])}},
        "changes": {"count": int(changed.sum()),
                    "decisions": _changed_rows(frame, replayed, changed, changed_limit)},
    }


def _outcomes(column: pd.Series) -> np.ndarray:
    return column.fillna("").astype(str).to_numpy()


def _floats(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _plain(value: Any) -> float | None:
    """A number as JSON holds it: a Python float, None when it is missing or not finite."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _share(mask: np.ndarray) -> float | None:
    return _plain(mask.mean()) if mask.size else None


def _mean(values: np.ndarray) -> float | None:
    present = values[~np.isnan(values)]
    return _plain(present.mean()) if present.size else None


def _expected_loss(pd_: np.ndarray, line: np.ndarray, approved: np.ndarray,
                   lgd: float) -> float:
    return float(np.sum(pd_[approved] * line[approved]) * lgd)


def _realised(mask: np.ndarray, defaulted: np.ndarray) -> dict[str, Any]:
    """The decisions of ``mask``, those with a known loan outcome, and the share defaulted."""
    known = defaulted[mask & ~np.isnan(defaulted)]
    defaults = int((known > 0).sum())
    return {"decisions": int(mask.sum()), "with_outcome": int(known.size), "defaults": defaults,
            "rate": defaults / known.size if known.size else None}


def _score_shift(recorded: pd.Series, candidate: pd.Series) -> dict[str, Any]:
    """The candidate's score against the recorded one, in equal-frequency bins of the latter."""
    rec, cand = _floats(recorded), _floats(candidate)
    if np.isnan(rec).all():
        return {"psi": None, "level": level(None), "bins": []}
    shift = sample_shift(rec, cand)
    return {"psi": shift.psi, "level": level(shift.psi),
            "bins": [{"label": b["label"], "recorded": b["expected"],
                      "candidate": b["observed"]} for b in shift.shares()]}


def _changed(frame: pd.DataFrame, replayed: pd.DataFrame, recorded: np.ndarray,
             candidate: np.ndarray) -> np.ndarray:
    """Which decisions differ in outcome, grade, credit line or rate."""
    grade = frame["grade"].to_numpy(dtype=object) != replayed["c_grade"].to_numpy(dtype=object)
    line = _floats(frame["credit_limit"]) != _floats(replayed["c_credit_limit"])
    rec_rate, cand_rate = _floats(frame["annual_rate"]), _floats(replayed["c_annual_rate"])
    both_missing = np.isnan(rec_rate) & np.isnan(cand_rate)
    with np.errstate(invalid="ignore"):
        rate = ~both_missing & ~(np.abs(rec_rate - cand_rate) <= _RATE_TOLERANCE)
    return np.asarray((recorded != candidate) | grade | line | rate, dtype=bool)


def _changed_rows(frame: pd.DataFrame, replayed: pd.DataFrame, changed: np.ndarray,
                  limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` changed decisions, in the frame's order, recorded beside candidate."""
    shown = np.flatnonzero(changed)[:limit]
    rec, cand = frame.iloc[shown], replayed.iloc[shown]
    return [{"application_id": str(r.application_id),
             "decided_at": str(r.decided_at) if "decided_at" in frame.columns else None,
             "recorded": _decision(r.outcome, r.credit_limit, r.annual_rate, r.grade,
                                   r.reason_codes),
             "candidate": {**_decision(c.c_outcome, c.c_credit_limit, c.c_annual_rate,
                                       c.c_grade, c.c_reason_codes),
                           "note": (c.c_note or None) if "c_note" in cand.columns
                           else None}}
            for r, c in zip(rec.itertuples(index=False), cand.itertuples(index=False),
                            strict=True)]


def _decision(outcome: Any, line: Any, rate: Any, grade: Any, reasons: Any) -> dict[str, Any]:
    present = isinstance(grade, str) and grade != ""
    return {"outcome": str(outcome), "credit_limit": _plain(line), "annual_rate": _plain(rate),
            "grade": grade if present else None,
            "reason_codes": [code for code in (reasons if isinstance(reasons, str) else "")
                             .split(REASON_SEPARATOR) if code]}
