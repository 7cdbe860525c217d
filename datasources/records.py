"""Typed, immutable records that every source adapter returns (DESIGN §4).

Units: money in CNY, durations in months, months as ``YYYY-MM``. "No account" or "no
record" is a valid answer carried by the record itself (``has_account=False``), never ``None``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

EMPLOYER_TYPES = ("government", "soe", "public_institution", "private", "foreign", "other")
PF_STATUSES = ("normal", "suspended", "closed")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class RecordError(ValueError):
    """A source answer does not fit its record type."""


def _check(cond: bool, record: str, name: str, expect: str, got: Any) -> None:
    if not cond:
        raise RecordError(f"{record}.{name} must be {expect}; got {got!r}")


class _Record:
    """Shared validation and (de)serialisation for the source records."""

    SCOPE: ClassVar[str]
    # field name -> ("bool" | "int" | "money" | "ratio" | "str" | "month" | enum tuple, optional)
    KINDS: ClassVar[dict[str, tuple[Any, bool]]]

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in fields(self):  # type: ignore[arg-type]
            kind, optional = self.KINDS[f.name]
            value = getattr(self, f.name)
            if value is None:
                _check(optional, name, f.name, "present", value)
                continue
            if kind == "bool":
                _check(isinstance(value, bool), name, f.name, "a boolean", value)
            elif kind == "int":
                _check(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                       name, f.name, "a non-negative integer", value)
            elif kind in ("money", "ratio"):
                ok = (isinstance(value, int | float) and not isinstance(value, bool)
                      and math.isfinite(value) and value >= 0)
                _check(ok, name, f.name, "a finite non-negative number", value)
                if kind == "ratio":
                    _check(value <= 10, name, f.name, "a ratio no greater than 10", value)
                object.__setattr__(self, f.name, float(value))
            elif kind == "str":
                _check(isinstance(value, str) and len(value) <= 200, name, f.name,
                       "a string of at most 200 characters", value)
            elif kind == "month":
                _check(isinstance(value, str) and bool(_MONTH.match(value)), name, f.name,
                       "a month as YYYY-MM", value)
            else:
                _check(value in kind, name, f.name, f"one of {', '.join(kind)}", value)

    def to_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON-ready values."""
        # Every field is a plain value, so no deep copy (dataclasses.asdict) is needed.
        return {name: getattr(self, name) for name in self.KINDS}

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Build a record from a mapping, rejecting unknown and missing fields."""
        if not isinstance(data, dict):
            raise RecordError(f"{cls.__name__} must be a JSON object; got {type(data).__name__}")
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise RecordError(f"{cls.__name__} has unknown fields: {', '.join(unknown)}")
        missing = sorted(names - set(data))
        if missing:
            raise RecordError(f"{cls.__name__} is missing fields: {', '.join(missing)}")
        kw = {}
        for key, value in data.items():
            kind, _ = cls.KINDS[key]
            # JSON has one number type: accept 12.0 for an integer field, nothing fractional.
            if kind == "int" and isinstance(value, float) and value.is_integer():
                value = int(value)
            kw[key] = value
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class ProvidentFundRecord(_Record):
    """Housing provident fund (公积金) account."""

    SCOPE: ClassVar[str] = "provident_fund"
    KINDS: ClassVar[dict[str, tuple[Any, bool]]] = {
        "has_account": ("bool", False), "status": (PF_STATUSES, True),
        "employer_name": ("str", True), "employer_type": (EMPLOYER_TYPES, True),
        "monthly_base": ("money", True), "contribution_rate": ("ratio", True),
        "months_total": ("int", False), "months_continuous": ("int", False),
        "balance": ("money", False), "last_paid_month": ("month", True),
        "withdrawals_12m": ("int", False), "loan_balance": ("money", False),
    }

    has_account: bool
    status: str | None
    employer_name: str | None
    employer_type: str | None
    monthly_base: float | None
    contribution_rate: float | None
    months_total: int
    months_continuous: int
    balance: float
    last_paid_month: str | None
    withdrawals_12m: int
    loan_balance: float

    @classmethod
    def no_account(cls) -> ProvidentFundRecord:
        """The answer for a person the fund has no account for."""
        return cls(False, None, None, None, None, None, 0, 0, 0.0, None, 0, 0.0)


@dataclass(frozen=True, slots=True)
class SocialSecurityRecord(_Record):
    """Social-security (社保) pension enrolment."""

    SCOPE: ClassVar[str] = "social_security"
    KINDS: ClassVar[dict[str, tuple[Any, bool]]] = {
        "enrolled": ("bool", False), "contribution_base": ("money", True),
        "months_total": ("int", False), "months_continuous": ("int", False),
        "employer_name": ("str", True), "employer_changes_24m": ("int", False),
        "city": ("str", True), "medical_insured": ("bool", False),
        "last_paid_month": ("month", True),
    }

    enrolled: bool
    contribution_base: float | None
    months_total: int
    months_continuous: int
    employer_name: str | None
    employer_changes_24m: int
    city: str | None
    medical_insured: bool
    last_paid_month: str | None

    @classmethod
    def not_enrolled(cls) -> SocialSecurityRecord:
        """The answer for a person with no social-security enrolment."""
        return cls(False, None, 0, 0, None, 0, None, False, None)


@dataclass(frozen=True, slots=True)
class IncomeTaxRecord(_Record):
    """Individual income tax (个税) filings of the last year."""

    SCOPE: ClassVar[str] = "income_tax"
    KINDS: ClassVar[dict[str, tuple[Any, bool]]] = {
        "has_record": ("bool", False), "annual_income_last_year": ("money", False),
        "monthly_salary_avg_12m": ("money", False), "tax_paid_12m": ("money", False),
        "withholding_agents_12m": ("int", False), "months_with_income_12m": ("int", False),
        "business_income_12m": ("money", False),
    }

    has_record: bool
    annual_income_last_year: float
    monthly_salary_avg_12m: float
    tax_paid_12m: float
    withholding_agents_12m: int
    months_with_income_12m: int
    business_income_12m: float

    @classmethod
    def no_record(cls) -> IncomeTaxRecord:
        """The answer for a person with no taxed income on file."""
        return cls(False, 0.0, 0.0, 0.0, 0, 0, 0.0)


@dataclass(frozen=True, slots=True)
class CreditReportRecord(_Record):
    """Central-bank credit report (征信) summary."""

    SCOPE: ClassVar[str] = "credit_report"
    KINDS: ClassVar[dict[str, tuple[Any, bool]]] = {
        "has_record": ("bool", False), "cards": ("int", False),
        "card_limit_total": ("money", False), "card_utilization": ("ratio", False),
        "loans_open": ("int", False), "loan_balance": ("money", False),
        "monthly_debt_payment": ("money", False), "overdue_now": ("bool", False),
        "overdue_count_24m": ("int", False), "worst_overdue_24m": ("int", False),
        "inquiries_3m": ("int", False), "inquiries_6m": ("int", False),
        "credit_age_months": ("int", False), "bad_debt": ("bool", False),
    }

    has_record: bool
    cards: int
    card_limit_total: float
    card_utilization: float
    loans_open: int
    loan_balance: float
    monthly_debt_payment: float
    overdue_now: bool
    overdue_count_24m: int
    worst_overdue_24m: int  # worst delinquency in the last 24 months, in months past due
    inquiries_3m: int
    inquiries_6m: int
    credit_age_months: int
    bad_debt: bool

    @classmethod
    def no_record(cls) -> CreditReportRecord:
        """The answer for a person with no credit history (a thin file)."""
        return cls(False, 0, 0.0, 0.0, 0, 0.0, 0.0, False, 0, 0, 0, 0, 0, False)


@dataclass(frozen=True, slots=True)
class CourtRecord(_Record):
    """Court-enforcement (司法/失信被执行人) records."""

    SCOPE: ClassVar[str] = "court_records"
    KINDS: ClassVar[dict[str, tuple[Any, bool]]] = {
        "dishonest_debtor": ("bool", False), "consumption_restricted": ("bool", False),
        "enforcement_open": ("int", False), "enforcement_amount": ("money", False),
        "lawsuits_5y": ("int", False),
    }

    dishonest_debtor: bool
    consumption_restricted: bool
    enforcement_open: int
    enforcement_amount: float
    lawsuits_5y: int

    @classmethod
    def clean(cls) -> CourtRecord:
        """The answer for a person with nothing on file."""
        return cls(False, False, 0, 0.0, 0)


SourceRecord = (
    ProvidentFundRecord | SocialSecurityRecord | IncomeTaxRecord | CreditReportRecord | CourtRecord
)

RECORD_TYPES: dict[str, type[_Record]] = {
    cls.SCOPE: cls
    for cls in (ProvidentFundRecord, SocialSecurityRecord, IncomeTaxRecord,
                CreditReportRecord, CourtRecord)
}

# Column prefixes used when records are flattened into one row (synthetic history, batch files).
COLUMN_PREFIX = {
    "provident_fund": "pf_",
    "social_security": "ss_",
    "income_tax": "tax_",
    "credit_report": "cr_",
    "court_records": "court_",
}


def raw_columns(scope: str) -> list[str]:
    """Return the flat column names of one source's record."""
    prefix = COLUMN_PREFIX[scope]
    return [prefix + f.name for f in fields(RECORD_TYPES[scope])]  # type: ignore[arg-type]


# (scope, field, column) for every field of every source, in a stable order.
_COLUMNS = tuple((scope, name, COLUMN_PREFIX[scope] + name)
                 for scope, cls in RECORD_TYPES.items() for name in cls.KINDS)


def flatten(records: dict[str, SourceRecord | None]) -> dict[str, Any]:
    """Flatten records into prefixed columns; an absent source gives all-None columns."""
    row: dict[str, Any] = {}
    for scope, name, column in _COLUMNS:
        record = records.get(scope)
        row[column] = None if record is None else getattr(record, name)
    return row
