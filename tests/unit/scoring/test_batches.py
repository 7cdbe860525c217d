"""One vectorised path for one application and for millions: a batch decides each row as that
row alone would, to the bit, and the shortcuts that make one row cheap keep numpy's results."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from datasources.records import flatten
from datasources.stub.world import generate, population_ids, records_at
from scoring.online.features import (
    _TEXT_COLUMNS,
    APPLICATION_COLUMNS,
    RAW_COLUMNS,
    feature_matrix,
    features_for_application,
    features_for_frame,
)
from scoring.online.policy import PURPOSES, Policy, _nan_to_zero, load_policy
from scoring.online.reasons import ReasonCoder
from scoring.online.spec import FeatureSpec, load_spec
from tests.unit.scoring.test_policy import _doc, good_facts

SPEC = load_spec()
POLICY = load_policy()
IDS = population_ids(60, 11)
COLUMNS = generate(IDS)
NAN = float("nan")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=8))
def test_nan_to_zero_is_numpy_nan_to_num_to_the_bit(values):
    x = np.array(values, dtype=np.float64)
    assert _nan_to_zero(x).tobytes() == np.nan_to_num(x, nan=0.0).tobytes()


def test_an_unknown_count_of_income_sources_counts_as_none():
    facts = good_facts(income_sources=NAN)
    assert "income_sources" in POLICY.evaluate(facts, np.array([0.005])).rules_fired[0]
    doc = _doc()
    doc["eligibility"]["min_income_sources"] = 0
    lenient = Policy(doc).evaluate(facts, np.array([0.005]))
    assert "income_sources" not in lenient.rules_fired[0]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.fixed_dictionaries({
        "pd": st.floats(min_value=0, max_value=0.3),
        "income_verified_monthly": st.sampled_from([NAN, 0.0, 2_500.0, 12_000.0, 1e6]),
        "debt_to_income": st.sampled_from([NAN, 0.0, 0.2, 0.6]),
        "income_sources": st.sampled_from([NAN, 0.0, 1.0, 2.0, 3.0]),
        "court_adverse_listing": st.sampled_from([NAN, 0.0, 1.0]),
        "cr_overdue_now": st.sampled_from([NAN, 0.0, 1.0]),
        "pf_months_continuous": st.sampled_from([NAN, 0.0, 36.0]),
        "age": st.sampled_from([21.0, 22.0, 40.0, 56.0]),
        "term_months": st.sampled_from([3.0, 7.0, 12.0, 36.0]),
        "purpose": st.sampled_from(PURPOSES),
    }), min_size=1, max_size=6),
    unknown=st.sampled_from([(), ("income_tax",), ("provident_fund", "social_security"),
                             ("credit_report", "court_records")]),
)
def test_the_policy_of_a_batch_is_the_policy_of_each_row_alone(rows, unknown):
    def evaluate(chosen):
        facts = {k: v.repeat(len(chosen)) for k, v in good_facts().items()}
        for k in chosen[0]:
            facts[k] = np.array([row[k] for row in chosen],
                                dtype=object if k == "purpose" else float)
        return POLICY.evaluate(facts, facts.pop("pd"), unknown)

    batch = evaluate(rows)
    for i, row in enumerate(rows):
        alone = evaluate([row])
        assert batch.outcome[i] == alone.outcome[0]
        assert batch.grade[i] == alone.grade[0]
        assert batch.credit_limit[i:i + 1].tobytes() == alone.credit_limit.tobytes()
        assert batch.annual_rate[i:i + 1].tobytes() == alone.annual_rate.tobytes()
        assert batch.rules_fired[i] == alone.rules_fired[0]
        assert batch.undetermined[i] == alone.undetermined[0]


def test_the_reasons_of_a_batch_are_the_reasons_of_each_row_alone():
    coder = ReasonCoder(SPEC, SPEC.names)
    rng = np.random.default_rng(3)
    contribs = rng.normal(0, 0.2, size=(8, len(SPEC.names)))
    contribs[2, :] = 0.0  # nothing pushed either way: no model reason at all
    approved = np.array([True, False, True, False, False, True, True, False])
    fired = [[], ["age"], [], ["score"], ["court_listing", "term"], [], [], []]
    batch = coder.reasons(contribs, approved, fired, POLICY)
    for i in range(len(contribs)):
        assert batch[i] == coder.reasons(contribs[i:i + 1], approved[i:i + 1], [fired[i]],
                                         POLICY)[0]


def test_equal_pushes_within_a_group_are_led_by_its_first_feature():
    coder = ReasonCoder(SPEC, SPEC.names)
    contribs = np.zeros((1, len(SPEC.names)))
    contribs[0, SPEC.names.index("cr_inquiries_6m")] = 0.3
    contribs[0, SPEC.names.index("cr_inquiries_3m")] = 0.3
    (reason,) = coder.reasons(contribs, np.array([False]), [[]], POLICY)[0]
    assert reason.feature == "cr_inquiries_3m"


def test_a_batch_of_applications_is_decided_as_each_alone(shipped_engine):
    features = np.vstack([features_for_application(records_at(COLUMNS, i), 20000, 12)
                          for i in range(len(IDS))])
    ages = np.arange(len(IDS)) % 40 + 20.0
    purposes = [PURPOSES[i % len(PURPOSES)] for i in range(len(IDS))]
    terms = np.array([(3, 6, 12, 24, 36, 9)[i % 6] for i in range(len(IDS))], dtype=float)
    for unknown in ((), ("income_tax",)):
        batch = shipped_engine.decide(features, age=ages, purpose=purposes,
                                      term_months=terms, unknown_scopes=unknown)
        for i in range(len(IDS)):
            alone = shipped_engine.decide(features[i], age=ages[i], purpose=purposes[i],
                                          term_months=terms[i], unknown_scopes=unknown)
            assert batch.row(i) == alone.row(0)
            assert batch.record(i) == alone.record(0)


def test_a_spec_in_another_order_takes_each_feature_by_name():
    reordered = FeatureSpec(SPEC.version, SPEC.features[::-1], SPEC.groups, SPEC.digest)
    frame = pd.DataFrame(COLUMNS)
    expected = features_for_frame(frame)
    got = features_for_frame(frame, reordered)
    assert list(got.columns) == SPEC.names[::-1]
    np.testing.assert_array_equal(got[SPEC.names].to_numpy(), expected.to_numpy())


def _as_text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return " yes " if value else "False"
    return f" {value} "


def test_numbers_written_as_text_give_the_features_of_the_numbers():
    rows = [{**flatten(records_at(COLUMNS, i)), "amount": 15000.0 + i, "term_months": 12}
            for i in range(len(IDS))]
    numbers = {c: [row[c] for row in rows] for c in (*RAW_COLUMNS, *APPLICATION_COLUMNS)}
    numeric = [c for c in numbers if c not in _TEXT_COLUMNS]
    # Numbers as text that float() reads ("12", among booleans and None), and text that only
    # the column parser reads ("yes", "False", "").
    plain = {c: np.array([str(v) if isinstance(v, int | float) and not isinstance(v, bool)
                          else v for v in numbers[c]], dtype=object) for c in numeric}
    words = {c: np.array([_as_text(v) for v in numbers[c]], dtype=object) for c in numeric}
    for text in (plain, words):
        np.testing.assert_array_equal(feature_matrix({**numbers, **text}),
                                      feature_matrix(numbers))
