"""A decision's record is built from the decisions, with every fact the policy read; its
explanation is a reading of that record."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from datasources.stub.world import generate, population_ids, records_at
from scoring.online.engine import DecisionEngine
from scoring.online.explanation import explanation_of, is_scored
from scoring.online.features import features_for_application
from scoring.online.model import load_fallbacks, load_model
from scoring.online.policy import load_policy
from scoring.online.reasons import REASONS_AVERAGE, REASONS_REFERENCE

MODEL = load_model()
ENGINE = DecisionEngine(MODEL, load_policy(),
                        load_fallbacks(MODEL, ("provident_fund", "social_security",
                                               "income_tax")))
IDS = population_ids(40, 7)
COLUMNS = generate(IDS)
FEATURES = np.vstack([features_for_application(records_at(COLUMNS, i), 20000, 12)
                      for i in range(len(IDS))])
AGES = np.arange(25, 25 + len(IDS)) % 40 + 22


def decide(unknown: tuple[str, ...] = ()):
    return ENGINE.decide(FEATURES, age=AGES, purpose="travel", term_months=12,
                         unknown_scopes=unknown)


def test_a_record_holds_every_fact_the_policy_read_and_adds_up():
    decisions = decide()
    for i in range(len(IDS)):
        record = decisions.record(i)
        assert list(record["features"]) == MODEL.spec.names
        assert record["facts"] == {"age": int(AGES[i]), "purpose": "travel", "term_months": 12}
        assert record["base_value"] + sum(record["contributions"].values()) == pytest.approx(
            record["margin"], abs=1e-4)
        assert record["decision"]["outcome"] == record["outcome"]
        assert record["reason_codes"] == [r["code"] for r in record["reasons"]]
        # Plain JSON values: the record's canonical form needs no numpy.
        assert json.loads(json.dumps(record, allow_nan=False)) == record


def test_a_fallback_records_what_was_unknown_as_null_never_a_value():
    decisions = decide(("income_tax",))
    record = decisions.record(0)
    assert record["model_version"].endswith("-without-income_tax")
    assert record["unknown_features"]
    for name in record["unknown_features"]:
        assert record["features"][name] is None
        assert name not in record["contributions"]


def test_the_explanation_is_the_records_reading():
    decisions = decide()
    for i in (0, 1, 2):
        explanation = decisions.explanation(i, application_id="a_1")
        assert explanation == explanation_of({"application_id": "a_1",
                                              **decisions.record(i)}, MODEL.spec)
        names = [f["name"] for f in explanation["features"]]
        assert names == [n for n in MODEL.spec.names if n in MODEL.feature_names]
        for f in explanation["features"]:
            assert f["group"] == MODEL.spec.by_name(f["name"]).group
            value = decisions.features[i][MODEL.spec.names.index(f["name"])]
            assert (f["value"] is None and math.isnan(value)) or f["value"] == value


def test_a_record_without_a_model_decision_has_no_explanation():
    deferral = {"outcome": "deferred", "unknown_features": ["cr_overdue_now"]}
    assert not is_scored(deferral)
    with pytest.raises(ValueError, match="no model decision"):
        explanation_of(deferral, MODEL.spec)


def test_reasons_are_ranked_against_the_models_approved_applicants():
    decisions = decide()
    reference = MODEL.reference
    assert reference is not None
    outcomes = set()
    for i in range(len(IDS)):
        record = decisions.record(i)
        outcomes.add(record["outcome"])
        assert record["reasons_method"] == REASONS_REFERENCE
        assert record["reference"] == {"sha256": MODEL.card["reference"]["sha256"],
                                       "mean_margin": reference.mean_margin}
        against = record["reference_contributions"]
        assert list(against) == MODEL.feature_names
        assert reference.mean_margin + sum(against.values()) == pytest.approx(
            record["margin"], abs=1e-4)
        # The exact contributions are kept as they were: they add up with the base value.
        assert record["base_value"] == MODEL.base_value
        for reason in record["reasons"]:
            if reason["source"] == "rule":
                assert reason["reference_contribution"] is None
                continue
            assert reason["reference_contribution"] == round(against[reason["feature"]], 6)
            assert reason["contribution"] == round(record["contributions"][reason["feature"]],
                                                   6)
            feature = MODEL.spec.by_name(reason["feature"])
            if record["outcome"] == "approved":
                assert reason["reference_contribution"] < 0
                assert reason["code"] == feature.favourable.code
            else:
                assert reason["reference_contribution"] > 0
                assert reason["code"] == feature.adverse.code
    assert outcomes == {"approved", "declined"}


def test_a_fallback_decision_is_ranked_against_the_fallbacks_own_reference():
    record = decide(("income_tax",)).record(0)
    fallback = ENGINE.fallbacks["income_tax"]
    assert record["model_version"] == fallback.version
    assert record["reference"]["sha256"] == fallback.card["reference"]["sha256"]
    assert list(record["reference_contributions"]) == fallback.feature_names
    assert record["reference"]["mean_margin"] + sum(
        record["reference_contributions"].values()) == pytest.approx(record["margin"], abs=1e-4)


def test_a_deferral_has_no_contributions_against_the_reference():
    # Provident fund unknown and social security short of 6 months: K05 is undetermined.
    decisions = decide(("provident_fund",))
    deferred = [i for i in range(len(IDS)) if decisions.row(i)["outcome"] == "deferred"]
    assert deferred
    for i in deferred:
        record = decisions.record(i)
        assert record["reasons"] == [] and record["reference_contributions"] is None
        assert record["reasons_method"] == REASONS_REFERENCE


def test_the_explanation_says_what_the_reasons_were_ranked_by():
    record = {"application_id": "a_1", **decide().record(0)}
    explanation = explanation_of(record, MODEL.spec)
    for key in ("reasons_method", "reference", "reference_contributions"):
        assert explanation[key] == record[key]
    # A record made before there were references ranked against the average applicant.
    older = {k: v for k, v in record.items()
             if k not in ("reasons_method", "reference", "reference_contributions")}
    explanation = explanation_of(older, MODEL.spec)
    assert explanation["reasons_method"] == REASONS_AVERAGE
    assert explanation["reference"] is None and explanation["reference_contributions"] is None
