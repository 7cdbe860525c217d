"""Credit policy: knock-out rules, PD cut-off and grades, credit line, price and terms.

The policy is data (``scoring/policies/<version>.json``); this module validates it and
evaluates it, vectorised, for one application or a whole batch. Regulatory caps are code
constants that no policy file can raise.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from itertools import compress
from pathlib import Path
from typing import Any

import numpy as np

from scoring.online.canonical import digest
from scoring.online.versions import is_version

POLICY_DIR = Path(__file__).resolve().parents[1] / "policies"
DEFAULT_POLICY = "2026.11"

# Regulatory caps for an internet personal consumer loan; no setting can exceed them.
REGULATORY_MAX_LINE = 200_000.0
REGULATORY_MAX_APR = 0.24

# Every purpose an application may name; the policy allows a subset. Consumer credit may not
# fund securities, property or business use.
PURPOSES = ("daily_consumption", "home_renovation", "education", "travel", "medical", "wedding",
            "durable_goods", "securities", "property", "business")

# Knock-outs in the order their reasons are given.
KNOCKOUT_ORDER = ("court_listing", "overdue_now", "bad_debt", "age", "purpose",
                  "contribution_history", "income_sources", "term")
# The numeric facts the rules and the credit line read.
_NUMERIC_FACTS = ("age", "term_months", "court_adverse_listing", "cr_overdue_now", "cr_bad_debt",
                  "pf_months_continuous", "ss_months_continuous", "income_sources",
                  "income_verified_monthly", "debt_to_income")
# The source each evidence rule reads: it cannot fire when that source did not answer.
_RULE_SOURCE = {"court_listing": "court_records", "overdue_now": "credit_report",
                "bad_debt": "credit_report"}
_CONTRIBUTION_SCOPES = ("provident_fund", "social_security")
_INCOME_SCOPES = ("provident_fund", "social_security", "income_tax")
# Each knock-out's row in ``Policy.evaluate``.
_KNOCKOUT = {rule: i for i, rule in enumerate(KNOCKOUT_ORDER)}
# The outcomes by index: 0 declined, 1 deferred, 2 approved.
_OUTCOMES = np.array(["declined", "deferred", "approved"], dtype=object)
_LARGEST = np.finfo(np.float64).max
# What sets a credit line, by index: the smallest of income × the grade's multiplier, what
# the debt-service bound leaves, and the product's largest line (never above the cap).
LINE_BOUNDS = np.array(["income_multiple", "debt_service", "product_max"], dtype=object)


def _nan_to_zero(values: np.ndarray) -> np.ndarray:
    """Return ``np.nan_to_num(values, nan=0.0)`` of float64 values, to the bit, for less."""
    # NaN → 0, ±inf → the largest float of its sign; nan_to_num's own Python layer costs
    # more than the arithmetic of one application.
    return np.where(np.isnan(values), 0.0, np.minimum(np.maximum(values, -_LARGEST), _LARGEST))


class PolicyError(ValueError):
    """A policy file that is malformed or breaks a regulatory cap."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A policy rule with its reason code and texts."""

    name: str
    code: str
    group: str
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """Vectorised outcome of the policy for n applications."""

    outcome: np.ndarray        # "approved" | "declined" | "deferred"
    grade: np.ndarray
    credit_limit: np.ndarray   # 0 unless approved
    annual_rate: np.ndarray    # NaN unless approved
    rules_fired: list[list[str]]
    # Rules that a source that did not answer could have decided either way: they defer.
    undetermined: list[list[str]] = field(default_factory=list)
    # Which bound set each line (``LINE_BOUNDS``); None where no line was worked out.
    line_bound: np.ndarray | None = None


class Policy:
    """A loaded, validated policy version."""

    # Every fact ``evaluate`` reads.
    FACTS = frozenset((*_NUMERIC_FACTS, "purpose"))

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = dict(doc)
        self.version: str = doc["version"]
        self.digest = digest(doc)
        elig = doc["eligibility"]
        self.age_min, self.age_max = int(elig["age_min"]), int(elig["age_max"])
        self.min_continuous_months = int(elig["min_continuous_months"])
        self.min_income_sources = int(elig["min_income_sources"])
        self.allowed_purposes = frozenset(elig["allowed_purposes"])
        self.pd_cutoff = float(doc["pd_cutoff"])
        self.required_scopes = tuple(doc["required_scopes"])
        self.terms_months = tuple(int(t) for t in doc["terms_months"])
        self._terms_array = np.array(self.terms_months, dtype=float)
        grades = doc["grades"]
        self.grade_names = np.array([g["grade"] for g in grades], dtype=object)
        self.grade_max_pd = np.array([float(g["max_pd"]) for g in grades])
        self.grade_multiplier = np.array([float(g["multiplier"]) for g in grades])
        self.grade_rate = np.array([float(g["annual_rate"]) for g in grades])
        limit = doc["limit"]
        self.max_dsr = float(limit["max_debt_service_ratio"])
        self.round_to = float(limit["round_down_to"])
        self.min_line = float(limit["min_line"])
        self.max_line = min(float(limit["max_line"]), REGULATORY_MAX_LINE)
        self.rules = {name: Rule(name, r["code"], r["group"], r["zh"], r["en"])
                      for name, r in doc["rules"].items()}
        self._validate()

    def _validate(self) -> None:
        missing = [r for r in (*KNOCKOUT_ORDER, "score", "line_below_minimum")
                   if r not in self.rules]
        if missing:
            raise PolicyError(f"policy {self.version} must define rules {', '.join(missing)}")
        if not self.allowed_purposes <= set(PURPOSES):
            raise PolicyError(f"allowed_purposes must be among {', '.join(PURPOSES)}")
        if float(self.doc["limit"]["max_line"]) > REGULATORY_MAX_LINE:
            raise PolicyError(f"limit.max_line must be at most {REGULATORY_MAX_LINE:,.0f}; "
                              f"got {self.doc['limit']['max_line']}")
        if np.any(self.grade_rate > REGULATORY_MAX_APR):
            raise PolicyError(f"grade annual_rate must be at most {REGULATORY_MAX_APR}; "
                              f"got {self.grade_rate.max()}")
        if np.any(np.diff(self.grade_max_pd) <= 0) or self.grade_max_pd[-1] < 1.0:
            raise PolicyError("grades must have increasing max_pd ending at 1.0")
        if not 0 < self.pd_cutoff < 1:
            raise PolicyError(f"pd_cutoff must be in (0, 1); got {self.pd_cutoff}")
        if not 0 < self.max_dsr <= 1:
            raise PolicyError(f"max_debt_service_ratio must be in (0, 1]; got {self.max_dsr}")

    def evaluate(self, facts: Mapping[str, Any], pd: np.ndarray,
                 unknown_scopes: Collection[str] = ()) -> PolicyResult:
        """Apply the policy to n applications.

        A knock-out fires only on evidence received: one that holds on the sources that
        answered but that a source in ``unknown_scopes`` could have lifted is undetermined.
        With unknown sources an application is declined only by a knock-out that fired;
        an undetermined rule, a PD above the cut-off or a line below the minimum defers it.

        Parameters
        ----------
        facts
            Arrays of length n, at least those of ``FACTS``: the model features it reads by
            name (NaN when unknown), ``age`` (years), ``purpose`` (string) and
            ``term_months``.
        pd
            Calibrated probabilities of default, length n.
        unknown_scopes
            The sources that did not answer (timeout, error, malformed, breaker open).
        """
        missing = frozenset(unknown_scopes)
        pd = np.asarray(pd, dtype=float)
        f = {k: np.asarray(facts[k], dtype=float) for k in _NUMERIC_FACTS}
        purpose = np.asarray(facts["purpose"], dtype=object)
        term = f["term_months"]
        offered = self._offered(term)
        # The income sources counted; none where that is unknown.
        sources = _nan_to_zero(f["income_sources"])

        n = len(pd)
        # One row per knock-out, in KNOCKOUT_ORDER. An unknown (NaN) court listing, overdue
        # or bad debt fires nothing, as NaN > 0 is False.
        fired = np.empty((len(KNOCKOUT_ORDER), n), dtype=bool)
        fired[_KNOCKOUT["court_listing"]] = f["court_adverse_listing"] > 0
        fired[_KNOCKOUT["overdue_now"]] = f["cr_overdue_now"] > 0
        fired[_KNOCKOUT["bad_debt"]] = f["cr_bad_debt"] > 0
        fired[_KNOCKOUT["age"]] = (f["age"] < self.age_min) | (f["age"] > self.age_max)
        fired[_KNOCKOUT["purpose"]] = [p not in self.allowed_purposes for p in purpose]
        fired[_KNOCKOUT["contribution_history"]] = (
            np.fmax(f["pf_months_continuous"], f["ss_months_continuous"])
            < self.min_continuous_months)
        fired[_KNOCKOUT["income_sources"]] = ~(sources >= self.min_income_sources)
        fired[_KNOCKOUT["term"]] = ~offered
        undetermined = np.zeros(fired.shape, dtype=bool)
        for rule, scope in _RULE_SOURCE.items():
            if scope in missing:
                fired[_KNOCKOUT[rule]], undetermined[_KNOCKOUT[rule]] = False, True
        if missing & set(_CONTRIBUTION_SCOPES):
            # The source that did not answer might show the months the other lacks.
            row = _KNOCKOUT["contribution_history"]
            undetermined[row] = fired[row]
            fired[row] = False
        lost_income = len(missing & set(_INCOME_SCOPES))
        if lost_income:
            # Each income source that did not answer might have shown an income.
            row = _KNOCKOUT["income_sources"]
            could_reach = sources + lost_income >= self.min_income_sources
            undetermined[row] = fired[row] & could_reach
            fired[row] &= ~could_reach
        knocked = np.logical_or.reduce(fired, axis=0)
        pending = np.logical_or.reduce(undetermined, axis=0)
        # searchsorted gives at least 0; a PD above every bound takes the last grade.
        grade_ix = np.minimum(np.searchsorted(self.grade_max_pd, pd, side="left"),
                              len(self.grade_max_pd) - 1)
        score_decline = pd > self.pd_cutoff
        rate = np.minimum(self.grade_rate[grade_ix], REGULATORY_MAX_APR)
        line, bound = self._credit_line(f, grade_ix, rate, term, offered)
        # Neither a knock-out nor the score declines: the line decides.
        line_decides = ~(knocked | score_decline)
        below_min = line_decides & ~(line >= self.min_line)
        approved = line_decides & ~(pending | below_min)
        # With a source unknown, the score and the line rest on part of the evidence: what
        # they would decline is undetermined, never a decline.
        partial = bool(missing)
        deferred = ~(knocked | approved) if partial else ~knocked & pending
        rules_fired, rules_undetermined = [], []
        # Plain lists, one per application, so that the loop reads no numpy scalar.
        was_knocked = knocked.tolist()
        by_score, by_line = score_decline.tolist(), below_min.tolist()
        for i, (fired_i, open_i) in enumerate(zip(fired.T.tolist(),
                                                   (undetermined & ~knocked).T.tolist(),
                                                   strict=True)):
            names = list(compress(KNOCKOUT_ORDER, fired_i))
            open_ = list(compress(KNOCKOUT_ORDER, open_i))
            for rule, holds in (("score", by_score[i]), ("line_below_minimum", by_line[i])):
                if holds and not partial:
                    names.append(rule)
                elif holds and not was_knocked[i]:
                    open_.append(rule)
            rules_fired.append(names)
            rules_undetermined.append(open_)
        return PolicyResult(
            # Approved and deferred never hold together: 2 approved, 1 deferred, 0 declined.
            outcome=_OUTCOMES[np.where(approved, 2, deferred)],
            grade=self.grade_names[grade_ix],
            credit_limit=np.where(approved, line, 0.0),
            annual_rate=np.where(approved, rate, np.nan),
            rules_fired=rules_fired,
            undetermined=rules_undetermined,
            line_bound=LINE_BOUNDS[bound],
        )

    @property
    def amount_range(self) -> tuple[float, float]:
        """The smallest and largest amount (CNY) an applicant may ask for: the line range."""
        return self.min_line, min(self.max_line, REGULATORY_MAX_LINE)

    def _offered(self, term: np.ndarray) -> np.ndarray:
        """Return which terms (months) the product offers."""
        return np.logical_or.reduce(term[:, None] == self._terms_array, axis=1)

    def _credit_line(self, f: Mapping[str, np.ndarray], grade_ix: np.ndarray,
                     rate: np.ndarray, term: np.ndarray,
                     offered: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Income × grade multiplier, within the debt-service bound and the caps.

        Returns the lines and, for each, the index in ``LINE_BOUNDS`` of the bound that set
        it (the smallest; an unknown bound never does).
        """
        income = f["income_verified_monthly"]
        existing = _nan_to_zero(f["debt_to_income"] * income)
        monthly = rate / 12
        if offered is None:
            offered = self._offered(term)
        safe_term = np.where(offered, term, max(self.terms_months))
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            factor = np.where(monthly > 0, monthly / (1 - (1 + monthly) ** -safe_term),
                              1 / safe_term)
            by_income = income * self.grade_multiplier[grade_ix]
            by_dsr = (self.max_dsr * income - existing) / factor
        cap = min(self.max_line, REGULATORY_MAX_LINE)
        line = np.fmin(np.fmin(by_income, by_dsr), cap)
        bound = np.where(by_dsr < np.fmin(by_income, cap), 1,
                         np.where(by_income < cap, 0, 2))
        # An income nobody verified supports no line: never the cap that fmin leaves.
        line = np.where(np.isnan(income), 0.0, line)
        line = np.floor(np.maximum(_nan_to_zero(line), 0) / self.round_to) * self.round_to
        return line, bound

    def rule(self, name: str) -> Rule:
        return self.rules[name]

    def approving_grades(self) -> list[int]:
        """Return the indexes of the grades whose PDs this policy approves, best first."""
        return [i for i, p in enumerate(self.grade_max_pd) if p <= self.pd_cutoff]

    def approval_by_person(self, facts: Mapping[str, Any], grade: str) -> dict[str, Any]:
        """Terms for a decline a person overturned: what this policy allows, never more.

        The grade is the recorded one if it is an approving grade, else the lowest approving
        grade; the line follows the usual income and debt-service bounds, raised to the
        product minimum when they give less, and always within the caps.
        """
        approving = self.approving_grades()
        names = list(self.grade_names)
        ix = names.index(grade) if grade in names else approving[-1]
        if ix not in approving:
            ix = approving[-1]
        f = {k: np.asarray([v], dtype=float) for k, v in facts.items()
             if k not in ("purpose",)}
        rate = min(float(self.grade_rate[ix]), REGULATORY_MAX_APR)
        term = f["term_months"]
        line = float(self._credit_line(f, np.array([ix]), np.array([rate]), term)[0][0])
        line = min(max(line, self.min_line), self.max_line, REGULATORY_MAX_LINE)
        return {"grade": str(self.grade_names[ix]), "credit_limit": line, "annual_rate": rate,
                "terms_months": list(self.terms_months)}


def load_policy(name_or_path: str | None = None, search: tuple[Path, ...] = ()) -> Policy:
    """Load a policy by version (as :func:`load_policy_version`) or, for the operator's own
    settings and commands, by file path.

    Every call reads the file afresh: the caller (the composition root, a command) keeps the
    policy it loaded. What a client names is a version, loaded by :func:`load_policy_version`.
    """
    name = name_or_path or DEFAULT_POLICY
    if policy_path(name, search) is not None:
        return load_policy_version(name, search)
    path = Path(name)
    if not path.is_file():
        raise PolicyError(f"policy must be a known version ({', '.join(policy_versions(search))})"
                          f" or a file; got {name!r}")
    return Policy(json.loads(path.read_text(encoding="utf-8")))


def load_policy_version(version: str, search: tuple[Path, ...] = ()) -> Policy:
    """Load a policy version, found only in the folders of ``search`` or the shipped one.

    A name that is no version (a path) is refused as an unknown version is, whether or not
    some file of that name exists.
    """
    path = policy_path(version, search)
    if path is None:
        raise PolicyError(f"policy must be a known version ({', '.join(policy_versions(search))})"
                          f"; got {version!r}")
    policy = Policy(json.loads(path.read_text(encoding="utf-8")))
    if policy.version != version:
        # A version is found by its file's name: the file must be that version.
        raise PolicyError(f"policy file {path.name} states version {policy.version!r}; "
                          f"a policy version's file must be named <version>.json")
    return policy


def policy_path(version: str, search: tuple[Path, ...] = ()) -> Path | None:
    """The file of a policy version, ``<version>.json`` in a folder of ``search`` or the
    shipped folder; None for a name that is no version or no such file."""
    if not is_version(version):
        return None
    for folder in (*search, POLICY_DIR):
        candidate = Path(folder) / f"{version}.json"
        if candidate.is_file():
            return candidate
    return None


def policy_versions(search: tuple[Path, ...] = ()) -> list[str]:
    """Every policy version known: shipped, and in the folders of ``search``."""
    return sorted({p.stem for folder in (*search, POLICY_DIR) for p in Path(folder).glob("*.json")
                   if is_version(p.stem)})
