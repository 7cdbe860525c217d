"""Staged applicants: who they are, their pinned source records, and the bodies that apply."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

SCOPES = ("provident_fund", "social_security", "income_tax", "credit_report", "court_records")


@dataclass(frozen=True, slots=True)
class Applicant:
    """A person the stub world answers for in a known way."""

    national_id: str
    name: str
    mobile: str
    story: str


# Valid GB 11643 numbers (region, birth date, sequence, check digit), aged 30-45 for decades.
APPROVED = Applicant("110101198805121234", "欧阳明远", "13812345678",
                     "Strong profile: long, stable contributions, high verified income, "
                     "clean credit report and court records.")
KNOCKED_OUT = Applicant("310104199003084567", "司马青云", "13923456789",
                        "The strong profile, but a dishonest judgment debtor under a "
                        "consumption restriction.")
SCORE_DECLINED = Applicant("440305198511207895", "诸葛晓峰", "13734567890",
                           "No knock-out, but many delinquencies, cards at their limit, heavy "
                           "debt service, many inquiries and a short, unstable work history.")
DEFERRED = Applicant("320102199207013217", "上官雨晴", "13645678901",
                     "Anyone: staged on the server whose credit report hangs.")
REPEATED = Applicant("330106198702146546", "东方一鸣", "13556789012",
                     "Posted concurrently with one Idempotency-Key.")
UNRECORDED = Applicant("420102199109091119", "慕容雪松", "15867890123",
                       "Applies while the audit store refuses writes.")
ROLE_MATRIX = Applicant("120101198603031232", "皇甫子墨", "18978901234",
                        "Owns the resources of the role matrix.")

STAGED = (APPROVED, KNOCKED_OUT, SCORE_DECLINED, DEFERRED, REPEATED, UNRECORDED, ROLE_MATRIX)


def _last_month(today: date) -> str:
    first = today.replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def strong_profile(today: date) -> dict[str, Any]:
    """Every field of every source for a low-risk salaried applicant."""
    paid = _last_month(today)
    employer = "北京电力有限公司"
    return {
        "provident_fund": {
            "has_account": True, "status": "normal", "employer_name": employer,
            "employer_type": "soe", "monthly_base": 28000.0, "contribution_rate": 0.12,
            "months_total": 120, "months_continuous": 96, "balance": 180000.0,
            "last_paid_month": paid, "withdrawals_12m": 0, "loan_balance": 0.0,
        },
        "social_security": {
            "enrolled": True, "contribution_base": 28000.0, "months_total": 130,
            "months_continuous": 96, "employer_name": employer, "employer_changes_24m": 0,
            "city": "北京", "medical_insured": True, "last_paid_month": paid,
        },
        "income_tax": {
            "has_record": True, "annual_income_last_year": 340000.0,
            "monthly_salary_avg_12m": 28500.0, "tax_paid_12m": 52000.0,
            "withholding_agents_12m": 1, "months_with_income_12m": 12,
            "business_income_12m": 0.0,
        },
        "credit_report": {
            "has_record": True, "cards": 3, "card_limit_total": 150000.0,
            "card_utilization": 0.05, "loans_open": 0, "loan_balance": 0.0,
            "monthly_debt_payment": 0.0, "overdue_now": False, "overdue_count_24m": 0,
            "worst_overdue_24m": 0, "inquiries_3m": 0, "inquiries_6m": 1,
            "credit_age_months": 120, "bad_debt": False,
        },
        "court_records": "clean",
    }


def risky_profile(today: date) -> dict[str, Any]:
    """Every field of every source for a high-risk applicant whom no knock-out rule catches."""
    paid = _last_month(today)
    return {
        "provident_fund": {
            "has_account": True, "status": "normal", "employer_name": "深圳某贸易有限公司",
            "employer_type": "private", "monthly_base": 6000.0, "contribution_rate": 0.05,
            "months_total": 14, "months_continuous": 8, "balance": 3000.0,
            "last_paid_month": paid, "withdrawals_12m": 3, "loan_balance": 0.0,
        },
        "social_security": {
            "enrolled": True, "contribution_base": 5000.0, "months_total": 20,
            "months_continuous": 8, "employer_name": "深圳另一家公司",
            "employer_changes_24m": 4, "city": "深圳", "medical_insured": True,
            "last_paid_month": paid,
        },
        "income_tax": {
            "has_record": True, "annual_income_last_year": 60000.0,
            "monthly_salary_avg_12m": 5500.0, "tax_paid_12m": 300.0,
            "withholding_agents_12m": 3, "months_with_income_12m": 9,
            "business_income_12m": 0.0,
        },
        "credit_report": {
            "has_record": True, "cards": 8, "card_limit_total": 60000.0,
            "card_utilization": 0.97, "loans_open": 6, "loan_balance": 150000.0,
            "monthly_debt_payment": 4500.0, "overdue_now": False, "overdue_count_24m": 9,
            "worst_overdue_24m": 3, "inquiries_3m": 9, "inquiries_6m": 15,
            "credit_age_months": 30, "bad_debt": False,
        },
        "court_records": "clean",
    }


def write_fixtures(path: Path, today: date | None = None) -> Path:
    """Write the stub fixtures file (FLASHLOAN_STUB_FIXTURES) that stages the applicants."""
    today = today or date.today()
    listed = {"dishonest_debtor": True, "consumption_restricted": True,
              "enforcement_open": 2, "enforcement_amount": 86000.0, "lawsuits_5y": 3}
    people: dict[str, Any] = {
        "_about": "Staged applicants of the end-to-end tests.",
        APPROVED.national_id: strong_profile(today),
        KNOCKED_OUT.national_id: {**strong_profile(today), "court_records": listed},
        SCORE_DECLINED.national_id: risky_profile(today),
    }
    for applicant in (DEFERRED, REPEATED, UNRECORDED, ROLE_MATRIX):
        people[applicant.national_id] = strong_profile(today)
    for applicant in STAGED:
        people[applicant.national_id]["_story"] = applicant.story
    path.write_text(json.dumps(people, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def consent_body(applicant: Applicant, channel: str, *,
                 scopes: tuple[str, ...] = SCOPES) -> dict[str, Any]:
    """A consent given a moment ago in the channel's front-end, valid for 30 days."""
    granted = datetime.now(UTC) - timedelta(seconds=5)
    return {
        "national_id": applicant.national_id,
        "scopes": list(scopes),
        "purpose": "credit_application",
        "granted_at": granted.isoformat(),
        "expires_at": (granted + timedelta(days=30)).isoformat(),
        "text_version": "2026-11-zh-1",
        "channel": channel,
    }


def application_body(applicant: Applicant, consent_id: str, *, amount: float = 30000.0,
                     term_months: int = 12, purpose: str = "travel") -> dict[str, Any]:
    """An application citing a consent."""
    return {
        "applicant": {"national_id": applicant.national_id, "name": applicant.name,
                      "mobile": applicant.mobile},
        "request": {"amount": amount, "term_months": term_months, "purpose": purpose},
        "consent_id": consent_id,
    }


def personal_data(applicants: tuple[Applicant, ...] = STAGED) -> list[str]:
    """Every value that must never be stored or logged in clear, also as JSON escapes."""
    values: list[str] = []
    for a in applicants:
        for value in (a.national_id, a.name, a.mobile):
            values.append(value)
            escaped = json.dumps(value)[1:-1]
            if escaped != value:
                values.append(escaped)
    return values
