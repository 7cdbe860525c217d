"""Recourse: the smallest verified sets of actionable changes that would lead to approval."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from datasources.stub.world import generate, population_ids
from scoring.online.engine import DecisionEngine, Decisions
from scoring.online.features import features_for_frame
from scoring.online.model import MODELS_DIR, ModelArtifact
from scoring.online.policy import load_policy
from scoring.online.spec import SPEC_PATH, load_spec, parse_spec
from scoring.recourse import (
    CARD_MINIMUM_SHARE,
    CHANGEABLE,
    Recourse,
    RecourseError,
    RecourseResult,
    Suggestion,
    quantile_bounds,
)

SPEC = load_spec()
POLICY = load_policy()
COLUMN = {name: j for j, name in enumerate(SPEC.names)}
LEAST, MOST = POLICY.amount_range


class World:
    """The shipped engine's recourse, and applicants of another draw decided by the engine."""

    def __init__(self, engine: DecisionEngine) -> None:
        self.engine = engine
        # The training data's plausible range, from a 20,000-row draw of the world the model
        # was trained on (seed 7).
        self.bounds = quantile_bounds(features_for_frame(pd.DataFrame(
            generate(population_ids(20_000, 7)))))
        self.recourse = Recourse(engine, self.bounds)
        # Applicants of another draw, with their own applications.
        self.people = pd.DataFrame(generate(population_ids(3000, 11)))
        self.x = features_for_frame(self.people).to_numpy()
        self.amount = self.people["amount"].to_numpy(dtype=float)
        in_range = (self.amount >= LEAST) & (self.amount <= MOST)
        self.everyone = np.flatnonzero(in_range)
        self.decided = self.decide(self.everyone)

    def decide(self, rows, *, x=None, unknown: tuple[str, ...] = (), purpose=None, age=None,
               term=None) -> Decisions:
        rows = np.asarray(rows)
        people = self.people
        return self.engine.decide(self.x[rows] if x is None else x, unknown_scopes=unknown,
                                  age=people["age"].to_numpy()[rows] if age is None else age,
                                  purpose=people["purpose"].to_numpy()[rows] if purpose is None
                                  else purpose,
                                  term_months=people["term_months"].to_numpy()[rows]
                                  if term is None else term)

    def rows_where(self, predicate, limit: int = 20) -> list[int]:
        """Return applicants (rows of ``people``) whose decision and amount satisfy
        ``predicate``."""
        found = [int(p) for k, p in enumerate(self.everyone)
                 if predicate(self.decided.row(k), self.amount[p])]
        assert found, "the population must hold such an applicant"
        return found[:limit]

    def score_declined(self, limit: int = 20) -> list[int]:
        return self.rows_where(lambda r, _: r["rules_fired"] == ["score"], limit)

    def partly_approved(self, limit: int = 20) -> list[int]:
        return self.rows_where(lambda r, amount: r["outcome"] == "approved"
                               and r["credit_limit"] < amount, limit)

    def approved_in_full(self) -> int:
        return self.rows_where(lambda r, amount: r["outcome"] == "approved"
                               and r["credit_limit"] >= amount)[0]

    def suggest_for(self, person: int, **kwargs) -> tuple[Decisions, RecourseResult]:
        decisions = self.decide([person], **kwargs)
        return decisions, self.recourse.suggest(decisions, 0, amount=float(self.amount[person]))


@pytest.fixture(scope="module")
def world(shipped_engine) -> World:
    """Built once, when the module's first test runs: the engine, bounds and applicants."""
    return World(shipped_engine)


def applied(decisions: Decisions, i: int, suggestion: Suggestion):
    """The application as the suggestion changes it: features, term and purpose."""
    x = decisions.features[i].copy()
    for name, moved in suggestion.features.items():
        x[COLUMN[name]] = moved[1]
    facts = {c.name: c.after for c in suggestion.changes if c.kind == "fact"}
    return (x, facts.get("term_months", decisions.facts["term_months"][i]),
            facts.get("purpose", decisions.facts["purpose"][i]))


def assert_verified(engine: DecisionEngine, decisions: Decisions, i: int,
                    result: RecourseResult, amount: float) -> None:
    """Every suggestion, applied and decided again by the engine, reaches the target."""
    for s in result.suggestions:
        x, term, purpose = applied(decisions, i, s)
        again = engine.decide(x, age=decisions.facts["age"][i], purpose=purpose,
                              term_months=term, unknown_scopes=decisions.unknown.scopes)
        row = again.row(0)
        assert row["outcome"] == "approved" == s.result.outcome
        assert row["credit_limit"] == s.result.credit_limit
        assert (row["score"], row["grade"], row["annual_rate"]) == (
            s.result.score, s.result.grade, s.result.annual_rate)
        assert row["model_version"] == decisions.model.version
        if result.target == "requested_amount":
            assert row["credit_limit"] >= amount
        assert set(s.features) <= CHANGEABLE
        assert all(SPEC.by_name(name).actionable for name in s.features)
        assert all((b - a) * SPEC.by_name(n).monotone <= 0 for n, (a, b) in s.features.items())
        unchanged = [j for j, n in enumerate(SPEC.names) if n not in s.features]
        np.testing.assert_array_equal(x[unchanged], decisions.features[i][unchanged])


def test_a_score_decline_gets_minimal_verified_suggestions(world):
    offered = 0
    for person in world.score_declined():
        decisions, result = world.suggest_for(person)
        assert result.status in ("offered", "not_found")
        if result.status == "not_found":
            continue
        offered += 1
        assert result.target == "approval" and 1 <= len(result.suggestions) <= 3
        assert_verified(world.engine, decisions, 0, result, world.amount[person])
        sets = [s.levers for s in result.suggestions]
        # Minimal: no set holds another; in order of size, then effort.
        assert not any(a < b for a in sets for b in sets)
        order = [(len(s.levers), s.effort) for s in result.suggestions]
        assert order == sorted(order)
    assert offered >= 10


def test_repaying_cards_lowers_utilisation_and_the_payment_with_it(world):
    seen = 0
    for person in world.score_declined():
        decisions, result = world.suggest_for(person)
        for s in result.suggestions:
            if s.levers != {"card_balances"}:
                continue
            seen += 1
            x = decisions.features[0]
            u, limit, income = (x[COLUMN[n]] for n in (
                "cr_card_utilization", "cr_card_limit_total", "income_verified_monthly"))
            payment = x[COLUMN["debt_to_income"]] * income
            (change,) = s.changes
            assert change.to_dict()["feature"] == "cr_card_utilization"
            assert change.before == u and change.after < u
            assert round(change.after / 0.05, 6).is_integer()
            cut = min(CARD_MINIMUM_SHARE * (u - change.after) * limit,
                      CARD_MINIMUM_SHARE * u * limit, payment)
            before, after = s.features["debt_to_income"]
            assert (before - after) * income == pytest.approx(cut)
            repay = math.ceil((u - change.after) * limit / 100) * 100
            assert f"¥{repay:,}" in change.text_en and f"{repay:,}元" in change.text_zh
            if change.after > 0:
                assert f"from {u:.0%} to {change.after:.0%} or less" in change.text_en
                assert f"从{u:.0%}降至{change.after:.0%}或以下" in change.text_zh
            else:
                assert change.text_en.startswith("Repay your card balances in full")
    assert seen


def test_closing_loans_takes_their_share_of_the_payment(world):
    seen = 0
    for person in world.score_declined() + world.partly_approved():
        decisions, result = world.suggest_for(person)
        for s in result.suggestions:
            if s.levers != {"loans"}:
                continue
            seen += 1
            x = decisions.features[0]
            u, limit, income, n = (x[COLUMN[k]] for k in (
                "cr_card_utilization", "cr_card_limit_total", "income_verified_monthly",
                "cr_loans_open"))
            payment = x[COLUMN["debt_to_income"]] * income
            card = min(CARD_MINIMUM_SHARE * u * limit, payment)
            (change,) = s.changes
            closed = change.before - change.after
            before, after = s.features["debt_to_income"]
            assert (before - after) * income == pytest.approx(closed * (payment - card) / n)
            assert s.features["cr_loans_open"] == (n, n - closed)
    assert seen


def test_a_partial_approval_is_searched_for_the_amount_asked_never_for_less(world):
    offered = 0
    for person in world.partly_approved():
        decisions, result = world.suggest_for(person)
        assert result.target == "requested_amount"
        assert result.status in ("offered", "not_found")
        offered += result.status == "offered"
        assert_verified(world.engine, decisions, 0, result, world.amount[person])
        for s in result.suggestions:
            assert "amount" not in s.levers and "requested_to_income" not in s.features
            assert s.result.credit_limit >= world.amount[person]
        if result.status == "offered":
            assert f"¥{world.amount[person]:,.0f}" in result.note_en
    assert offered >= 5


def test_choosing_a_term_moves_the_feature_and_the_fact_together(world):
    seen = 0
    for person in world.partly_approved():
        _, result = world.suggest_for(person)
        for s in result.suggestions:
            if "term" not in s.levers:
                continue
            seen += 1
            (change,) = [c for c in s.changes if c.lever == "term"]
            assert change.to_dict()["fact"] == "term_months"
            assert change.after in POLICY.terms_months and change.after != change.before
            assert s.features["term_months"] == (change.before, change.after)
            assert change.text_en == f"Choose a {change.after}-month term"
    assert seen


def test_a_disallowed_purpose_alone_gets_one_suggestion_to_choose_another(world):
    person = world.approved_in_full()
    decisions, result = world.suggest_for(person, purpose=np.array(["securities"], dtype=object))
    assert decisions.policy.rules_fired[0] == ["purpose"]
    assert result.status == "offered" and len(result.suggestions) == 1
    (s,) = result.suggestions
    assert [c.to_dict() for c in s.changes] == [{
        "lever": "purpose", "fact": "purpose", "from": "securities", "to": "daily_consumption",
        "text_zh": "选择本产品允许的贷款用途", "text_en": "Choose a purpose this product allows"}]
    assert s.features == {}
    assert_verified(world.engine, decisions, 0, result, world.amount[person])


def test_every_suggestion_for_an_overdue_payment_repays_it(world):
    x = world.x[world.score_declined()].copy()
    x[:, COLUMN["cr_overdue_now"]] = 1.0
    people = world.score_declined()
    decisions = world.decide(people, x=x)
    offered = 0
    for i, person in enumerate(people):
        assert "overdue_now" in decisions.policy.rules_fired[i]
        result = world.recourse.suggest(decisions, i, amount=float(world.amount[person]))
        offered += result.status == "offered"
        for s in result.suggestions:
            assert s.changes[0].text_en == "Repay the payment that is overdue now"
            assert s.features["cr_overdue_now"] == (1.0, 0.0)
        assert_verified(world.engine, decisions, i, result, world.amount[person])
    assert offered


def test_a_term_the_product_does_not_offer_is_replaced_in_every_suggestion(world):
    person = world.approved_in_full()
    x = world.x[[person]].copy()
    x[0, COLUMN["term_months"]] = 18.0
    decisions, result = world.suggest_for(person, x=x, term=18.0)
    assert decisions.policy.rules_fired[0] == ["term"]
    assert result.status == "offered"
    (s,) = result.suggestions
    (change,) = s.changes
    assert (change.lever, change.before) == ("term", 18)
    assert change.after in POLICY.terms_months
    # The nearest offered term first: 12 and 24 months are as near; 12 comes first.
    assert change.after == 12 and s.features == {"term_months": (18.0, 12.0)}
    assert_verified(world.engine, decisions, 0, result, world.amount[person])
    # No offered term within the bounds: nothing can clear the knock-out.
    narrow = Recourse(world.engine, {**world.bounds, "term_months": (13.0, 23.0)})
    assert narrow.suggest(decisions, 0, amount=float(world.amount[person])).status == "not_found"


@pytest.mark.parametrize(("feature", "value", "code"), [
    ("court_adverse_listing", 1.0, "K01"), ("cr_bad_debt", 1.0, "K03"),
    ("income_sources", 1.0, "K07")])
def test_a_knockout_the_applicant_cannot_change_gets_none(world, feature, value, code):
    person = world.approved_in_full()
    x = world.x[[person]].copy()
    x[0, COLUMN[feature]] = value
    _, result = world.suggest_for(person, x=x)
    assert result.status == "none_possible" and result.suggestions == ()
    assert [r["code"] for r in result.to_dict()["blocking_rules"]] == [code]
    rule = next(r for r in POLICY.rules.values() if r.code == code)
    said = rule.en[:1].lower() + rule.en[1:]
    assert result.note_en == f"No change you could make now would lead to approval: {said}."
    assert result.note_zh.startswith("您目前可以做出的任何改变都无法使申请获得批准：")
    assert rule.zh in result.note_zh


def test_age_outside_the_range_blocks_even_alongside_an_actionable_knockout(world):
    person = world.approved_in_full()
    decisions, result = world.suggest_for(person, age=np.array([60.0]),
                                          purpose=np.array(["business"], dtype=object))
    assert decisions.policy.rules_fired[0] == ["age", "purpose"]
    assert result.status == "none_possible"
    assert [r.name for r in result.blocking_rules] == ["age"]


def test_an_approval_in_full_and_a_deferral_need_nothing(world):
    assert world.suggest_for(world.approved_in_full())[1].to_dict() == {
        "status": "not_needed", "target": None, "suggestions": [], "blocking_rules": [],
        "note_zh": "申请已按所申请金额获批，无需做任何改变。",
        "note_en": "The application was approved for the amount asked: there is nothing to "
                   "change."}
    deferred = world.decide(world.everyone[:200], unknown=("income_tax",))
    k = int(np.flatnonzero(deferred.policy.outcome == "deferred")[0])
    result = world.recourse.suggest(deferred, k, amount=float(world.amount[world.everyone[k]]))
    assert result.status == "not_needed" and "not decided yet" in result.note_en


def test_a_fallback_decision_is_searched_and_verified_with_its_own_model(world):
    people = world.everyone[:400]
    decisions = world.decide(people, unknown=("income_tax",))
    assert decisions.model.version == "v1-without-income_tax"
    offered = 0
    for i, person in enumerate(people):
        if decisions.policy.outcome[i] != "approved" or (
                decisions.policy.credit_limit[i] >= world.amount[person]):
            continue
        result = world.recourse.suggest(decisions, i, amount=float(world.amount[person]))
        offered += result.status == "offered"
        # assert_verified decides again without income_tax: the same fallback model.
        assert_verified(world.engine, decisions, i, result, world.amount[person])
        for s in result.suggestions:
            assert not set(s.features) & set(decisions.unknown.unknown)
    assert offered >= 5


def test_nothing_within_reach_is_said_plainly(world):
    people = world.score_declined(limit=200)
    results = [world.suggest_for(p)[1] for p in people]
    result = next(r for r in results if r.status == "not_found")
    assert result.suggestions == () and result.target == "approval"
    assert result.note_en == "We found no change within your reach that would lead to approval."
    # More than any line the product grants: no change reaches it.
    person, big = world.approved_in_full(), POLICY.max_line + 50_000
    x = world.x[[person]].copy()
    x[0, COLUMN["requested_to_income"]] = big / (12 * x[0, COLUMN["income_verified_monthly"]])
    decisions = world.decide([person], x=x)
    assert decisions.policy.outcome[0] == "approved"
    result = world.recourse.suggest(decisions, 0, amount=big)
    assert result.status == "not_found" and result.target == "requested_amount"
    assert result.note_en == ("We found no change within your reach that would lead to a "
                              "credit line of the ¥250,000 you asked for.")


def test_the_answer_is_plain_json_and_the_applicant_sees_only_texts(world):
    person = next(p for p in world.score_declined()
                  if world.suggest_for(p)[1].status == "offered")
    result = world.suggest_for(person)[1]
    whole = result.to_dict()
    assert json.loads(json.dumps(whole, allow_nan=False)) == whole
    assert set(whole) == {"status", "target", "suggestions", "note_zh", "note_en",
                          "blocking_rules"}
    for s in whole["suggestions"]:
        assert set(s) == {"changes", "features", "text_zh", "text_en", "result"}
        assert set(s["result"]) == {"outcome", "credit_limit", "annual_rate", "grade", "score"}
        assert s["text_en"].startswith(s["changes"][0]["text_en"])
    shown = json.dumps(result.for_applicant(), ensure_ascii=False)
    assert not any(name in shown for name in SPEC.names)
    assert set(result.for_applicant()) == {"status", "target", "note_zh", "note_en",
                                           "suggestions"}


def test_suggestion_texts_join_their_changes(world):
    person = world.approved_in_full()
    x = world.x[[person]].copy()
    x[0, COLUMN["cr_overdue_now"]] = 1.0
    _, result = world.suggest_for(person, x=x, purpose=np.array(["property"], dtype=object))
    s = result.suggestions[0]
    assert [c.lever for c in s.changes][:2] == ["overdue_now", "purpose"]
    assert s.text_en.startswith("Repay the payment that is overdue now; ")
    assert "and choose a purpose this product allows" in s.text_en
    assert s.text_zh.startswith("还清当前逾期的款项；选择本产品允许的贷款用途")


def test_no_lever_moves_a_feature_past_its_low_bound(world):
    bounds = {**world.bounds,
              "cr_card_utilization": (0.3, world.bounds["cr_card_utilization"][1]),
              "term_months": (12.0, 24.0)}
    strict = Recourse(world.engine, bounds)
    for person in world.score_declined() + world.partly_approved():
        decisions = world.decide([person])
        result = strict.suggest(decisions, 0, amount=float(world.amount[person]))
        for s in result.suggestions:
            if "cr_card_utilization" in s.features:
                assert s.features["cr_card_utilization"][1] >= 0.3
            if "term_months" in s.features:
                assert 12 <= s.features["term_months"][1] <= 24


def test_the_outcome_only_path_decides_as_the_engine_does(world):
    _, decided = world.engine.outcomes(world.decided.features, age=35.0, purpose="travel",
                                       term_months=world.decided.facts["term_months"])
    again = world.engine.decide(world.decided.features, age=35.0, purpose="travel",
                                term_months=world.decided.facts["term_months"])
    np.testing.assert_array_equal(decided.outcome, again.policy.outcome)
    np.testing.assert_array_equal(decided.credit_limit, again.policy.credit_limit)


def test_it_refuses_bad_bounds_amounts_and_decisions(world):
    with pytest.raises(ValueError, match="missing: cr_loans_open"):
        Recourse(world.engine, {k: v for k, v in world.bounds.items() if k != "cr_loans_open"})
    with pytest.raises(ValueError, match="bounds of debt_to_income must be finite"):
        Recourse(world.engine, {**world.bounds, "debt_to_income": (1.0, 0.0)})
    person = world.score_declined()[0]
    decisions = world.decide([person])
    with pytest.raises(ValueError, match="amount must be the amount the application asked"):
        world.recourse.suggest(decisions, 0, amount=float(world.amount[person]) + 1000)
    alone = Recourse(DecisionEngine(world.engine.model, POLICY), world.bounds)
    fallback = world.decide(world.partly_approved(), unknown=("income_tax",))
    i = int(np.flatnonzero(fallback.policy.outcome == "approved")[0])
    with pytest.raises(ValueError, match="decisions must be this engine's"):
        alone.suggest(fallback, i, amount=1e9)


def test_every_feature_it_changes_must_be_actionable_in_the_spec(world):
    doc = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    for feature in doc["features"]:
        if feature["name"] == "cr_loans_open":
            feature["actionable"] = False
    model = ModelArtifact(MODELS_DIR / "v1", spec=parse_spec(doc))
    with pytest.raises(ValueError, match="not actionable: cr_loans_open"):
        Recourse(DecisionEngine(model, POLICY), world.bounds)
    assert all(SPEC.by_name(name).actionable for name in CHANGEABLE)


@pytest.mark.parametrize(("feature", "step"), [("cr_inquiries_3m", -1.0),
                                               ("cr_card_utilization", 0.1)])
def test_a_change_elsewhere_or_towards_more_risk_is_refused(world, feature, step):
    before = world.x[0]
    after = before.copy()
    after[COLUMN[feature]] += step
    with pytest.raises(RecourseError, match=feature):
        world.recourse._moved(before, after)
