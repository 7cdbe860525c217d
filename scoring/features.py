"""Build model features from source records: one application online, or a whole DataFrame.

Both paths turn their input into the same raw columns (``datasources.records.flatten``
naming) and run the one vectorised ``feature_matrix``, so they cannot disagree. A source
that did not answer gives missing values, never zeros.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from datasources.records import COLUMN_PREFIX, SourceRecord, flatten, raw_columns
from scoring.spec import FeatureSpec, load_spec

STABLE_EMPLOYERS = ("government", "soe", "public_institution")
APPLICATION_COLUMNS = ("amount", "term_months")
RAW_COLUMNS = tuple(c for scope in COLUMN_PREFIX for c in raw_columns(scope))
_TRUE_STRINGS = {"true", "1", "1.0", "yes"}
_FALSE_STRINGS = {"false", "0", "0.0", "no"}


def _num(values: Any) -> np.ndarray:
    """Return values as float64 with None, NaN and booleans handled (True → 1.0)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64)
    if arr.dtype.kind == "O":
        # Numbers, booleans and None (→ NaN) convert in one step; strings take the loop.
        try:
            return np.array(arr, dtype=np.float64)
        except (TypeError, ValueError):
            pass
    out = np.full(arr.shape, np.nan)
    for i, v in enumerate(arr.ravel()):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        if isinstance(v, str):
            low = v.strip().lower()
            if low in _TRUE_STRINGS:
                out.flat[i] = 1.0
            elif low in _FALSE_STRINGS:
                out.flat[i] = 0.0
            elif low in ("", "nan", "none"):
                continue
            else:
                out.flat[i] = float(low)
        else:
            out.flat[i] = float(v)
    return out


def _text(values: Any) -> np.ndarray:
    """Return values as an object array of stripped strings, None where missing."""
    arr = np.asarray(values, dtype=object)
    return np.array([None if v is None or (isinstance(v, float) and np.isnan(v)) or v == ""
                     else str(v) for v in arr], dtype=object)


def _where(cond: np.ndarray, value: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Return ``value`` where ``cond``, NaN elsewhere; NaN wherever the source is absent."""
    out = np.where(cond, value, np.nan)
    return np.where(present, out, np.nan)


def feature_matrix(cols: Mapping[str, Any], spec: FeatureSpec | None = None) -> np.ndarray:
    """Return the features of raw source and application columns as rows × spec features."""
    spec = spec or load_spec()
    n = len(np.asarray(cols["amount"]))
    out = _features(cols)
    # Column-major, so that each feature's column is contiguous; filled in place rather
    # than through a broadcast copy per feature, which costs more than the features of one
    # row themselves.
    matrix = np.empty((n, len(spec.names)), dtype=np.float64, order="F")
    for j, name in enumerate(spec.names):
        matrix[:, j] = out[name]
    return matrix


def _features(cols: Mapping[str, Any]) -> dict[str, np.ndarray]:
    g = {name: _num(cols[name]) for name in RAW_COLUMNS if name not in _TEXT_COLUMNS}
    t = {name: _text(cols[name]) for name in _TEXT_COLUMNS}

    # A source answered when its record's defining flag is present.
    pf_present = ~np.isnan(g["pf_has_account"])
    ss_present = ~np.isnan(g["ss_enrolled"])
    tax_present = ~np.isnan(g["tax_has_record"])
    court_present = ~np.isnan(g["court_dishonest_debtor"])
    pf_acc = pf_present & (g["pf_has_account"] == 1)
    ss_on = ss_present & (g["ss_enrolled"] == 1)
    tax_on = tax_present & (g["tax_has_record"] == 1)

    pf_status = t["pf_status"]
    pf_etype = t["pf_employer_type"]
    out: dict[str, np.ndarray] = {
        "pf_has_account": g["pf_has_account"],
        "pf_status_normal": _where(pf_acc, (pf_status == "normal").astype(float), pf_present),
        "pf_months_continuous": np.where(pf_present, g["pf_months_continuous"], np.nan),
        "pf_monthly_base": _where(pf_acc, g["pf_monthly_base"], pf_present),
        "pf_employer_stable": _where(pf_acc, np.array([v in STABLE_EMPLOYERS for v in pf_etype],
                                                      dtype=float), pf_present),
        "pf_withdrawals_12m": np.where(pf_present, g["pf_withdrawals_12m"], np.nan),
        "ss_enrolled": g["ss_enrolled"],
        "ss_months_continuous": np.where(ss_present, g["ss_months_continuous"], np.nan),
        "ss_contribution_base": _where(ss_on, g["ss_contribution_base"], ss_present),
        "ss_employer_changes_24m": np.where(ss_present, g["ss_employer_changes_24m"], np.nan),
        "tax_has_record": g["tax_has_record"],
        "tax_monthly_salary": _where(tax_on, g["tax_monthly_salary_avg_12m"], tax_present),
        "tax_months_with_income_12m": np.where(tax_present, g["tax_months_with_income_12m"],
                                               np.nan),
        "tax_withholding_agents_12m": np.where(tax_present, g["tax_withholding_agents_12m"],
                                               np.nan),
        "cr_has_record": g["cr_has_record"],
        "cr_card_utilization": g["cr_card_utilization"],
        "cr_card_limit_total": g["cr_card_limit_total"],
        "cr_loans_open": g["cr_loans_open"],
        "cr_overdue_count_24m": g["cr_overdue_count_24m"],
        "cr_worst_overdue_24m": g["cr_worst_overdue_24m"],
        "cr_inquiries_3m": g["cr_inquiries_3m"],
        "cr_inquiries_6m": g["cr_inquiries_6m"],
        "cr_credit_age_months": g["cr_credit_age_months"],
        "cr_overdue_now": g["cr_overdue_now"],
        "cr_bad_debt": g["cr_bad_debt"],
        "court_adverse_listing": np.where(
            court_present,
            np.maximum(g["court_dishonest_debtor"], g["court_consumption_restricted"]), np.nan),
        "court_enforcement_open": g["court_enforcement_open"],
        "court_enforcement_amount": g["court_enforcement_amount"],
        "court_lawsuits_5y": g["court_lawsuits_5y"],
        "term_months": _num(cols["term_months"]),
    }
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        total_tax_income = g["tax_annual_income_last_year"] + g["tax_business_income_12m"]
        out["tax_business_income_share"] = _where(
            tax_on & (total_tax_income >= 1), g["tax_business_income_12m"] / total_tax_income,
            tax_present)

        # Cross-source income: each source that shows an income (at least ¥1 a month, so
        # ratios stay finite) gives one estimate.
        estimates = np.vstack([
            np.where(pf_acc & (g["pf_monthly_base"] >= 1), g["pf_monthly_base"], np.nan),
            np.where(ss_on & (g["ss_contribution_base"] >= 1), g["ss_contribution_base"],
                     np.nan),
            np.where(tax_on & (g["tax_monthly_salary_avg_12m"] >= 1),
                     g["tax_monthly_salary_avg_12m"], np.nan),
        ])
        count = np.sum(~np.isnan(estimates), axis=0).astype(float)
        ordered = np.sort(estimates, axis=0)  # NaN sorts last
        lowest = ordered[0]
        # The median of three, the lower of two (the conservative choice), the one of one.
        verified = np.where(count >= 3, ordered[1], lowest)
        highest = np.where(count >= 3, ordered[2], np.where(count == 2, ordered[1], np.nan))
        any_income_source = pf_present | ss_present | tax_present
        out["income_verified_monthly"] = np.where(count >= 1, verified, np.nan)
        out["income_sources"] = np.where(any_income_source, count, np.nan)
        out["income_dispersion"] = np.where(count >= 2, highest / lowest, np.nan)
        pf_emp, ss_emp = t["pf_employer_name"], t["ss_employer_name"]
        both = np.array([a is not None and b is not None for a, b in zip(pf_emp, ss_emp,
                                                                        strict=True)], dtype=bool)
        same = np.array([a == b for a, b in zip(pf_emp, ss_emp, strict=True)], dtype=float)
        out["employer_agreement"] = np.where(both, same, np.nan)
        income = out["income_verified_monthly"]
        out["debt_to_income"] = np.where(income > 0, g["cr_monthly_debt_payment"] / income,
                                         np.nan)
        out["requested_to_income"] = np.where(income > 0, _num(cols["amount"]) / (12 * income),
                                              np.nan)
    return out


_TEXT_COLUMNS = ("pf_status", "pf_employer_type", "pf_employer_name", "ss_employer_name",
                 "ss_city", "pf_last_paid_month", "ss_last_paid_month")


def features_for_application(records: Mapping[str, SourceRecord | None], amount: float,
                             term_months: int, spec: FeatureSpec | None = None) -> np.ndarray:
    """Return one application's feature vector in spec order (NaN for missing values)."""
    spec = spec or load_spec()
    row = flatten(dict(records))
    cols = {k: [v] for k, v in row.items()}
    cols["amount"] = [amount]
    cols["term_months"] = [term_months]
    return feature_matrix(cols, spec)[0]


def features_for_frame(df: pd.DataFrame, spec: FeatureSpec | None = None) -> pd.DataFrame:
    """Return the features of every row of a DataFrame of raw source columns."""
    spec = spec or load_spec()
    missing = [c for c in (*RAW_COLUMNS, *APPLICATION_COLUMNS) if c not in df.columns]
    if missing:
        raise ValueError(f"input must have the raw source columns; missing: {', '.join(missing)}")
    cols = {c: df[c].to_numpy() for c in (*RAW_COLUMNS, *APPLICATION_COLUMNS)}
    return pd.DataFrame(feature_matrix(cols, spec), index=df.index, columns=spec.names)
