"""Backtests: the recorded facts of logged decisions decided again by a candidate strategy.

A frame of logged decisions holds, per scored decision, everything its policy read (every
feature of the spec, NaN where unknown, and ``age``, ``purpose``, ``term_months``), the
sources that did not answer (``unknown_sources``, sorted and ``,``-joined) and what was
decided (``outcome``, ``score``, ``pd``, ``grade``, ``credit_limit``, ``annual_rate``,
``reason_codes`` joined by ``;``). :func:`replay_frame` decides the same rows with a candidate
engine; :func:`scoring.batch.backtest_summary.summarise` compares the two.

Replay is row by row independent, so a frame split into partitions and replayed part by part
gives the same rows, to the bit, as the whole frame replayed at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.batch.backtest_summary import REASON_SEPARATOR, summarise
from scoring.online.engine import DecisionEngine
from scoring.online.explanation import APPLICATION_FACTS

__all__ = ["RECORDED", "REPLAYED", "replay_frame", "summarise", "unknown_scopes"]

RECORDED = ("outcome", "score", "pd", "grade", "credit_limit", "annual_rate", "reason_codes")
"""The recorded decision's columns; the candidate's are the same names prefixed ``c_``."""

REPLAYED = (*(f"c_{name}" for name in RECORDED), "c_note")
"""The columns :func:`replay_frame` returns; ``c_note`` says why a row was not scored."""

SCOPE_SEPARATOR = ","
# A decision records its rate and PD rounded so (scoring.online.engine.Decisions.row).
_RATE_DECIMALS, _PD_DECIMALS = 6, 8


def unknown_scopes(text: str) -> list[str]:
    """Return the sources of an ``unknown_sources`` cell: ``"a,b"`` → ``["a", "b"]``."""
    return [scope for scope in str(text).split(SCOPE_SEPARATOR) if scope]


def replay_frame(frame: pd.DataFrame, engine: DecisionEngine) -> pd.DataFrame:
    """Decide every row of ``frame`` with ``engine``: the candidate's decisions, same index.

    Rows are decided in one call per set of unknown sources. A row whose unknown sources no
    model of the candidate decides without is deferred by it, unscored, and ``c_note`` says
    why (it is empty for every row the candidate scored).

    Parameters
    ----------
    frame
        Logged decisions: every feature of the engine's spec, ``age``, ``purpose``,
        ``term_months`` and ``unknown_sources``, in any order and with any index.
    engine
        The candidate strategy: its model, fallbacks and policy.
    """
    names = engine.spec_names
    lacking = [c for c in (*names, *APPLICATION_FACTS, "unknown_sources")
               if c not in frame.columns]
    if lacking:
        raise ValueError(f"frame must have a column for every fact the policy reads; got no "
                         f"{', '.join(lacking)}")
    n = len(frame)
    outcome = np.full(n, "deferred", dtype=object)
    grade = np.full(n, None, dtype=object)
    reasons = np.full(n, "", dtype=object)
    note = np.full(n, "", dtype=object)
    score, pd_, rate = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    line = np.zeros(n)
    x = frame[names].to_numpy(dtype=np.float64)
    age = frame["age"].to_numpy(dtype=np.float64)
    term = frame["term_months"].to_numpy(dtype=np.float64)
    purpose = frame["purpose"].to_numpy(dtype=object)
    unknown = frame["unknown_sources"].fillna("").astype(str)
    for key, rows in sorted(unknown.groupby(unknown.to_numpy(), sort=True).indices.items()):
        scopes = unknown_scopes(str(key))
        if engine.model_for(scopes) is None:
            note[rows] = (f"no model of {engine.model.version} decides without "
                          f"{', '.join(scopes)}: deferred unscored")
            continue
        decided = engine.decide(x[rows], age=age[rows], purpose=purpose[rows],
                                term_months=term[rows], unknown_scopes=scopes)
        result = decided.policy
        approved = result.outcome == "approved"
        outcome[rows] = result.outcome
        grade[rows] = result.grade
        score[rows] = decided.scored.score
        # Rounded as a record holds them (Python's round, which numpy's may differ from in
        # the last bit), so that a decision replayed alike compares equal.
        pd_[rows] = [round(p, _PD_DECIMALS) for p in decided.scored.pd.tolist()]
        line[rows] = result.credit_limit
        rate[rows] = [round(r, _RATE_DECIMALS) if ok else np.nan
                      for r, ok in zip(result.annual_rate.tolist(), approved.tolist(),
                                       strict=True)]
        reasons[rows] = [REASON_SEPARATOR.join(r.code for r in given)
                         for given in decided.reasons]
    return pd.DataFrame({"c_outcome": outcome, "c_score": score, "c_pd": pd_,
                         "c_grade": grade, "c_credit_limit": line, "c_annual_rate": rate,
                         "c_reason_codes": reasons, "c_note": note}, index=frame.index)
