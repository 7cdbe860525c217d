"""Find the smallest sets of lever changes that make the same engine approve, and verify them."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from scoring.online.engine import DecisionEngine, Decisions
from scoring.online.policy import KNOCKOUT_ORDER, Policy
from scoring.recourse import levers as L
from scoring.recourse.result import (
    Outcome,
    RecourseResult,
    Suggestion,
    found,
    none_possible,
    not_needed,
)

MAX_SUGGESTIONS = 3
# Batches of the search: the sizes of the lever sets each evaluates (besides the levers that
# clear a knock-out, which every set holds), and the options each lever gets in it.
BATCHES = (((0, 1), None), ((2,), 8), ((3,), 4))
# Knock-outs on evidence the applicant cannot change now: no suggestion can lift them.
FIXED_RULES = frozenset(("court_listing", "bad_debt", "age", "contribution_history",
                         "income_sources"))


class RecourseError(RuntimeError):
    """A suggestion that would change what recourse may never change."""


@dataclass(frozen=True, slots=True)
class _Candidate:
    levers: tuple[L.Lever, ...]
    options: tuple[int, ...]
    optional: frozenset[str]
    effort: float
    row: np.ndarray
    term: float


class Recourse:
    """Counterfactual recourse for one engine: built once, asked for each decision.

    Parameters
    ----------
    engine
        The engine whose decisions are explained; its models and policy judge every change.
    bounds
        For every feature a lever may change, the plausible (low, high) of the training
        data (for instance its 1st and 99th percentiles): no lever moves a feature below
        ``low`` (the levers only lower risk, so ``high`` binds only the term).
    """

    def __init__(self, engine: DecisionEngine, bounds: Mapping[str, tuple[float, float]]):
        spec = engine.model.spec
        fixed = sorted(n for n in L.CHANGEABLE if not spec.by_name(n).actionable)
        if fixed:
            raise ValueError(f"every feature recourse changes must be actionable in spec "
                             f"{spec.version}; not actionable: {', '.join(fixed)}")
        missing = sorted(L.CHANGEABLE - set(bounds))
        if missing:
            raise ValueError(f"bounds must give (low, high) for every feature recourse may "
                             f"change; missing: {', '.join(missing)}")
        self.bounds: dict[str, tuple[float, float]] = {}
        for name in sorted(L.CHANGEABLE):
            low, high = (float(v) for v in bounds[name])
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"bounds of {name} must be finite with low <= high; "
                                 f"got {tuple(bounds[name])!r}")
            self.bounds[name] = (low, high)
        self.engine = engine
        self.policy: Policy = engine.policy
        self.column = {name: j for j, name in enumerate(engine.spec_names)}

    def suggest(self, decisions: Decisions, i: int, *, amount: float) -> RecourseResult:
        """Return up to three verified sets of changes that would approve decision ``i``.

        A declined application is searched for approval; one approved below ``amount`` (the
        amount it asked for) for a credit line of at least that amount.
        """
        result = decisions.policy
        outcome, line = str(result.outcome[i]), float(result.credit_limit[i])
        if outcome == "deferred" or (outcome == "approved" and line >= amount):
            return not_needed(outcome)
        fired = result.rules_fired[i]
        blocking = [self.policy.rule(r) for r in KNOCKOUT_ORDER if r in fired and r in FIXED_RULES]
        if blocking:
            return none_possible(blocking)
        target = "approval" if outcome == "declined" else "requested_amount"
        scopes = decisions.unknown.scopes
        model = self.engine.model_for(scopes)
        if model is None or model.sha256 != decisions.model.sha256:
            raise ValueError(f"decisions must be this engine's; decision {i} was made by model "
                             f"{decisions.model.version}")
        app = L.Application(np.array(decisions.features[i], dtype=np.float64), self.column,
                            float(amount), float(decisions.facts["term_months"][i]),
                            str(decisions.facts["purpose"][i]))
        self._check_amount(app)
        levers = self._levers(app, fired, target)
        if levers is None or (target == "requested_amount" and amount > self.policy.max_line):
            return found(target, amount, ())
        age = float(decisions.facts["age"][i])
        chosen = self._search(app, age, scopes, *levers, target)
        return found(target, amount, self._verify(app, age, scopes, chosen, target))

    def _check_amount(self, app: L.Application) -> None:
        implied = app["requested_to_income"] * 12 * app.income
        if math.isfinite(implied) and not math.isclose(implied, app.amount, rel_tol=1e-6,
                                                       abs_tol=0.5):
            raise ValueError(f"amount must be the amount the application asked for "
                             f"({implied:,.2f} by its requested_to_income); got {app.amount}")

    def _levers(self, app: L.Application, fired: Sequence[str],
                target: str) -> tuple[list[L.Lever], list[L.Lever]] | None:
        """Return the levers every set holds (they clear a knock-out) and the optional ones."""
        low = {name: bound[0] for name, bound in self.bounds.items()}
        term = L.term(app, self.bounds["term_months"], self.policy)
        clearing = {"overdue_now": L.overdue_now(app), "purpose": L.purpose(app, self.policy),
                    "term": term}
        forced = [clearing[rule] for rule in KNOCKOUT_ORDER if rule in fired and rule in clearing]
        optional = [
            None if "term" in fired else term,
            L.card_balances(app, low["cr_card_utilization"]),
            L.loans(app, low["cr_loans_open"]),
            L.amount(app, low["requested_to_income"], self.policy)
            if target == "approval" else None,
            L.court_enforcement(app, (low["court_enforcement_open"],
                                      low["court_enforcement_amount"])),
        ]
        if any(lever is None for lever in forced):
            return None
        return ([lever for lever in forced if lever is not None],
                [lever for lever in optional if lever is not None])

    def _search(self, app: L.Application, age: float,
                scopes: Collection[str], forced: list[L.Lever], optional: list[L.Lever],
                target: str) -> list[_Candidate]:
        """Evaluate lever sets by size, a batch at a time; keep the minimal ones that pass."""
        chosen: list[_Candidate] = []
        purpose = next((lv.purpose for lv in forced if lv.purpose), app.purpose)
        for sizes, points in BATCHES:
            sets = [s for size in sizes for s in combinations(optional, size)
                    if (forced or s) and not any(c.optional <= {lv.name for lv in s}
                                                 for c in chosen)]
            if not sets:
                continue
            parts = [self._rows(app, forced, s, points) for s in sets]
            x = np.concatenate([p[1] for p in parts])
            terms = np.concatenate([p[3] for p in parts])
            self._debt_to_income(app, x, np.concatenate([p[2] for p in parts]))
            _, decided = self.engine.outcomes(x, age=age, purpose=purpose,
                                              term_months=terms, unknown_scopes=scopes)
            passed = decided.outcome == "approved"
            if target == "requested_amount":
                passed &= decided.credit_limit >= app.amount
            best, start = [], 0
            for s, (idx, _, _, _, effort) in zip(sets, parts, strict=True):
                rows = np.flatnonzero(passed[start:start + len(idx)])
                if len(rows):
                    k = rows[np.argmin(effort[rows])]
                    best.append(_Candidate((*forced, *s), tuple(idx[k].tolist()),
                                           frozenset(lv.name for lv in s), float(effort[k]),
                                           x[start + k], float(terms[start + k])))
                start += len(idx)
            for candidate in sorted(best, key=lambda c: (len(c.optional), c.effort)):
                if not any(c.optional <= candidate.optional for c in chosen):
                    chosen.append(candidate)
                if len(chosen) == MAX_SUGGESTIONS:
                    return chosen
        return chosen

    def _rows(self, app: L.Application, forced: list[L.Lever], optional: tuple[L.Lever, ...],
              points: int | None,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every combination of the levers' options: option indices, rows, cut, term, effort.

        The levers that clear a knock-out offer all their options; the optional ones at most
        ``points`` each.
        """
        levers = (*forced, *optional)
        grids = [lv.grid(None) for lv in forced] + [lv.grid(points) for lv in optional]
        idx = np.stack([m.ravel() for m in np.meshgrid(*grids, indexing="ij")], axis=1)
        n = len(idx)
        x = np.repeat(app.x[None, :], n, axis=0)
        cut, effort, term = np.zeros(n), np.zeros(n), np.full(n, app.term)
        for k, lever in enumerate(levers):
            j = idx[:, k]
            if lever.columns:
                x[:, lever.columns] = lever.values[j]
            cut += lever.payment_cut[j]
            effort += lever.effort[j]
            if lever.term is not None:
                term = lever.term[j]
        return idx, x, cut, term, effort

    def _debt_to_income(self, app: L.Application, x: np.ndarray, cut: np.ndarray) -> None:
        """Lower debt_to_income by the payments cut, never below its low bound (nor raise it)."""
        j = self.column["debt_to_income"]
        with np.errstate(invalid="ignore", divide="ignore"):
            lowered = np.maximum((app.payment - cut) / app.income,
                                 self.bounds["debt_to_income"][0])
        x[:, j] = np.where(cut > 0, np.fmin(lowered, x[:, j]), x[:, j])

    def _verify(self, app: L.Application, age: float, scopes: Collection[str],
                chosen: list[_Candidate], target: str) -> list[Suggestion]:
        """Decide every candidate again with the full engine; keep those that reach the target."""
        if not chosen:
            return []
        purposes = [next((lv.purpose for lv in c.levers if lv.purpose), app.purpose)
                    for c in chosen]
        decided = self.engine.decide(np.vstack([c.row for c in chosen]), age=age,
                                     purpose=np.array(purposes, dtype=object),
                                     term_months=np.array([c.term for c in chosen]),
                                     unknown_scopes=scopes)
        kept = []
        for k, candidate in enumerate(chosen):
            row = decided.row(k)
            if row["outcome"] != "approved" or (target == "requested_amount"
                                                and row["credit_limit"] < app.amount):
                continue
            kept.append(Suggestion(
                tuple(lv.changes[j] for lv, j in zip(candidate.levers, candidate.options,
                                                     strict=True)),
                self._moved(app.x, decided.features[k]),
                Outcome(row["outcome"], row["credit_limit"], row["annual_rate"], row["grade"],
                        row["score"]),
                candidate.effort))
        return kept

    def _moved(self, before: np.ndarray, after: np.ndarray) -> dict[str, tuple[float, float]]:
        """Return the features that differ, as (from, to): changeable ones, towards less risk."""
        names = self.engine.spec_names
        moved = {names[j]: (float(before[j]), float(after[j]))
                 for j in np.flatnonzero(~((before == after)
                                           | (np.isnan(before) & np.isnan(after))))}
        spec = self.engine.model.spec
        wrong = sorted(set(moved) - L.CHANGEABLE) + sorted(
            n for n, (was, now) in moved.items()
            if n in L.CHANGEABLE and not (now - was) * spec.by_name(n).monotone <= 0)
        if wrong:
            raise RecourseError(f"recourse may change only actionable features, towards less "
                                f"risk; got {', '.join(wrong)}")
        return moved


def quantile_bounds(features: pd.DataFrame, low: float = 0.01,
                    high: float = 0.99) -> dict[str, tuple[float, float]]:
    """Return each changeable feature's (low, high) quantiles in a frame of training features."""
    q = features[sorted(L.CHANGEABLE)].quantile([low, high]).to_numpy(dtype=np.float64)
    return {name: (float(q[0, j]), float(q[1, j])) for j, name in enumerate(sorted(L.CHANGEABLE))}
