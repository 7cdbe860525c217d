"""A decision's record is built from the decisions, with every fact the policy read; its
explanation is a reading of that record."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from datasources.stub.world import population_ids
from scoring.online.explanation import explanation_of, is_scored
from scoring.online.reasons import REASONS_AVERAGE, REASONS_REFERENCE
from tests.unit.conftest import decider

IDS = population_ids(40, 7)
AGES = np.arange(25, 25 + len(IDS)) % 40 + 22


@pytest.fixture(scope="module")
def model(shipped_engine):
    return shipped_engine.model


@pytest.fixture(scope="module")
def decide(shipped_engine):
    """``decide(unknown)``: the applicants of IDS decided by the shipped engine."""
    return decider(shipped_engine, IDS, AGES)


def test_a_record_holds_every_fact_the_policy_read_and_adds_up(decide, model):
    decisions = decide()
    for i in range(len(IDS)):
        record = decisions.record(i)
        assert list(record["features"]) == model.spec.names
        assert record["facts"] == {"age": int(AGES[i]), "purpose": "travel", "term_months": 12}
        assert record["base_value"] + sum(record["contributions"].values()) == pytest.approx(
            record["margin"], abs=1e-4)
        assert record["decision"]["outcome"] == record["outcome"]
        assert record["reason_codes"] == [r["code"] for r in record["reasons"]]
        # Plain JSON values: the record's canonical form needs no numpy.
        assert json.loads(json.dumps(record, allow_nan=False)) == record


def test_a_fallback_records_what_was_unknown_as_null_never_a_value(decide):
    decisions = decide(("income_tax",))
    record = decisions.record(0)
    assert record["model_version"].endswith("-without-income_tax")
    assert record["unknown_features"]
    for name in record["unknown_features"]:
        assert record["features"][name] is None
        assert name not in record["contributions"]


def test_the_explanation_is_the_records_reading(decide, model):
    decisions = decide()
    for i in (0, 1, 2):
        explanation = decisions.explanation(i, application_id="a_1")
        assert explanation == explanation_of({"application_id": "a_1",
                                              **decisions.record(i)}, model.spec)
        names = [f["name"] for f in explanation["features"]]
        assert names == [n for n in model.spec.names if n in model.feature_names]
        for f in explanation["features"]:
            assert f["group"] == model.spec.by_name(f["name"]).group
            value = decisions.features[i][model.spec.names.index(f["name"])]
            assert (f["value"] is None and math.isnan(value)) or f["value"] == value


def test_a_record_without_a_model_decision_has_no_explanation(model):
    deferral = {"outcome": "deferred", "unknown_features": ["cr_overdue_now"]}
    assert not is_scored(deferral)
    with pytest.raises(ValueError, match="no model decision"):
        explanation_of(deferral, model.spec)


def test_reasons_are_ranked_against_the_models_approved_applicants(decide, model):
    decisions = decide()
    reference = model.reference
    assert reference is not None
    outcomes = set()
    for i in range(len(IDS)):
        record = decisions.record(i)
        outcomes.add(record["outcome"])
        assert record["reasons_method"] == REASONS_REFERENCE
        assert record["reference"] == {"sha256": model.card["reference"]["sha256"],
                                       "mean_margin": reference.mean_margin}
        against = record["reference_contributions"]
        assert list(against) == model.feature_names
        assert reference.mean_margin + sum(against.values()) == pytest.approx(
            record["margin"], abs=1e-4)
        # The exact contributions are kept as they were: they add up with the base value.
        assert record["base_value"] == model.base_value
        for reason in record["reasons"]:
            if reason["source"] == "rule":
                assert reason["reference_contribution"] is None
                continue
            assert reason["reference_contribution"] == round(against[reason["feature"]], 6)
            assert reason["contribution"] == round(record["contributions"][reason["feature"]],
                                                   6)
            feature = model.spec.by_name(reason["feature"])
            if record["outcome"] == "approved":
                assert reason["reference_contribution"] < 0
                assert reason["code"] == feature.favourable.code
            else:
                assert reason["reference_contribution"] > 0
                assert reason["code"] == feature.adverse.code
    assert outcomes == {"approved", "declined"}


def test_a_fallback_decision_is_ranked_against_the_fallbacks_own_reference(decide, shipped_engine):
    record = decide(("income_tax",)).record(0)
    fallback = shipped_engine.fallbacks["income_tax"]
    assert record["model_version"] == fallback.version
    assert record["reference"]["sha256"] == fallback.card["reference"]["sha256"]
    assert list(record["reference_contributions"]) == fallback.feature_names
    assert record["reference"]["mean_margin"] + sum(
        record["reference_contributions"].values()) == pytest.approx(record["margin"], abs=1e-4)


def test_a_deferral_has_no_contributions_against_the_reference(decide):
    # Provident fund unknown and social security short of 6 months: K05 is undetermined.
    decisions = decide(("provident_fund",))
    deferred = [i for i in range(len(IDS)) if decisions.row(i)["outcome"] == "deferred"]
    assert deferred
    for i in deferred:
        record = decisions.record(i)
        assert record["reasons"] == [] and record["reference_contributions"] is None
        assert record["reasons_method"] == REASONS_REFERENCE


def test_the_explanation_says_what_the_reasons_were_ranked_by(decide, model):
    record = {"application_id": "a_1", **decide().record(0)}
    explanation = explanation_of(record, model.spec)
    for key in ("reasons_method", "reference", "reference_contributions"):
        assert explanation[key] == record[key]
    # A record made before there were references ranked against the average applicant.
    older = {k: v for k, v in record.items()
             if k not in ("reasons_method", "reference", "reference_contributions")}
    explanation = explanation_of(older, model.spec)
    assert explanation["reasons_method"] == REASONS_AVERAGE
    assert explanation["reference"] is None and explanation["reference_contributions"] is None
