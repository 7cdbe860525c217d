"""The synthetic applicant world: people, their five source records and their true risk.

A person is a pure function of their national ID: a keyed hash of the ID seeds the person's
own random draws, and the vectorised generator below turns draws into records. A population
of a given seed is a list of IDs drawn from that seed, so both are deterministic.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import date

import numpy as np

from datasources.identity import make_national_id, parse_national_id
from datasources.records import COLUMN_PREFIX, RECORD_TYPES, SourceRecord
from datasources.stub import population as P

# Names of the per-person uniform draws, in column order of the draw matrix.
DRAWS = (
    "tier", "city", "employer_type", "employer_name", "income", "pf_account", "pf_base",
    "pf_rate", "pf_status", "pf_tenure", "pf_continuous", "pf_withdrawals", "pf_loan",
    "ss_enrolled", "ss_base", "ss_continuous", "ss_changes", "ss_medical", "tax_record",
    "tax_noise", "tax_months", "tax_business", "cr_record", "stress", "dti", "cards",
    "card_limit", "util", "loans", "overdue", "worst", "overdue_now", "bad_debt", "inq3",
    "inq6", "credit_age", "dishonest", "restricted", "enforcement", "lawsuits", "inflated",
    "inflated_which", "inflated_size", "mismatch", "amount", "term", "purpose", "latent",
    "default", "latent2",
)
_IX = {name: i for i, name in enumerate(DRAWS)}
# A record's missing text, as np.where's second branch: an object array holding None.
ABSENT = np.array(None, dtype=object)

# Every generated number is written at its natural precision: money to the fen (or coarser),
# rates and shares to a fixed number of decimals, counts and months as integers, the true
# probability of default to a millionth. numpy's exp and log take different SIMD kernels on
# different CPUs (AVX-512 or not, x86-64 or aarch64) and differ there in the last bits;
# rounding to a precision far coarser than those bits makes the world identical to the bit
# on any machine with the same library versions, so a model reproduces from its card.
PD_DECIMALS = 6


def person_draws(national_ids: Sequence[str]) -> np.ndarray:
    """Return the (n, len(DRAWS)) uniform draws of each ID, seeded by a keyed hash of it."""
    out = np.empty((len(national_ids), len(DRAWS)))
    for row, nid in enumerate(national_ids):
        seed = hmac.new(P.WORLD_KEY, nid.upper().encode(), hashlib.sha256).digest()
        out[row] = np.random.Generator(np.random.PCG64(int.from_bytes(seed))).random(len(DRAWS))
    return out


def _normal(u: np.ndarray) -> np.ndarray:
    """Map uniforms to standard normals (inverse CDF, Acklam-free: via erfinv identity)."""
    from scipy.special import ndtri

    return ndtri(np.clip(u, 1e-12, 1 - 1e-12))


def _poisson(u: np.ndarray, lam: np.ndarray | float) -> np.ndarray:
    """Inverse-CDF Poisson draws (small rates), vectorised."""
    lam = np.broadcast_to(np.asarray(lam, dtype=float), u.shape)
    k = np.zeros(u.shape, dtype=np.int64)
    p = np.exp(-lam)
    cdf = p.copy()
    for i in range(1, 30):
        more = u > cdf
        if not more.any():
            break
        k += more
        p = p * lam / i
        cdf = cdf + p
    return k


def _choice(u: np.ndarray, probs: Sequence[float]) -> np.ndarray:
    edges = np.cumsum(probs)
    edges[-1] = 1.0
    return np.searchsorted(edges, u, side="right").clip(0, len(probs) - 1)


def _month_back(months: np.ndarray) -> np.ndarray:
    """Return ``YYYY-MM`` strings ``months`` months before the world's date."""
    total = P.AS_OF.year * 12 + (P.AS_OF.month - 1) - months
    return np.array([f"{t // 12:04d}-{t % 12 + 1:02d}" for t in total], dtype=object)


def generate(national_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Generate the people with these IDs: raw source columns, application and true risk."""
    n = len(national_ids)
    u = person_draws(national_ids)
    d = {name: u[:, i] for name, i in _IX.items()}
    born = [parse_national_id(nid, today=P.AS_OF).birth_date for nid in national_ids]
    age = np.array([P.AS_OF.year - b.year - ((P.AS_OF.month, P.AS_OF.day) < (b.month, b.day))
                    for b in born], dtype=float)
    cols: dict[str, np.ndarray] = {"national_id": np.array(national_ids, dtype=object),
                                   "age": age.astype(np.int64)}

    # Where and for whom they work, and what they truly earn.
    tier = _choice(d["tier"], P.CITY_TIER_P) + 1
    city = np.array([P.CITY_TIERS[t][int(c * len(P.CITY_TIERS[t]))]
                     for t, c in zip(tier, d["city"], strict=True)], dtype=object)
    etype = _choice(d["employer_type"], P.EMPLOYER_TYPE_P)
    etype_name = np.array(P.EMPLOYER_TYPES, dtype=object)[etype]
    employer = np.array([P.EMPLOYER_NAMES[t][int(v * len(P.EMPLOYER_NAMES[t]))]
                         for t, v in zip(etype_name, d["employer_name"], strict=True)],
                        dtype=object)
    median = np.array([P.CITY_MEDIAN_INCOME[t] for t in tier])
    log_income = (np.log(median) + np.array(P.EMPLOYER_INCOME_SHIFT)[etype]
                  - 0.0012 * (age - 40) ** 2 + P.INCOME_SIGMA * _normal(d["income"]))
    income = np.exp(log_income)
    floor = np.array([P.BASE_FLOOR[t] for t in tier])
    cap = np.array([P.BASE_CAP[t] for t in tier])
    working_months = np.maximum(12 * (age - 20), 6)
    stable = etype <= 2
    informal = etype_name == "other"

    # Disagreeing sources: an inflated contribution base, or two different employers.
    inflated = d["inflated"] < P.INFLATED_P
    inflate_pf = inflated & (d["inflated_which"] < 0.5)
    inflate_ss = inflated & ~inflate_pf
    inflate_by = 1.6 + 1.4 * d["inflated_size"]
    mismatch = d["mismatch"] < P.EMPLOYER_MISMATCH_P

    # Provident fund.
    has_pf = d["pf_account"] < np.array(P.PF_ACCOUNT_P)[etype]
    pf_base = np.clip(income * (0.85 + 0.2 * d["pf_base"]) * np.where(inflate_pf, inflate_by, 1),
                      floor, cap)
    pf_rate = np.where(stable, 0.12, np.round(0.05 + 0.07 * d["pf_rate"], 2))
    pf_status = np.where(d["pf_status"] < 0.90, 0, np.where(d["pf_status"] < 0.98, 1, 2))
    pf_total = np.minimum(working_months, np.floor(6 + d["pf_tenure"] * 180)).astype(np.int64)
    pf_cont = np.where(pf_status == 0, np.floor(pf_total * (0.3 + 0.7 * d["pf_continuous"])), 0)
    pf_cont = np.where(inflate_pf, np.minimum(pf_cont, 3 + (d["pf_continuous"] * 8)), pf_cont)
    pf_cont = np.floor(pf_cont).astype(np.int64)
    pf_loan = np.where(d["pf_loan"] < 0.18, np.round(pf_base * (40 + 100 * d["pf_loan"]), -2), 0)
    pf_balance = np.round(pf_base * pf_rate * 2 * pf_total * (0.35 + 0.4 * d["pf_base"]), 2)
    pf_withdrawals = _poisson(d["pf_withdrawals"], 0.3)
    pf_last = _month_back(np.where(pf_status == 0, 1, 3 + (d["pf_status"] * 20).astype(int)))
    cols.update({
        "pf_has_account": has_pf,
        "pf_status": np.where(has_pf, np.array(("normal", "suspended", "closed"),
                                               dtype=object)[pf_status], ABSENT),
        "pf_employer_name": np.where(has_pf, employer, ABSENT),
        "pf_employer_type": np.where(has_pf, etype_name, ABSENT),
        "pf_monthly_base": np.where(has_pf, np.round(pf_base, 2), np.nan),
        "pf_contribution_rate": np.where(has_pf, pf_rate, np.nan),
        "pf_months_total": np.where(has_pf, pf_total, 0),
        "pf_months_continuous": np.where(has_pf, pf_cont, 0),
        "pf_balance": np.where(has_pf, pf_balance, 0.0),
        "pf_last_paid_month": np.where(has_pf, pf_last, ABSENT),
        "pf_withdrawals_12m": np.where(has_pf, pf_withdrawals, 0),
        "pf_loan_balance": np.where(has_pf, pf_loan, 0.0),
    })

    # Social security.
    enrolled = d["ss_enrolled"] < np.array(P.SS_ENROLLED_P)[etype]
    ss_base = np.clip(income * (0.78 + 0.2 * d["ss_base"]) * np.where(inflate_ss, inflate_by, 1),
                      floor, cap)
    ss_total = np.minimum(working_months, np.floor(6 + d["pf_tenure"] * 200)).astype(np.int64)
    ss_changes = _poisson(d["ss_changes"], np.where(age < 30, 0.7, 0.3) + 0.4 * informal)
    ss_cont = np.floor(ss_total * (0.25 + 0.75 * d["ss_continuous"]) / (1 + ss_changes))
    ss_cont = np.where(inflate_ss, np.minimum(ss_cont, 2 + d["ss_continuous"] * 8), ss_cont)
    ss_cont = np.floor(ss_cont).astype(np.int64)
    ss_employer = np.where(mismatch, np.array([P.EMPLOYER_NAMES["private"][int(v * 8) % 8]
                                               for v in d["latent2"]], dtype=object), employer)
    cols.update({
        "ss_enrolled": enrolled,
        "ss_contribution_base": np.where(enrolled, np.round(ss_base, 2), np.nan),
        "ss_months_total": np.where(enrolled, ss_total, 0),
        "ss_months_continuous": np.where(enrolled, ss_cont, 0),
        "ss_employer_name": np.where(enrolled, ss_employer, ABSENT),
        "ss_employer_changes_24m": np.where(enrolled, ss_changes, 0),
        "ss_city": np.where(enrolled, city, ABSENT),
        "ss_medical_insured": enrolled | (d["ss_medical"] < 0.5),
        "ss_last_paid_month": np.where(enrolled, _month_back(np.ones(n, dtype=int)), ABSENT),
    })

    # Individual income tax.
    has_tax = d["tax_record"] < np.array(P.TAX_RECORD_P)[etype]
    salary = income * (0.95 + 0.1 * d["tax_noise"])
    months_income = np.where(d["tax_months"] < 0.85, 12, 6 + (d["tax_months"] * 7).astype(int))
    months_income = np.minimum(months_income, 12)
    annual = salary * months_income * (1.0 + 0.1 * d["tax_noise"])
    business = np.where(informal | (d["tax_business"] < 0.06),
                        np.round(income * 3 * d["tax_business"], 2), 0.0)
    cols.update({
        "tax_has_record": has_tax,
        "tax_annual_income_last_year": np.where(has_tax, np.round(annual, 2), 0.0),
        "tax_monthly_salary_avg_12m": np.where(has_tax, np.round(salary, 2), 0.0),
        "tax_tax_paid_12m": np.where(has_tax, np.round(_annual_iit(salary * months_income), 2),
                                     0.0),
        "tax_withholding_agents_12m": np.where(has_tax, 1 + np.minimum(ss_changes, 3), 0),
        "tax_months_with_income_12m": np.where(has_tax, months_income, 0),
        "tax_business_income_12m": np.where(has_tax, business, 0.0),
    })

    # Credit report: stress drives utilisation, delinquency and credit hunger together.
    stress = _normal(d["stress"])
    has_cr = d["cr_record"] < np.where(age < 26, 0.55, 0.93)
    cards = np.where(has_cr, np.maximum(_poisson(d["cards"], 2.2), 0), 0)
    card_limit = np.where(cards > 0, np.round(cards * income * (0.8 + 2.2 * d["card_limit"]),
                                              -2), 0.0)
    util = 1 / (1 + np.exp(-(-0.9 + 1.1 * stress + 1.2 * (_normal(d["util"]) * 0.6))))
    util = np.where(cards > 0, np.round(np.clip(util, 0, 1.2), 4), 0.0)
    dti = np.clip(np.exp(-1.7 + 0.45 * stress + 0.55 * _normal(d["dti"])), 0, 1.5)
    loans = np.where(has_cr, _poisson(d["loans"], 0.6 + 0.5 * (dti > 0.3)), 0)
    debt_pay = np.where(has_cr & ((loans > 0) | (cards > 0)), np.round(dti * income, 2), 0.0)
    overdue_rate = np.exp(-2.3 + 0.9 * stress)
    overdue_count = np.where(has_cr, _poisson(d["overdue"], overdue_rate), 0)
    worst = np.where(overdue_count > 0, 1 + (d["worst"] * np.minimum(overdue_count, 5)).astype(
        int), 0)
    overdue_now = has_cr & (d["overdue_now"] < 0.006 * np.exp(0.9 * stress))
    bad_debt = has_cr & (d["bad_debt"] < 0.003)
    inq3 = _poisson(d["inq3"], np.exp(-0.6 + 0.55 * stress))
    inq6 = inq3 + _poisson(d["inq6"], np.exp(-0.5 + 0.4 * stress))
    credit_age = np.where(has_cr, np.floor(np.minimum(12 * (age - 18), 240) * (0.15 + 0.85 * d[
        "credit_age"])), 0).astype(np.int64)
    cols.update({
        "cr_has_record": has_cr,
        "cr_cards": cards,
        "cr_card_limit_total": card_limit,
        "cr_card_utilization": util,
        "cr_loans_open": loans,
        "cr_loan_balance": np.where(loans > 0, np.round(debt_pay * 22, 2), 0.0),
        "cr_monthly_debt_payment": debt_pay,
        "cr_overdue_now": overdue_now,
        "cr_overdue_count_24m": overdue_count,
        "cr_worst_overdue_24m": worst,
        "cr_inquiries_3m": np.where(has_cr, inq3, 0),
        "cr_inquiries_6m": np.where(has_cr, inq6, 0),
        "cr_credit_age_months": credit_age,
        "cr_bad_debt": bad_debt,
    })

    # Court records: rare, strongly adverse.
    dishonest = d["dishonest"] < 0.006 * np.exp(0.6 * stress)
    restricted = dishonest & (d["restricted"] < 0.8) | (d["restricted"] < 0.002)
    enforcement = _poisson(d["enforcement"], 0.015 + 0.3 * dishonest)
    cols.update({
        "court_dishonest_debtor": dishonest,
        "court_consumption_restricted": restricted,
        "court_enforcement_open": enforcement,
        "court_enforcement_amount": np.where(enforcement > 0,
                                             np.round(income * (2 + 20 * d["enforcement"]), -2),
                                             0.0),
        "court_lawsuits_5y": _poisson(d["lawsuits"], 0.05 + 0.5 * dishonest),
    })

    # The application.
    amount = np.clip(np.round(income * (1 + 5 * d["amount"]), -3), 1_000, 300_000)
    forbidden = d["purpose"] < P.PURPOSE_P_FORBIDDEN
    allowed_ix = ((d["purpose"] - P.PURPOSE_P_FORBIDDEN) / (1 - P.PURPOSE_P_FORBIDDEN)
                  * len(P.PURPOSES_ALLOWED)).astype(int).clip(0, len(P.PURPOSES_ALLOWED) - 1)
    forbidden_ix = (d["purpose"] / P.PURPOSE_P_FORBIDDEN * len(P.PURPOSES_FORBIDDEN)).astype(
        int).clip(0, len(P.PURPOSES_FORBIDDEN) - 1)
    cols.update({
        "amount": amount,
        "term_months": np.array(P.TERMS)[_choice(d["term"], P.TERM_P)],
        "purpose": np.where(forbidden, np.array(P.PURPOSES_FORBIDDEN, dtype=object)[forbidden_ix],
                            np.array(P.PURPOSES_ALLOWED, dtype=object)[allowed_ix]),
    })

    # True risk and the sampled outcome.
    r = P.TRUE_RISK
    logit = (r["intercept"] + r["log_income"] * np.log(income / 8000)
             + r["dti"] * dti + r["dti_x_util"] * dti * util + r["util"] * util
             + r["overdue_count"] * np.minimum(overdue_count, 6)
             + r["worst_overdue"] * np.minimum(worst, 6)
             + r["inquiries_3m"] * np.minimum(inq3, 8)
             + r["thin_file_young"] * (~has_cr & (age < 26))
             + r["pf_normal"] * (has_pf & (pf_status == 0))
             + r["ss_months"] * np.minimum(np.where(enrolled, ss_cont, 0), 60)
             + r["employer_changes"] * ss_changes
             + r["stable_employer"] * stable
             + r["inflated_income"] * inflated + r["employer_mismatch"] * mismatch
             + r["dishonest_debtor"] * dishonest + r["consumption_restricted"] * restricted
             + r["enforcement_open"] * np.minimum(enforcement, 3)
             + r["lawsuits"] * np.minimum(cols["court_lawsuits_5y"], 4)
             + r["overdue_now"] * overdue_now + r["bad_debt"] * bad_debt
             + r["latent_sigma"] * _normal(d["latent"]))
    # Rounded like every other quantity, so that the world does not depend on the SIMD
    # kernel numpy picks for exp and log on this CPU; the outcome is drawn from the value
    # that is written down.
    true_pd = np.round(1 / (1 + np.exp(-logit)), PD_DECIMALS)
    cols["true_pd"] = true_pd
    cols["defaulted"] = (d["default"] < true_pd).astype(np.int64)
    return cols


def _annual_iit(annual_salary: np.ndarray) -> np.ndarray:
    """Return the annual individual income tax on a salary (2019 schedule, ¥60,000 allowance)."""
    taxable = np.maximum(annual_salary * 0.88 - 60_000, 0)  # 12% social insurance deducted
    brackets = ((36_000, 0.03, 0), (144_000, 0.10, 2_520), (300_000, 0.20, 16_920),
                (420_000, 0.25, 31_920), (660_000, 0.30, 52_920), (960_000, 0.35, 85_920),
                (np.inf, 0.45, 181_920))
    tax = np.zeros_like(taxable)
    for upper, rate, quick in reversed(brackets):
        tax = np.where(taxable <= upper, taxable * rate - quick, tax)
    return np.maximum(tax, 0)


def population_ids(rows: int, seed: int) -> list[str]:
    """Return ``rows`` distinct national IDs of applicants aged 18-60, drawn from ``seed``."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1; got {rows}")
    rng = np.random.default_rng(seed)
    ids: list[str] = []
    seen: set[str] = set()
    start = date(P.AS_OF.year - 60, 1, 1).toordinal()
    span = date(P.AS_OF.year - 18, 1, 1).toordinal() - start
    while len(ids) < rows:
        need = rows - len(ids)
        regions = rng.integers(0, len(P.REGIONS), need)
        days = rng.integers(0, span, need)
        seqs = rng.integers(0, 1000, need)
        for r, dd, s in zip(regions, days, seqs, strict=True):
            nid = make_national_id(P.REGIONS[r], date.fromordinal(start + int(dd)), int(s))
            if nid not in seen:
                seen.add(nid)
                ids.append(nid)
    return ids


def records_at(cols: dict[str, np.ndarray], row: int) -> dict[str, SourceRecord]:
    """Return the five typed source records of one generated person."""
    out: dict[str, SourceRecord] = {}
    for scope, cls in RECORD_TYPES.items():
        prefix = COLUMN_PREFIX[scope]
        values = {}
        for name in cls.KINDS:
            value = cols[prefix + name][row]
            values[name] = _plain(value)
        out[scope] = cls.from_dict(values)  # type: ignore[assignment]
    return out


def _plain(value: object) -> object:
    """Turn a numpy scalar into the plain Python value a record expects; NaN into None."""
    if value is None:
        return None
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return None if np.isnan(value) else float(value)
    return value
