"""Build model features from source records: one application online, or a whole DataFrame.

Both paths turn their input into the same raw columns (``datasources.records.flatten``
naming) and run the one vectorised ``feature_matrix``, so they cannot disagree. A source
that did not answer gives missing values, never zeros.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from datasources.records import COLUMN_PREFIX, SourceRecord, flatten, raw_columns
from scoring.online.spec import FeatureSpec, load_spec

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


def _text_rows(cols: Mapping[str, Any], names: tuple[str, ...]) -> np.ndarray:
    """Return the named columns as rows (names × n), each as ``_text`` makes it, in one pass."""
    flat = np.concatenate([np.asarray(cols[name], dtype=object) for name in names])
    return _text(flat).reshape(len(names), -1)


# The raw columns that hold text; the rest, and the application's amount and term, are numbers.
_TEXT_COLUMNS = ("pf_status", "pf_employer_type", "pf_employer_name", "ss_employer_name",
                 "ss_city", "pf_last_paid_month", "ss_last_paid_month")
_NUMERIC_COLUMNS = (*(c for c in RAW_COLUMNS if c not in _TEXT_COLUMNS), *APPLICATION_COLUMNS)
_COLUMN = {name: i for i, name in enumerate(_NUMERIC_COLUMNS)}
# The text columns a feature reads.
_READ_TEXT = ("pf_status", "pf_employer_type", "pf_employer_name", "ss_employer_name")

# A source answered when its record's defining flag is present; it shows an account, an
# enrolment or a tax record when that flag is 1. Rows of the ``known`` conditions in
# ``_features``, in this order.
_ANSWERED = {"pf_answered": "pf_has_account", "ss_answered": "ss_enrolled",
             "tax_answered": "tax_has_record", "court_answered": "court_dishonest_debtor"}
_SHOWS = {"pf_account": "pf_has_account", "ss_enrolment": "ss_enrolled",
          "tax_record": "tax_has_record"}
_CONDITIONS = (*_ANSWERED, *_SHOWS)

# Features that are one numeric column as received, kept where a condition holds and NaN
# elsewhere (None: kept always). The features built from several columns are in _features.
_COPIED: dict[str, tuple[str, str | None]] = {
    "pf_has_account": ("pf_has_account", None),
    "pf_months_continuous": ("pf_months_continuous", "pf_answered"),
    "pf_monthly_base": ("pf_monthly_base", "pf_account"),
    "pf_withdrawals_12m": ("pf_withdrawals_12m", "pf_answered"),
    "ss_enrolled": ("ss_enrolled", None),
    "ss_months_continuous": ("ss_months_continuous", "ss_answered"),
    "ss_contribution_base": ("ss_contribution_base", "ss_enrolment"),
    "ss_employer_changes_24m": ("ss_employer_changes_24m", "ss_answered"),
    "tax_has_record": ("tax_has_record", None),
    "tax_monthly_salary": ("tax_monthly_salary_avg_12m", "tax_record"),
    "tax_months_with_income_12m": ("tax_months_with_income_12m", "tax_answered"),
    "tax_withholding_agents_12m": ("tax_withholding_agents_12m", "tax_answered"),
    **{name: (name, None) for name in (
        "cr_has_record", "cr_card_utilization", "cr_card_limit_total", "cr_loans_open",
        "cr_overdue_count_24m", "cr_worst_overdue_24m", "cr_inquiries_3m", "cr_inquiries_6m",
        "cr_credit_age_months", "cr_overdue_now", "cr_bad_debt", "court_enforcement_open",
        "court_enforcement_amount", "court_lawsuits_5y", "term_months")},
}
# Every feature this module builds, in the shipped spec's order: the rows of ``_features``'
# result, which a spec of that order takes as they are.
FEATURES = (
    "pf_has_account", "pf_status_normal", "pf_months_continuous", "pf_monthly_base",
    "pf_employer_stable", "pf_withdrawals_12m", "ss_enrolled", "ss_months_continuous",
    "ss_contribution_base", "ss_employer_changes_24m", "tax_has_record", "tax_monthly_salary",
    "tax_months_with_income_12m", "tax_withholding_agents_12m", "tax_business_income_share",
    "cr_has_record", "cr_card_utilization", "cr_card_limit_total", "cr_loans_open",
    "cr_overdue_count_24m", "cr_worst_overdue_24m", "cr_inquiries_3m", "cr_inquiries_6m",
    "cr_credit_age_months", "cr_overdue_now", "cr_bad_debt", "court_adverse_listing",
    "court_enforcement_open", "court_enforcement_amount", "court_lawsuits_5y",
    "income_verified_monthly", "income_sources", "income_dispersion", "employer_agreement",
    "debt_to_income", "requested_to_income", "term_months",
)
_ROW = {name: i for i, name in enumerate(FEATURES)}
# The copied features as index arrays, so that each kind is copied in one operation.
_ALWAYS = [(_ROW[f], _COLUMN[c]) for f, (c, cond) in _COPIED.items() if cond is None]
_ALWAYS_ROWS, _ALWAYS_COLUMNS = (np.array(ix) for ix in zip(*_ALWAYS, strict=True))
_GATED = [(_ROW[f], _COLUMN[c], _CONDITIONS.index(cond)) for f, (c, cond) in _COPIED.items()
          if cond is not None]
_GATED_ROWS, _GATED_COLUMNS, _GATED_CONDITIONS = (np.array(ix)
                                                  for ix in zip(*_GATED, strict=True))
_ANSWER_FLAGS = np.array([_COLUMN[c] for c in _ANSWERED.values()])
_SHOW_FLAGS = np.array([_COLUMN[c] for c in _SHOWS.values()])
# Each income source's monthly income, in the order of _SHOWS.
_INCOMES = np.array([_COLUMN[c] for c in ("pf_monthly_base", "ss_contribution_base",
                                          "tax_monthly_salary_avg_12m")])


def _numeric(cols: Mapping[str, Any]) -> np.ndarray:
    """Return the numeric columns as float64 rows (``_NUMERIC_COLUMNS`` × n), as ``_num`` does."""
    arrays = [np.asarray(cols[name]) for name in _NUMERIC_COLUMNS]
    if all(a.dtype.kind in "biufO" for a in arrays):
        # Numbers, booleans and None convert in one step, the very cast _num applies to each
        # such column; a column of text (kind "U") or of anything float() refuses takes _num.
        try:
            return np.array(arrays, dtype=np.float64)
        except (TypeError, ValueError):
            pass
    return np.array([_num(a) for a in arrays])


@cache
def _spec_rows(names: tuple[str, ...]) -> np.ndarray | None:
    """Return the rows of ``_features``' result in the order of ``names`` (None: as they are)."""
    rows = np.array([_ROW[name] for name in names], dtype=np.intp)
    return None if np.array_equal(rows, np.arange(len(FEATURES))) else rows


def feature_matrix(cols: Mapping[str, Any], spec: FeatureSpec | None = None) -> np.ndarray:
    """Return the features of raw source and application columns as rows × spec features."""
    spec = spec or load_spec()
    features = _features(cols)
    rows = _spec_rows(tuple(spec.names))
    # Built as features × rows, so the transpose is column-major: each feature's column is
    # contiguous.
    return (features if rows is None else features[rows]).T


def _features(cols: Mapping[str, Any]) -> np.ndarray:
    """Return every feature of ``FEATURES`` (rows) of n applications (columns)."""
    g = _numeric(cols)
    n = g.shape[1]
    answered = ~np.isnan(g[_ANSWER_FLAGS])
    shows = answered[:len(_SHOWS)] & (g[_SHOW_FLAGS] == 1)
    known = np.concatenate((answered, shows))
    pf_present, ss_present, tax_present, court_present = answered
    pf_acc, _, tax_on = shows

    out = np.empty((len(FEATURES), n), dtype=np.float64)
    out[_ALWAYS_ROWS] = g[_ALWAYS_COLUMNS]
    out[_GATED_ROWS] = np.where(known[_GATED_CONDITIONS], g[_GATED_COLUMNS], np.nan)

    pf_status, pf_etype, pf_emp, ss_emp = _text_rows(cols, _READ_TEXT)
    out[_ROW["pf_status_normal"]] = np.where(pf_acc, (pf_status == "normal").astype(float),
                                             np.nan)
    out[_ROW["pf_employer_stable"]] = np.where(
        pf_acc, np.array([v in STABLE_EMPLOYERS for v in pf_etype], dtype=float), np.nan)
    out[_ROW["court_adverse_listing"]] = np.where(
        court_present, np.maximum(g[_COLUMN["court_dishonest_debtor"]],
                                  g[_COLUMN["court_consumption_restricted"]]), np.nan)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        business = g[_COLUMN["tax_business_income_12m"]]
        total_tax_income = g[_COLUMN["tax_annual_income_last_year"]] + business
        out[_ROW["tax_business_income_share"]] = np.where(
            tax_on & (total_tax_income >= 1), business / total_tax_income, np.nan)

        # Cross-source income: each source that shows an income (at least ¥1 a month, so
        # ratios stay finite) gives one estimate.
        incomes = g[_INCOMES]
        counted = shows & (incomes >= 1)
        estimates = np.where(counted, incomes, np.nan)
        count = counted.sum(axis=0, dtype=np.float64)
        ordered = np.sort(estimates, axis=0)  # NaN sorts last
        lowest = ordered[0]
        # The median of three, the lower of two (the conservative choice), the one of one.
        three = count >= 3
        verified = np.where(three, ordered[1], lowest)
        highest = np.where(three, ordered[2], np.where(count == 2, ordered[1], np.nan))
        any_income_source = pf_present | ss_present | tax_present
        income = np.where(count >= 1, verified, np.nan)
        has_income = income > 0
        out[_ROW["income_verified_monthly"]] = income
        out[_ROW["income_sources"]] = np.where(any_income_source, count, np.nan)
        out[_ROW["income_dispersion"]] = np.where(count >= 2, highest / lowest, np.nan)
        out[_ROW["employer_agreement"]] = np.array(
            [np.nan if a is None or b is None else float(a == b)
             for a, b in zip(pf_emp, ss_emp, strict=True)], dtype=np.float64)
        out[_ROW["debt_to_income"]] = np.where(
            has_income, g[_COLUMN["cr_monthly_debt_payment"]] / income, np.nan)
        out[_ROW["requested_to_income"]] = np.where(
            has_income, g[_COLUMN["amount"]] / (12 * income), np.nan)
    return out


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
