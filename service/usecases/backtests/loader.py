"""The decision log as a frame for a backtest: one row per application's latest scored decision.

Each ``decision.made`` record in the window is read once, streaming, into column arrays of at
most ``chunk`` rows; no more than one payload is held as a dict at a time. A deferred
application decided again has one record per attempt: its latest record in the window
stands, and the application is left out when that record holds no model decision (deferred
before scoring) or was purged. The realised default of each decision comes from the loan
outcomes the servicing system posted (:mod:`service.usecases.outcomes`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from audit import AuditQuery, AuditRecord, AuditStore
from audit.canonical import format_time
from scoring.batch.backtest import SCOPE_SEPARATOR
from scoring.batch.backtest_summary import REASON_SEPARATOR
from scoring.online.explanation import is_scored, recorded_facts
from scoring.online.spec import FeatureSpec
from service.persistence.tables import loan_performance, loans
from service.usecases.decision_records import DECISION_KIND
from service.usecases.outcomes import is_default

__all__ = ["logged_decisions", "realised_defaults"]

_TEXTS = ("application_id", "decided_at", "strategy", "purpose", "unknown_sources", "outcome",
          "grade", "reason_codes")
_NUMBERS = ("age", "term_months", "amount", "score", "pd", "credit_limit", "annual_rate")
# Application ids per query of the loan tables: well under every driver's bound on parameters.
_IDS_PER_QUERY = 500


def logged_decisions(store: AuditStore, spec: FeatureSpec, *, since: datetime | None,
                     until: datetime | None, chunk: int = 50_000) -> pd.DataFrame:
    """Return the scored decisions recorded in [since, until), latest per application.

    Columns: ``application_id``, ``decided_at``, ``strategy``, every feature of ``spec``
    (NaN where unknown), ``age``, ``purpose``, ``term_months``, ``amount``,
    ``unknown_sources`` (sorted, ``,``-joined), the recorded ``outcome``, ``score``, ``pd``,
    ``grade``, ``credit_limit``, ``annual_rate``, ``reason_codes`` (``;``-joined), ``seq``
    (the record's) and ``defaulted`` (1.0 or 0.0 for a drawn loan whose outcome was posted,
    NaN otherwise), in the order the decisions were recorded. ``attrs["skipped"]`` counts the
    records left out: ``purged``, ``unscored``, ``incomplete`` (a record lacking a fact its
    policy read) and ``superseded`` (an earlier attempt of an application decided again).
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer; got {chunk!r}")
    query = AuditQuery(since=since, until=until, kinds=(DECISION_KIND,))
    latest: dict[str, int] = {}
    skipped: Counter[str] = Counter()
    parts: list[pd.DataFrame] = []
    columns = _Columns(spec.names, chunk)
    for record in store.iter_records(query):
        payload = record.payload
        application_id = record.application_id or (payload or {}).get("application_id")
        if application_id is not None:
            latest[application_id] = record.seq
        if payload is None:
            skipped["purged"] += 1
        elif not is_scored(payload):
            skipped["unscored"] += 1
        elif not columns.add(record, payload):
            skipped["incomplete"] += 1
        if columns.full:
            parts.append(columns.frame())
            columns = _Columns(spec.names, chunk)
    parts.append(columns.frame())
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    standing = frame["seq"].to_numpy() == frame["application_id"].map(latest).to_numpy()
    skipped["superseded"] = int((~standing).sum())
    frame = frame.loc[standing].reset_index(drop=True)
    frame["defaulted"] = realised_defaults(store.engine, frame["application_id"].tolist())
    frame.attrs["skipped"] = {k: skipped[k] for k in ("purged", "unscored", "incomplete",
                                                       "superseded")}
    return frame


def realised_defaults(engine: Engine, application_ids: Sequence[str]) -> np.ndarray:
    """Return, per application, 1.0 if its drawn loan defaulted, 0.0 if it has not, and NaN
    when no drawn loan was posted (:func:`service.usecases.outcomes.is_default` decides)."""
    found: dict[str, float] = {}
    with engine.connect() as conn:
        for start in range(0, len(application_ids), _IDS_PER_QUERY):
            ids = list(application_ids[start:start + _IDS_PER_QUERY])
            drawn = conn.execute(select(loans.c.application_id).where(
                loans.c.application_id.in_(ids), loans.c.drawn.is_(True))).scalars().all()
            found.update(dict.fromkeys(drawn, 0.0))
            months = conn.execute(select(loan_performance.c.application_id,
                                         loan_performance.c.status,
                                         loan_performance.c.days_past_due).where(
                loan_performance.c.application_id.in_(drawn))).all()
            found.update((m.application_id, 1.0) for m in months
                         if is_default(m.status, m.days_past_due))
    return np.array([found.get(a, np.nan) for a in application_ids], dtype=np.float64)


class _Columns:
    """Column arrays of up to ``size`` decisions, filled one record at a time."""

    def __init__(self, names: list[str], size: int) -> None:
        self.names, self.size, self.rows = names, size, 0
        self.seq = np.zeros(size, dtype=np.int64)
        self.features = np.full((size, len(names)), np.nan)
        self.numbers = {k: np.full(size, np.nan) for k in _NUMBERS}
        self.texts = {k: np.full(size, "", dtype=object) for k in _TEXTS}

    @property
    def full(self) -> bool:
        return self.rows == self.size

    def add(self, record: AuditRecord, payload: Mapping[str, Any]) -> bool:
        """Add a scored decision's record; False, adding nothing, if it lacks a policy fact."""
        try:
            facts = recorded_facts(payload, self.names)
        except ValueError:
            return False
        decision = payload["decision"]
        texts = {"application_id": record.application_id or payload["application_id"],
                 "decided_at": format_time(record.recorded_at),
                 "strategy": _strategy(payload), "purpose": str(facts["purpose"]),
                 "unknown_sources": SCOPE_SEPARATOR.join(
                     sorted(payload.get("unknown_sources", ()))),
                 "outcome": decision["outcome"], "grade": decision["grade"],
                 "reason_codes": REASON_SEPARATOR.join(payload.get("reason_codes", ()))}
        numbers = {"age": facts["age"], "term_months": facts["term_months"],
                   "amount": payload["facts"].get("amount"), "score": decision["score"],
                   "pd": decision["pd"], "credit_limit": decision["credit_limit"],
                   "annual_rate": decision["annual_rate"]}
        i = self.rows
        self.seq[i] = record.seq
        self.features[i] = [facts[name] for name in self.names]
        for key, text in texts.items():
            self.texts[key][i] = text
        for key, number in numbers.items():
            self.numbers[key][i] = np.nan if number is None else float(number)
        self.rows += 1
        return True

    def frame(self) -> pd.DataFrame:
        n = self.rows
        columns: dict[str, Any] = {"seq": self.seq[:n]}
        columns.update((k, self.texts[k][:n]) for k in ("application_id", "decided_at",
                                                         "strategy"))
        columns.update(zip(self.names, self.features[:n].T, strict=True))
        columns.update((k, self.numbers[k][:n]) for k in ("age", "term_months", "amount"))
        columns.update((k, self.texts[k][:n]) for k in ("purpose", "unknown_sources"))
        columns.update((k, self.texts[k][:n] if k in self.texts else self.numbers[k][:n])
                       for k in ("outcome", "score", "pd", "grade", "credit_limit",
                                 "annual_rate", "reason_codes"))
        return pd.DataFrame(columns)


def _strategy(payload: Mapping[str, Any]) -> str:
    """The strategy that decided: as the record names it, else its model and policy."""
    named = payload.get("strategy")
    if isinstance(named, Mapping) and named.get("name"):
        return str(named["name"])
    return f"{payload['model_version']}/{payload['policy_version']}"
